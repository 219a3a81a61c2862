"""Every bound in docs/design.md, over HTTP: refused with a JSON reason (422, 413 for a body
over 1 MiB, 404 for an id that is no UUID), nothing recorded, and the bounds published in
the OpenAPI schema; ids are compared in their canonical form, whatever their spelling."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.test_refusals import fresh, refused
from tests.factories import contract, history, post, ticket

LONG = "x" * 2001

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("minutes above 30 days", "/tickets/{t}/time", {"minutes": 43_201, "kind": "work"}, 422),
    ("minutes beyond a 32-bit int", "/tickets/{t}/time", {"minutes": 2**31, "kind": "work"}, 422),
    ("credits beyond a million", "/contracts/{c}/credits", {"credits": 1_000_001}, 422),
    ("credits beyond a 64-bit int", "/contracts/{c}/credits", {"credits": 9223372036854775808}, 422),
    ("an instant before 2000", "/tickets/{t}/respond", {"at": "1999-12-31T23:59:59Z"}, 422),
    ("the first instant of year 1 in Tokyo", "/tickets/{t}/respond", {"at": "0001-01-01T00:00+09:00"}, 422),
    ("an instant after year 9999", "/tickets/{t}/respond", {"at": "9999-12-31T23:59:59-14:00"}, 422),
    ("a reason over 2,000 characters", "/tickets/{t}/pause", {"reason": LONG}, 422),
    ("an engineer name over 200", "/tickets/{t}/time", {"minutes": 5, "kind": "work", "engineer": "e" * 201}, 422),
    ("maintenance more than two years ahead", "/contracts/{c}/maintenance",
     {"starts_at": "2099-01-01T00:00:00Z", "ends_at": "2099-01-01T01:00:00Z"}, 422),
    ("maintenance before 2000", "/contracts/{c}/maintenance",
     {"starts_at": "1999-01-01T00:00:00Z", "ends_at": "1999-01-01T01:00:00Z"}, 422),
    ("a ticket title over 500 characters", "/tickets", {"title": "t" * 501, "reporter": "ana"}, 422),
    ("a reporter over 200 characters", "/tickets", {"title": "t", "reporter": "r" * 201}, 422),
    ("a ticket down since year 1 in Tokyo", "/tickets",
     {"title": "t", "reporter": "r", "down_since": "0001-01-01T00:00+09:00"}, 422),
    ("a ticket on a contract id that is no UUID", "/tickets", {"contract_id": "nope", "title": "t", "reporter": "r"},
     404),
]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_a_command_beyond_a_bound_is_refused_and_records_nothing(
    client: httpx.Client, name: str, path: str, body: dict[str, Any], status: int
) -> None:
    cid, tid = fresh(client)
    if path == "/tickets":
        body = {"contract_id": cid, **body}
    refused(client, cid, path.format(c=cid, t=tid), body, status)


def signing(**extra: Any) -> dict[str, Any]:
    return {"customer": "Acme", "plan": "crm-experts/gold", "starts_on": "2026-01-01",
            "at": "2026-01-01T00:00:00Z", **extra}


SIGNINGS: list[tuple[str, dict[str, Any]]] = [
    ("a customer name over 200 characters", signing(customer="c" * 201)),
    ("more than 400 holidays", signing(holidays=[f"2026-{m:02d}-{d:02d}" for m in range(1, 13)
                                                 for d in range(1, 29)] + ["2027-01-01"] * 65)),
    ("a start before 2000", signing(starts_on="1999-12-31")),
    ("a start in year 9999", signing(starts_on="9999-12-31")),
    ("a holiday in year 1", signing(holidays=["0001-01-01"])),
    ("a time zone name of 100 characters", signing(time_zone="Z" * 100)),
]


@pytest.mark.parametrize(("name", "body"), SIGNINGS, ids=[s[0] for s in SIGNINGS])
def test_a_signing_beyond_a_bound_is_refused(client: httpx.Client, name: str, body: dict[str, Any]) -> None:
    response = client.post("/contracts", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]


def test_a_body_over_one_mebibyte_is_refused_with_413(client: httpx.Client) -> None:
    cid, tid = fresh(client)
    before = history(client, cid)
    body = '{"reason": "' + "x" * (1024 * 1024) + '"}'
    response = client.post(f"/tickets/{tid}/pause", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]
    chunked = client.post(f"/tickets/{tid}/pause", content=iter([body.encode()[i:i + 65536]
                                                                  for i in range(0, len(body), 65536)]))
    assert chunked.status_code == 413
    assert history(client, cid) == before


@pytest.mark.parametrize("path", ["/tickets/not-a-uuid/respond", "/contracts/1234/credits",
                                  "/contracts/x/history", "/tickets/x/sla", "/contracts/x/ledger",
                                  "/contracts/x/availability", "/tickets/x", "/contracts/x/tickets"])
def test_an_id_that_is_no_uuid_answers_404_like_an_unknown_one(client: httpx.Client, path: str) -> None:
    response = client.post(path, json={"credits": 1}) if path.endswith(("respond", "credits")) else client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]


def test_one_id_spelled_in_capitals_names_the_same_contract_and_ticket(client: httpx.Client) -> None:
    cid = contract(client, "dolibarr/credits")
    upper = cid.upper()
    position = post(client, f"/contracts/{upper}/credits", credits=100)["position"]
    tid = ticket(client, upper)
    post(client, f"/tickets/{tid.upper()}/time", minutes=20, kind="query")
    events = client.get(f"/contracts/{upper}/history").json()["events"]
    assert [e["type"] for e in events] == ["Contract.Signed", "Contract.CreditsAdded", "Ticket.Opened",
                                           "Ticket.TimeConsumed"]
    assert {e["aggregate_id"] for e in events} == {cid, tid}
    ledger = client.get(f"/contracts/{upper}/ledger", params={"wait_for": position}).json()
    assert ledger["contract_id"] == cid


def test_wait_for_beyond_the_last_recorded_position_is_refused_at_once(client: httpx.Client) -> None:
    cid = contract(client)
    head = client.get(f"/contracts/{cid}/history").json()["events"][-1]["position"]
    for far in (head + 10_000_000, 2**63 - 1):
        response = client.get(f"/contracts/{cid}/ledger", params={"wait_for": far}, timeout=3)
        assert response.status_code == 422, response.text
    assert client.get(f"/contracts/{cid}/ledger", params={"wait_for": 2**63}).status_code == 422


def test_the_openapi_schema_publishes_the_bounds(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    parts = schema["components"]["schemas"]
    assert parts["TimeEntry"]["properties"]["minutes"]["maximum"] == 43_200
    assert parts["AddCredits"]["properties"]["credits"]["maximum"] == 1_000_000
    assert parts["OpenTicket"]["properties"]["title"]["maxLength"] == 500
    cancel = schema["paths"]["/tickets/{ticket_id}/cancel"]["post"]
    assert [p["name"] for p in cancel.get("parameters", []) if p["in"] == "query"] == []
    assert cancel["parameters"][0]["schema"]["format"] == "uuid"
    headers = [p["name"] for p in cancel["parameters"] if p["in"] == "header"]
    assert headers == ["idempotency-key"]


def test_a_query_parameter_that_no_route_declares_changes_nothing(client: httpx.Client) -> None:
    cid, tid = fresh(client)
    response = client.post(f"/tickets/{tid}/cancel", params={"_call": "x"}, json={})
    assert response.status_code == 200, response.text
    assert history(client, cid)[-1]["type"] == "Ticket.Cancelled"


def test_an_unknown_contract_and_an_unknown_ticket_answer_404(client: httpx.Client) -> None:
    assert client.get(f"/contracts/{uuid.uuid4()}/history").status_code == 404
    assert client.post(f"/tickets/{uuid.uuid4()}/respond").status_code == 404
