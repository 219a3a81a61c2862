"""The ledger over HTTP, worked by hand for each plan family: an hour bank that runs low, runs
out and renews; credits charged by the 2byte rules, a refused ticket on an empty contract, a
statement per resolved ticket; the datacrm guidance allowance across a quarter boundary; and
the low-balance and exhaustion notices on Kafka, once per crossing."""

from __future__ import annotations

import time
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition

from infra.kafka.notices import LEDGER_TOPIC as NOTICE_TOPIC
from infra.kafka.notices import decode_balance as decode_notice
from infra.settings import Settings
from tests.factories import contract, post, ticket


def ledger(client: httpx.Client, cid: str, position: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/contracts/{cid}/ledger", params={"wait_for": position, **params})
    assert response.status_code == 200, response.text
    return response.json()


def spend(client: httpx.Client, tid: str, minutes: int, at: str, kind: str = "work") -> int:
    return int(post(client, f"/tickets/{tid}/time", minutes=minutes, kind=kind, at=at)["position"])


def figures(answer: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("unit", "granted", "used", "balance", "overage", "low_balance", "exhausted")
    return tuple(answer[k] for k in keys)


def notices(settings: Settings, cid: str, expected: int, timeout: float = 15) -> list[tuple[str, dict[str, Any]]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=20)
    tp = TopicPartition(NOTICE_TOPIC, 0)
    consumer.assign([tp])
    deadline, found = time.monotonic() + timeout, []
    try:
        while len(found) < expected and time.monotonic() < deadline:
            consumer.seek_to_beginning(tp)
            end, seen = consumer.end_offsets([tp])[tp], []
            while len(seen) < end and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    seen.extend(records)
            found = [decode_notice(m.value, m.headers) for m in seen if m.key == cid.encode()]
            time.sleep(0.2)
    finally:
        consumer.close()
    return found


def test_an_hour_bank_runs_low_runs_out_with_overage_and_renews_to_a_fresh_bank(
    client: httpx.Client, servers: Settings
) -> None:
    cid = contract(client, "crm-experts/silver", starts_on="2025-01-01", at="2024-12-15T10:00:00-05:00")
    tid = ticket(client, cid, at="2025-03-03T09:00:00-05:00")
    spend(client, tid, 1000, "2025-03-03T17:00:00-05:00")
    position = spend(client, tid, 90, "2025-03-04T17:00:00-05:00")
    low = ledger(client, cid, position)
    assert figures(low) == ("minutes", 1200, 1090, 110, 0, True, False)
    assert low["low_balance_threshold"] == 120
    position = spend(client, tid, 150, "2025-03-05T17:00:00-05:00")
    out = ledger(client, cid, position)
    assert figures(out) == ("minutes", 1200, 1240, -40, 40, True, True)
    assert [(e["minutes"], e["charge"], e["overage"]) for e in out["entries"]] == [
        (1000, 1000, 0), (90, 90, 0), (150, 150, 40)]
    assert out["entries"][0]["ticket_id"] == tid and out["entries"][0]["kind"] == "work"
    assert out["renews_at"] == "2026-01-01T00:00:00-05:00"

    position = post(client, f"/contracts/{cid}/renew", at="2026-01-01T00:00:00-05:00")["position"]
    fresh = ledger(client, cid, position)
    assert (fresh["period"], fresh["periods"]) == ("2026-01-01", ["2025-01-01", "2026-01-01"])
    assert figures(fresh) == ("minutes", 1200, 0, 1200, 0, False, False) and fresh["entries"] == []
    assert fresh["renews_at"] == "2027-01-01T00:00:00-05:00"
    # A back-dated entry arriving after the renewal lands in the period it happened in.
    position = spend(client, tid, 10, "2025-12-31T23:50:00-05:00")
    assert ledger(client, cid, position)["used"] == 0
    old = ledger(client, cid, position, period="2025-01-01")
    assert (old["used"], old["balance"], old["ends_at"]) == (1250, -50, "2026-01-01T00:00:00-05:00")

    kinds = [(name.rsplit(".", 1)[1], n["crossing"], n["balance"]) for name, n in notices(servers, cid, 2)]
    assert kinds == [("LowBalanceReached", 1, 110), ("BalanceExhausted", 1, -40)]


def test_credits_are_charged_by_the_rules_and_an_empty_contract_refuses_new_tickets(
    client: httpx.Client
) -> None:
    cid = contract(client, "dolibarr/credits", starts_on="2026-01-01", at="2026-01-01T09:00:00+01:00")
    refused = client.post("/tickets", json={"contract_id": cid, "title": "Invoice PDF", "reporter": "ana"})
    assert refused.status_code == 409, refused.text
    assert "no credits left" in refused.json()["error"]

    post(client, f"/contracts/{cid}/credits", credits=120, at="2026-01-02T09:00:00+01:00")
    tid = ticket(client, cid, at="2026-01-05T09:00:00+01:00")
    spend(client, tid, 70, "2026-01-05T11:00:00+01:00", kind="intervention")  # 75 credits
    position = spend(client, tid, 1, "2026-01-05T12:00:00+01:00", kind="query")  # 15 credits
    answer = ledger(client, cid, position)
    assert figures(answer) == ("credits", 120, 90, 30, 0, True, False)
    assert [(e["minutes"], e["charge"]) for e in answer["entries"]] == [(70, 75), (1, 15)]

    position = post(client, f"/tickets/{tid}/resolve", at="2026-01-05T13:00:00+01:00")["position"]
    statement = client.get(f"/tickets/{tid}/statement", params={"wait_for": position}).json()
    assert (statement["unit"], statement["minutes"], statement["charge"], statement["balance_after"]) == (
        "credits", 71, 90, 30)
    assert [e["charge"] for e in statement["entries"]] == [75, 15]

    second = ticket(client, cid, at="2026-01-06T09:00:00+01:00")
    position = spend(client, second, 30, "2026-01-06T10:00:00+01:00", kind="intervention")  # 45
    assert figures(ledger(client, cid, position)) == ("credits", 120, 135, -15, 15, True, True)
    again = client.post("/tickets", json={"contract_id": cid, "title": "Again", "reporter": "ana"})
    assert again.status_code == 409 and again.json()["detail"] == {"balance": -15}


def test_a_statement_is_not_found_before_the_ticket_is_resolved(client: httpx.Client) -> None:
    cid = contract(client, "crm-experts/gold")
    tid = ticket(client, cid, at="2026-11-01T09:00:00-05:00")
    position = spend(client, tid, 5, "2026-11-01T10:00:00-05:00")
    response = client.get(f"/tickets/{tid}/statement", params={"wait_for": position})
    assert response.status_code == 404 and "not resolved" in response.json()["error"]


def test_the_guidance_allowance_resets_at_the_quarter_boundary_in_bogota(client: httpx.Client) -> None:
    cid = contract(client, "datacrm/standard", starts_on="2026-01-01", at="2026-01-01T08:00:00-05:00")
    tid = ticket(client, cid, at="2026-03-20T09:00:00-05:00")
    spend(client, tid, 90, "2026-03-20T10:00:00-05:00", kind="guidance")
    spend(client, tid, 60, "2026-03-31T23:30:00-05:00", kind="guidance")  # 1 April 04:30 UTC
    spend(client, tid, 40, "2026-04-01T00:10:00-05:00", kind="work")
    position = spend(client, tid, 30, "2026-04-01T00:20:00-05:00", kind="guidance")
    q1 = ledger(client, cid, position, period="2026-Q1")
    assert figures(q1) == ("minutes", 120, 150, -30, 30, False, True)
    assert [(e["minutes"], e["charge"], e["overage"]) for e in q1["entries"]] == [(90, 90, 0), (60, 60, 30)]
    assert (q1["starts_at"], q1["ends_at"]) == ("2026-01-01T00:00:00-05:00", "2026-04-01T00:00:00-05:00")
    q2 = ledger(client, cid, position, period="2026-Q2")
    assert figures(q2) == ("minutes", 120, 30, 90, 0, False, False)
    assert [(e["kind"], e["charge"]) for e in q2["entries"]] == [("work", 0), ("guidance", 30)]
    current = ledger(client, cid, position)
    assert current["used"] == 0 and current["balance"] == 120
    assert {"2026-Q1", "2026-Q2", current["period"]} <= set(current["periods"])
    assert ledger(client, cid, position, period="2025-Q3")["entries"] == []


def test_an_unknown_contract_or_period_is_not_found(client: httpx.Client) -> None:
    assert client.get("/contracts/nope/ledger").status_code == 404
    cid = contract(client, "crm-experts/gold")
    position = post(client, f"/contracts/{cid}/cancel")["position"]
    response = client.get(f"/contracts/{cid}/ledger", params={"wait_for": position, "period": "1999-01-01"})
    assert response.status_code == 404 and response.json()["detail"] == {"periods": ["2026-01-01"]}
    answer = ledger(client, cid, position)
    assert answer["status"] == "cancelled" and answer["renews_at"] is None
