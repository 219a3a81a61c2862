"""The reads a client makes first, over HTTP: the plan catalog (every plan, one plan by its id
with the slash in it, its full terms and named-user limit) and a signed contract read back from
the event store at once (customer, plan, status, zone, dates, agreed terms, named users), and
404 with the error body for what does not exist."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from infra.process.catalog import load_catalog
from tests.factories import contract, post, ticket

CATALOG = load_catalog()
# The limits the pages state (docs/plans.md); null is unlimited.
NAMED_USERS = {
    "bpm/basic": 1, "bpm/business": 1, "bpm/premium": 1,
    "crm-experts/silver": 1, "crm-experts/gold": 6, "crm-experts/platinum": 4,
    "datacrm/premium-support": None, "datacrm/standard": None,
    "dolibarr/credits": 1,
    "sf-partner/gold": None, "sf-partner/platinum": None, "sf-partner/silver": None,
}


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def read(client: httpx.Client, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def missing(client: httpx.Client, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 404, (path, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"], body
    return body


def test_the_catalog_lists_every_plan_with_its_full_terms_and_named_user_limit(client: httpx.Client) -> None:
    plans = read(client, "/plans")["plans"]
    assert [p["plan_id"] for p in plans] == sorted(NAMED_USERS) == sorted(CATALOG)
    for plan in plans:
        terms = CATALOG[plan["plan_id"]]
        assert plan == {
            "plan_id": terms.plan_id, "provider": terms.provider, "name": terms.name,
            "time_zone": terms.time_zone, "channels": list(terms.channels),
            "named_users": NAMED_USERS[terms.plan_id], "terms": as_json(terms.to_dict()),
        }, plan["plan_id"]


def test_one_plan_is_read_by_its_id_with_the_slash_in_it_plain_or_encoded(client: httpx.Client) -> None:
    gold = read(client, "/plans/crm-experts/gold")
    assert (gold["plan_id"], gold["provider"], gold["name"]) == ("crm-experts/gold", "crm-experts", "Gold (Oro)")
    assert (gold["time_zone"], gold["channels"], gold["named_users"]) == (
        "America/New_York", ["portal", "email", "slack"], 6)
    assert gold["terms"]["bank"] == {"minutes": 2400, "period_months": 12, "low_balance_minutes": 240}
    assert gold["terms"]["targets"]["P1"] == {"response": "1h", "resolution": None}
    assert gold["terms"]["calendars"] == {"business": {"windows": {
        day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}}}
    assert read(client, "/plans/crm-experts%2Fgold") == gold
    assert read(client, "/plans/datacrm/premium-support")["named_users"] is None
    credits = read(client, "/plans/dolibarr/credits")
    assert credits["named_users"] == 1 and credits["terms"]["credits"]["charges"]["query"] == {
        "minimum": 15, "block": 15, "flat": None}
    premium = read(client, "/plans/bpm/premium")
    assert premium["named_users"] == premium["terms"]["named_users"] == 1
    assert premium["terms"]["calendars"]["24x7"] == {"always_open": True}


@pytest.mark.parametrize("plan_id", ["nope", "crm-experts/diamond", "crm-experts", "crm-experts/gold/extra",
                                     "CRM-EXPERTS/GOLD", ""])
def test_a_plan_id_the_catalog_does_not_hold_answers_404_with_the_error_body(
        client: httpx.Client, plan_id: str) -> None:
    body = missing(client, f"/plans/{plan_id}")
    assert body["detail"] == {"plans": sorted(CATALOG)}


def test_a_signed_contract_reads_back_from_the_store_at_once_with_its_agreed_terms(client: httpx.Client) -> None:
    cid = contract(client, "bpm/business", customer="Globex", starts_on="2026-02-01", time_zone="Europe/Samara",
                   holidays=["2026-03-09", "2026-02-23"], at="2026-01-20T10:00:00Z")
    signed = read(client, f"/contracts/{cid}")  # no wait_for: the store is read, not a read model
    assert signed == {
        "contract_id": cid, "customer": "Globex", "plan": "bpm/business", "status": "active",
        "time_zone": "Europe/Samara", "starts_on": "2026-02-01", "holidays": ["2026-02-23", "2026-03-09"],
        "terms": as_json(CATALOG["bpm/business"].to_dict()), "named_users": 1, "erased_at": None,
    }
    # The terms are the ones the Signed event copied, read back unchanged.
    events = read(client, f"/contracts/{cid}/history")["events"]
    assert events[0]["type"] == "Contract.Signed" and events[0]["terms"] == signed["terms"]

    post(client, f"/contracts/{cid}/cancel", reason="moving on", at="2026-03-01T10:00:00Z")
    assert read(client, f"/contracts/{cid}") == {**signed, "status": "cancelled"}


def test_a_contract_on_an_unlimited_plan_answers_named_users_null_and_the_plans_own_zone(
        client: httpx.Client) -> None:
    cid = contract(client, "sf-partner/gold")
    answer = read(client, f"/contracts/{cid}")
    assert (answer["plan"], answer["named_users"], answer["terms"]["named_users"]) == ("sf-partner/gold", None, None)
    assert (answer["time_zone"], answer["starts_on"], answer["holidays"]) == (
        "America/Argentina/Buenos_Aires", "2026-01-01", [])
    assert (answer["customer"], answer["status"]) == ("Acme", "active")


def test_an_unknown_id_a_ticket_id_or_no_uuid_answers_404_for_a_contract(client: httpx.Client) -> None:
    tid = ticket(client, contract(client))
    for path in (f"/contracts/{uuid.uuid4()}", f"/contracts/{tid}", "/contracts/nope", "/contracts/123"):
        missing(client, path)
