"""Bad input gets a clear 4xx with a JSON reason and records nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.factories import contract, history, post, ticket

Setup = Callable[[httpx.Client], tuple[str, str]]


def fresh(client: httpx.Client) -> tuple[str, str]:
    cid = contract(client, "crm-experts/gold")
    return cid, ticket(client, cid, at="2026-03-02T10:00:00-05:00")


def refused(client: httpx.Client, cid: str, path: str, body: dict[str, Any] | None, status: int) -> dict[str, Any]:
    before = history(client, cid)
    response = client.post(path, json=body) if body is not None else client.post(path)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "detail"} and answer["error"]
    assert history(client, cid) == before, "a refused command recorded something"
    return answer


CASES = [
    ("respond to an unknown ticket", lambda c, t: f"/tickets/{uuid.uuid4()}/respond", None, 404),
    ("resume a ticket that is not paused", lambda c, t: f"/tickets/{t}/resume", {}, 409),
    ("minutes of zero", lambda c, t: f"/tickets/{t}/time", {"minutes": 0, "kind": "work"}, 422),
    ("negative minutes", lambda c, t: f"/tickets/{t}/time", {"minutes": -5, "kind": "work"}, 422),
    ("an unknown entry kind", lambda c, t: f"/tickets/{t}/time", {"minutes": 5, "kind": "lunch"}, 422),
    ("an instant without offset", lambda c, t: f"/tickets/{t}/respond", {"at": "2026-03-02T11:00:00"}, 422),
    ("an instant in the future", lambda c, t: f"/tickets/{t}/respond", {"at": "2099-01-01T00:00:00Z"}, 422),
    ("an instant before the previous event", lambda c, t: f"/tickets/{t}/respond", {"at": "2026-03-01T00:00:00Z"}, 422),
    ("an unknown priority", lambda c, t: f"/tickets/{t}/classify", {"priority": "P9"}, 422),
    ("an unknown category", lambda c, t: f"/tickets/{t}/classify", {"priority": "P1", "category": "panic"}, 422),
    ("an unknown field", lambda c, t: f"/tickets/{t}/respond", {"urgent": True}, 422),
    ("restore on a ticket that is not an outage", lambda c, t: f"/tickets/{t}/restore", {}, 409),
    ("credits on an hour-bank plan", lambda c, t: f"/contracts/{c}/credits", {"credits": 100}, 409),
]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_a_refused_ticket_command_answers_why_and_records_nothing(
    client: httpx.Client, name: str, path: Any, body: Any, status: int
) -> None:
    cid, tid = fresh(client)
    refused(client, cid, path(cid, tid), body, status)


def test_resolving_twice_is_a_conflict(client: httpx.Client) -> None:
    cid, tid = fresh(client)
    post(client, f"/tickets/{tid}/resolve", at="2026-03-02T12:00:00-05:00")
    answer = refused(client, cid, f"/tickets/{tid}/resolve", {}, 409)
    assert "resolved" in answer["error"]


def test_time_on_a_cancelled_contract_is_refused(client: httpx.Client) -> None:
    cid, tid = fresh(client)
    post(client, f"/contracts/{cid}/cancel", reason="customer left")
    answer = refused(client, cid, f"/tickets/{tid}/time", {"minutes": 30, "kind": "work"}, 409)
    assert "cancelled" in answer["error"]


def test_a_ticket_on_a_cancelled_contract_is_refused(client: httpx.Client) -> None:
    cid = contract(client)
    post(client, f"/contracts/{cid}/cancel")
    refused(client, cid, "/tickets", {"contract_id": cid, "title": "x", "reporter": "y"}, 409)


def test_a_channel_the_plan_does_not_offer_is_refused(client: httpx.Client) -> None:
    cid = contract(client, "crm-experts/silver")
    answer = refused(client, cid, "/tickets", {"contract_id": cid, "title": "x", "reporter": "y", "channel": "phone"}, 422)
    assert "phone" in answer["error"]


def test_portal_is_offered_by_every_plan_and_is_the_default(client: httpx.Client) -> None:
    for plan in ("crm-experts/silver", "bpm/basic", "datacrm/standard", "sf-partner/silver", "dolibarr/credits"):
        cid = contract(client, plan)
        if plan == "dolibarr/credits":
            post(client, f"/contracts/{cid}/credits", credits=60)
        tid = ticket(client, cid)
        opened = history(client, cid)[-1]
        assert opened["aggregate_id"] == tid and opened["channel"] == "portal"


def test_an_unknown_plan_is_refused(client: httpx.Client) -> None:
    response = client.post("/contracts", json={"customer": "x", "plan": "nope/none", "starts_on": "2026-01-01"})
    assert response.status_code == 422
    assert "unknown plan" in response.json()["error"]


def test_an_unknown_contract_is_not_found(client: httpx.Client) -> None:
    response = client.post("/tickets", json={"contract_id": str(uuid.uuid4()), "title": "x", "reporter": "y"})
    assert response.status_code == 404
    assert response.json()["error"].startswith("no contract")


def test_a_ticket_on_a_credit_contract_without_credits_is_refused(client: httpx.Client) -> None:
    cid = contract(client, "dolibarr/credits")
    answer = refused(client, cid, "/tickets", {"contract_id": cid, "title": "x", "reporter": "y"}, 409)
    assert "no credits left" in answer["error"]
