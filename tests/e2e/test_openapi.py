"""The published OpenAPI schema tells the truth: schemathesis reads it from the running
backend's own `/openapi.json`, sends every operation requests generated from it (valid ones
and, for the bounds and types it publishes, invalid ones), and checks every answer against
it: no server error but the documented ones (503 of `/health`, 504 of a `wait_for` that the
read model did not reach in time), no status the operation does not declare, no body or
content type other than the one declared for that status.

The run is bounded and derandomized (a fixed number of examples per operation and mode, the
same ones on every run), so it takes well under two minutes and a failure reproduces. The
operations are read from the live schema when the session's backend is up, so the test loops
over them itself (schemathesis's own pytest loader for a schema from a fixture does not run
under this pytest) and names every operation that disagrees, not only the first.

Besides random ids (404), each operation with an id in its path is also fuzzed on a contract,
a ticket and a plan that exist, so the answers of existing things are checked against their models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain import values
from domain.sla import report
from infra.process.catalog import load_catalog
from tests.e2e.conftest import ADMIN_TOKEN
from tests.factories import contract, history, post, ticket

EXAMPLES = 25  # per operation and mode; derandomized, so every run sends the same requests


def documented_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx only where the schema says one may come: `/health` (503, a part is down) and a
    read with `wait_for` (504, the read model lags)."""
    if response.status_code == 503 and case.path == "/health":
        return None
    if response.status_code == 504 and (case.query or {}).get("wait_for") is not None:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [documented_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz(operation: Any, mode: GenerationMode, base_url: str, sent: Counter[int], **fixed: Any) -> None:
    """Send one operation EXAMPLES generated requests and check each answer; count the statuses."""
    in_body = fixed.pop("ids_in_body", {})

    def known(case: Any) -> Any:  # a known id in place of a generated one in the body
        if isinstance(case.body, dict):
            case.body.update({k: v for k, v in in_body.items() if k in case.body})
        return case

    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(operation.as_strategy(mode, **fixed).map(known))
    def example(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)
        sent[response.status_code] += 1

    example()


def known_ids(client: httpx.Client) -> dict[str, str]:
    """A contract with a ticket that has a resolution (so a statement), an outage and time
    booked, and a token: generated requests on these ids reach the answers of existing things,
    not only 404."""
    cid = contract(client)
    tid = ticket(client, cid, priority="P1", category="system-down", down_since="2026-03-02T09:00:00Z",
                 at="2026-03-02T09:05:00Z")
    post(client, f"/tickets/{tid}/time", minutes=30, kind="work", at="2026-03-02T10:00:00Z")
    position = post(client, f"/tickets/{tid}/resolve", reason="fixed", at="2026-03-02T11:00:00Z")["position"]
    for read in (f"/tickets/{tid}", f"/tickets/{tid}/sla", f"/tickets/{tid}/statement",
                 f"/contracts/{cid}/availability"):
        assert client.get(read, params={"wait_for": position}).status_code == 200, read
    token = client.post("/tokens", json={"role": "customer", "contracts": [cid], "name": "fuzzed"})
    assert token.status_code == 201, token.text
    return {"contract_id": cid, "ticket_id": tid, "token_id": token.json()["token_id"],
            "plan_id": "crm-experts/gold"}


def test_every_operation_answers_as_its_schema_says(base_url: str, client: httpx.Client) -> None:
    ids = known_ids(client)
    # The fuzzer cancels the contract of `ids` on its way; tickets are opened on one it leaves alone.
    untouched = {"contract_id": contract(client, "sf-partner/platinum")}

    def passes(operation: Any) -> list[tuple[GenerationMode, dict[str, Any]]]:
        names = {p.name for p in operation.path_parameters}
        made = [(GenerationMode.POSITIVE, {}), (GenerationMode.NEGATIVE, {})]
        if names:
            made.append((GenerationMode.POSITIVE, {"path_parameters": {n: ids[n] for n in names}}))
        elif operation.method.upper() == "POST" and operation.path == "/tickets":
            made.append((GenerationMode.POSITIVE, {"ids_in_body": untouched}))
        return made

    sent = run(base_url, passes)
    assert sent[200] and sent[201] and sent[404] and sent[422], sent  # answers of each kind were checked


def run(base_url: str, passes: Callable[[Any], list[tuple[GenerationMode, dict[str, Any]]]],
        token: str | None = None) -> Counter[int]:
    """Fuzz every operation of the live schema (read with `token`, if one is needed) with the
    given passes; fail naming every operation that disagrees with it; the statuses answered, counted."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    sent: Counter[int] = Counter()
    failures, runs = [], 0
    for operation in operations:
        for mode, fixed in passes(operation):
            runs += 1
            try:
                fuzz(operation, mode, base_url, sent, **fixed)
            except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, BaseExceptionGroup) as failure:  # collected: one run names them all
                failures.append(f"{operation.label} ({mode.value}{', known ids' if fixed else ''}): {failure}")
    print(f"schemathesis: {len(operations)} operations, {runs} runs, {sent.total()} answers checked"  # noqa: T201
          f" {dict(sorted(sent.items()))}, {len(failures)} failing")
    assert len(operations) >= 20 and not failures, "\n\n".join(failures)
    return sent


def test_without_the_admin_token_every_operation_answers_its_declared_401(guarded_api: str) -> None:
    sent = run(guarded_api, lambda operation: [(GenerationMode.POSITIVE, {})], token=ADMIN_TOKEN)
    assert sent[401] and set(sent) <= {200, 401, 503}, sent


def test_an_instant_without_offset_is_refused_at_the_edge_with_its_reason(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    before = history(client, cid)
    for refused in (client.post(f"/tickets/{tid}/respond", json={"at": "2026-03-02T11:00:00"}),
                    client.post("/tickets", json={"contract_id": cid, "title": "t", "reporter": "r",
                                                  "down_since": "2026-03-02T11:00:00"}),
                    client.get(f"/contracts/{cid}/history", params={"as_of": "2026-03-02T11:00:00"})):
        assert refused.status_code == 422, refused.text
        assert "UTC offset" in refused.json()["error"], refused.text
    assert history(client, cid) == before


def test_a_nul_character_in_free_text_is_refused_at_the_edge_and_records_nothing(client: httpx.Client) -> None:
    """Found by the fuzzer: PostgreSQL cannot store NUL, so such a title once answered 500."""
    cid = contract(client)
    tid = ticket(client, cid)
    before = history(client, cid)
    for refused in (client.post("/tickets", json={"contract_id": cid, "title": "a\u0000b", "reporter": "r"}),
                    client.post(f"/tickets/{tid}/pause", json={"reason": "\u0000"}),
                    client.post(f"/tickets/{tid}/time", json={"minutes": 5, "kind": "work", "engineer": "e\u0000"}),
                    client.get(f"/contracts/{cid}/ledger", params={"period": "2026\u0000"})):
        assert refused.status_code == 422, refused.text
        assert "NUL" in refused.json()["error"], refused.text
    assert history(client, cid) == before
    signing = {"customer": "A\u0000", "plan": "crm-experts/gold", "starts_on": "2026-01-01"}
    assert client.post("/contracts", json=signing).status_code == 422


def test_the_schema_declares_each_status_with_its_body_and_the_domain_vocabulary(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    parts = schema["components"]["schemas"]
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = operation["responses"]
            errors = {c: r["content"]["application/json"]["schema"] for c, r in codes.items() if int(c) >= 400}
            if path == "/health":
                assert errors.pop("503") == {"$ref": "#/components/schemas/Health"}
            else:
                assert {"401", "413", "422", "503"} <= set(errors), (method, path)
            assert all(e == problem for e in errors.values()), (method, path)
            assert ("{" in path) == ("404" in codes) or (method == "post" and path == "/tickets"), (method, path)
            if method == "post":  # the Idempotency-Key: a repeat still running; a key reused for another body
                assert "409" in codes, path
            waits = any(p["name"] == "wait_for" for p in operation.get("parameters", []))
            assert waits == ("504" in codes), (method, path)
    assert parts["Classify"]["properties"]["priority"]["enum"] == list(values.PRIORITIES)
    assert parts["Classify"]["properties"]["category"]["anyOf"][0]["enum"] == list(values.CATEGORIES)
    assert parts["TimeEntry"]["properties"]["kind"]["enum"] == list(values.ENTRY_KINDS)
    assert parts["SlaClock"]["properties"]["status"]["enum"] == list(report.STATUSES)
    assert set(parts["TicketSummary"]["properties"]["status"]["enum"]) == {"open", "paused", "resolved", "cancelled"}
    catalog = load_catalog()
    assert parts["SignContract"]["properties"]["plan"]["enum"] == sorted(catalog)
    assert set(parts["TicketSummary"]["properties"]["channel"]["enum"]) == {c for t in catalog.values() for c in t.channels}
    assert parts["Maintenance"]["properties"]["starts_at"]["format"] == "date-time"
    assert parts["TicketSummary"]["properties"]["opened_at"]["format"] == "date-time"
