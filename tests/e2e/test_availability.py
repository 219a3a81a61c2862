"""Availability over HTTP (command -> store -> relay -> Kafka -> projection -> GET), the
error-budget notices on their Kafka topic, and the PostgreSQL view agreeing with the
in-memory one on random ticket lifecycles."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition
from psycopg.rows import dict_row

from infra.kafka.notices import AVAILABILITY_TOPIC as NOTICE_TOPIC
from infra.kafka.notices import decode_budget as decode_notice
from infra.postgres.views.availability import PgAvailabilityView, load
from infra.process import wiring
from infra.settings import Settings
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from tests.factories import contract, post, ticket
from tests.unit.test_availability_projection import _interleave, _terms, lifecycles

SIGNED_AT = "2026-01-01T00:00:00Z"


def signed(client: httpx.Client, plan: str = "datacrm/standard", **extra: Any) -> str:
    return contract(client, plan=plan, at=SIGNED_AT, **extra)


def outage(client: httpx.Client, cid: str, start: str, end: str | None = None,
           close: str = "restore", **extra: Any) -> int:
    """A system-down ticket opened at `start`, restored (or resolved) at `end`; its position."""
    tid = ticket(client, cid, category="system-down", at=start, **extra)
    if end is None:
        return int(post(client, f"/tickets/{tid}/respond", at=start)["position"])
    return int(post(client, f"/tickets/{tid}/{close}", at=end)["position"])


def availability(client: httpx.Client, cid: str, month: str, position: int) -> dict[str, Any]:
    response = client.get(f"/contracts/{cid}/availability",
                          params={"month": month, "wait_for": position})
    assert response.status_code == 200, response.text
    return response.json()


def test_overlapping_outages_are_counted_once_in_a_31_day_month(client: httpx.Client) -> None:
    cid = signed(client)
    outage(client, cid, "2026-03-10T10:00:00-05:00", "2026-03-10T11:00:00-05:00")
    last = outage(client, cid, "2026-03-10T10:30:00-05:00", "2026-03-10T12:00:00-05:00", close="resolve")
    a = availability(client, cid, "2026-03", last)
    assert a["minutes_in_month"] == 44_640
    assert a["downtime_minutes"] == 120
    assert a["availability_pct"] == 99.7312
    assert (a["target_pct"], a["met"]) == (99.96, False)
    assert a["allowed_downtime_minutes"] == 17.856
    assert a["budget_left_minutes"] == round(17.856 - 120, 4)
    assert a["budget_exhausted"] is True
    assert len(a["outages"]) == 2


def test_an_outage_across_a_month_end_is_split_between_january_and_february(client: httpx.Client) -> None:
    cid = signed(client)
    last = outage(client, cid, "2026-01-31T23:00:00-05:00", "2026-02-01T01:00:00-05:00")
    january = availability(client, cid, "2026-01", last)
    february = availability(client, cid, "2026-02", last)
    assert (january["minutes_in_month"], january["downtime_minutes"]) == (44_640, 60)
    assert (february["minutes_in_month"], february["downtime_minutes"]) == (40_320, 60)
    assert february["allowed_downtime_minutes"] == 16.128
    assert february["availability_pct"] == round(100 * (1 - 60 / 40_320), 4)


def test_downtime_inside_planned_maintenance_is_excluded_and_reported_apart(client: httpx.Client) -> None:
    cid = signed(client)
    post(client, f"/contracts/{cid}/maintenance", at="2026-05-01T00:00:00Z", reason="upgrade",
         starts_at="2026-05-05T01:00:00-05:00", ends_at="2026-05-05T03:00:00-05:00")
    last = outage(client, cid, "2026-05-05T02:00:00-05:00", "2026-05-05T04:00:00-05:00")
    a = availability(client, cid, "2026-05", last)
    assert (a["downtime_minutes"], a["maintenance_minutes"]) == (60, 60)
    assert a["maintenance"] == [{"starts_at": "2026-05-05T06:00:00+00:00", "ends_at": "2026-05-05T08:00:00+00:00"}]
    inside = outage(client, cid, "2026-05-05T01:30:00-05:00", "2026-05-05T02:30:00-05:00")
    assert availability(client, cid, "2026-05", inside)["downtime_minutes"] == 60


def test_classification_decides_what_is_an_outage(client: httpx.Client) -> None:
    cid = signed(client)
    late = ticket(client, cid, category="incident", at="2026-06-02T10:00:00-05:00")
    post(client, f"/tickets/{late}/classify", priority="P1", category="system-down", at="2026-06-02T10:20:00-05:00")
    post(client, f"/tickets/{late}/restore", at="2026-06-02T10:45:00-05:00")
    withdrawn = ticket(client, cid, category="system-down", at="2026-06-03T10:00:00-05:00")
    post(client, f"/tickets/{withdrawn}/classify", priority="P3", category="incident", at="2026-06-03T10:05:00-05:00")
    last = post(client, f"/tickets/{withdrawn}/resolve", at="2026-06-03T12:00:00-05:00")["position"]
    assert availability(client, cid, "2026-06", last)["downtime_minutes"] == 45


def test_a_plan_without_an_availability_target_answers_with_nulls(client: httpx.Client) -> None:
    cid = signed(client, plan="crm-experts/gold")
    last = outage(client, cid, "2026-04-10T10:00:00-04:00", "2026-04-10T10:30:00-04:00")
    a = availability(client, cid, "2026-04", last)
    assert a["downtime_minutes"] == 30
    assert a["minutes_in_month"] == 43_200
    nulls = ("target_pct", "met", "allowed_downtime_minutes", "budget_left_minutes", "budget_exhausted")
    assert {k: a[k] for k in nulls} == dict.fromkeys(nulls)


def test_an_unknown_contract_is_404_and_a_bad_month_422(client: httpx.Client) -> None:
    assert client.get(f"/contracts/{uuid.uuid4()}/availability", params={"month": "2026-01"}).status_code == 404
    body = post(client, "/contracts", 201, customer="Acme", plan="datacrm/standard",
                starts_on="2026-01-01", at=SIGNED_AT)
    params = {"month": "2026-13", "wait_for": body["position"]}
    response = client.get(f"/contracts/{body['contract_id']}/availability", params=params)
    assert response.status_code == 422
    assert response.json()["detail"] == {"month": "2026-13"}


# Notices on Kafka.


def notices(bootstrap: str, cid: str, wait: float, until: int = 1) -> list[dict[str, Any]]:
    """The contract's notices on the topic (read from its start), waiting up to `wait` s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    tp = TopicPartition(NOTICE_TOPIC, 0)
    found: list[dict[str, Any]] = []
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(found) < until:
            for record in consumer.poll(timeout_ms=200).get(tp, []):
                if record.key == cid.encode():
                    found.append(decode_notice(record.value) | {"headers": dict(record.headers)})
        end = consumer.end_offsets([tp])[tp]
        while consumer.position(tp) < end:  # read the rest, to see any repeat
            for record in consumer.poll(timeout_ms=200).get(tp, []):
                if record.key == cid.encode():
                    found.append(decode_notice(record.value) | {"headers": dict(record.headers)})
    finally:
        consumer.close()
    return found


def test_a_spent_error_budget_is_noticed_once_on_kafka(client: httpx.Client, servers: Settings) -> None:
    cid = signed(client)
    outage(client, cid, "2026-04-10T10:00:00-05:00", "2026-04-10T10:20:00-05:00")
    assert servers.kafka_bootstrap
    first = notices(servers.kafka_bootstrap, cid, wait=20)
    assert [n["notice_id"] for n in first] == [f"budget-exhausted:{cid}:2026-04"]
    assert first[0]["exhausted_at"] == datetime(2026, 4, 10, 15, 17, 16, 800000, tzinfo=UTC)
    assert first[0]["headers"]["ticketing-notice-type"] == b"Availability.ErrorBudgetExhausted"
    last = outage(client, cid, "2026-04-11T10:00:00-05:00", "2026-04-11T10:20:00-05:00")
    assert availability(client, cid, "2026-04", last)["downtime_minutes"] == 40
    time.sleep(2.5)  # two ticks
    assert len(notices(servers.kafka_bootstrap, cid, wait=0, until=0)) == 1


# The PostgreSQL view against the in-memory reference.


@pytest.fixture(scope="module")
def scratch(servers: Settings) -> str:
    """A throwaway schema holding the availability tables, beside the live ones."""
    assert servers.database_url
    wiring.create_tables(servers.database_url, "availability", "test_availability_view")
    return "test_availability_view"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(*[lifecycles(f"t-{i}") for i in range(n)])),
       st.randoms(use_true_random=False), st.integers(1, 8))
def test_the_postgresql_view_agrees_with_the_in_memory_one(
    servers: Settings, scratch: str, tickets: tuple[list[Any], ...], rng: random.Random, batch: int
) -> None:
    cid = str(uuid.uuid4())
    now = datetime(2026, 5, 20, tzinfo=UTC)
    streams = [[(f"{cid}:t{i}", *e) for e in events] for i, events in enumerate(tickets)]
    envs = [Envelope(1, "Contract.Signed", cid, 1, cid, now, now, {"terms": _terms(99.96), "time_zone": "UTC"})]
    for n, (tid, verb, when, data) in enumerate(_interleave(streams, rng), start=2):
        extra = {"title": "x", "reporter": "r", "channel": "portal", "priority": None} if verb == "Opened" else {}
        envs.append(Envelope(n, f"Ticket.{verb}", tid, 1, cid, when, when, data | extra))
    projection, memory = AvailabilityProjection(), InMemoryAvailabilityView()
    assert servers.database_url
    with psycopg.connect(servers.database_url) as conn:
        for i in range(0, len(envs), batch):
            view = PgAvailabilityView(conn, scratch)
            # Each batch comes after the one before it again (a redelivery): dropped.
            delivered = envs[max(0, i - batch):i] + envs[i:i + batch]
            for env in delivered:
                projection.apply(env, view)
            for env in envs[i:i + batch]:
                projection.apply(env, memory)
            view.flush()
            conn.commit()
        projection.tick(now, PgAvailabilityView(conn, scratch))
        projection.tick(now, memory)
        conn.commit()
        stored = load(lambda q, p: conn.cursor(row_factory=dict_row).execute(q, p).fetchall(),
                      scratch, cid)
    expected = memory.outages_of(cid)
    assert stored is not None and expected is not None
    assert stored.outages == expected.outages
    assert stored.noticed == expected.noticed
    for month in ("2026-03", "2026-04", "2026-05"):
        assert stored.month(month, now) == expected.month(month, now)


def test_the_availability_runner_parked_nothing(db: psycopg.Connection) -> None:
    parked = db.execute("SELECT position, reason FROM proj_availability.dead_letter").fetchall()
    assert parked == []
