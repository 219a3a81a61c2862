"""The published OpenAPI schema tells the truth: schemathesis reads it from the running
backend's own `/openapi.json`, sends every operation requests generated from it (valid ones
and, for the bounds and types it publishes, invalid ones), and checks every answer against
it: no server error but the documented ones (503 of `/health`, 504 of a `wait_for` that the
read model did not reach in time), no status the operation does not declare, no body or
content type other than the one declared for that status.

The run is bounded and derandomized (a fixed number of examples per operation and mode, the
same ones on every run), so it takes well under two minutes and a failure reproduces. The
operations are read from the live schema, so the test loops over them itself rather than
letting pytest collect one test per operation.
"""

from __future__ import annotations

from collections import Counter
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

from tests.factories import contract, post, ticket

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
    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(operation.as_strategy(mode, **fixed))
    def example(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)
        sent[response.status_code] += 1

    example()


def known_ids(client: httpx.Client) -> dict[str, str]:
    """A contract with a ticket that has a resolution (so a statement), an outage and time
    booked: generated requests on these ids reach the answers of existing things, not only 404."""
    cid = contract(client)
    tid = ticket(client, cid, priority="P1", category="system-down", down_since="2026-03-02T09:00:00Z",
                 at="2026-03-02T09:05:00Z")
    post(client, f"/tickets/{tid}/time", minutes=30, kind="work", at="2026-03-02T10:00:00Z")
    position = post(client, f"/tickets/{tid}/resolve", reason="fixed", at="2026-03-02T11:00:00Z")["position"]
    for read in (f"/tickets/{tid}", f"/tickets/{tid}/sla", f"/tickets/{tid}/statement",
                 f"/contracts/{cid}/availability"):
        assert client.get(read, params={"wait_for": position}).status_code == 200, read
    return {"contract_id": cid, "ticket_id": tid}


def test_every_operation_answers_as_its_schema_says(base_url: str, client: httpx.Client) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    ids = known_ids(client)
    sent: Counter[int] = Counter()
    failures, runs = [], 0
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        passes = [(GenerationMode.POSITIVE, {}), (GenerationMode.NEGATIVE, {})]
        if names:
            passes.append((GenerationMode.POSITIVE, {"path_parameters": {n: ids[n] for n in names}}))
        for mode, fixed in passes:
            runs += 1
            try:
                fuzz(operation, mode, base_url, sent, **fixed)
            except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, BaseExceptionGroup) as failure:  # collected: one run names them all
                failures.append(f"{operation.label} ({mode.value}{', known ids' if fixed else ''}): {failure}")
    print(f"schemathesis: {len(operations)} operations, {runs} runs, {sent.total()} answers checked"
          f" {dict(sorted(sent.items()))}, {len(failures)} failing")
    assert len(operations) >= 20 and not failures, "\n\n".join(failures)
