"""SLA over HTTP (command -> store -> relay -> Kafka -> projection -> GET): a ticket's life on
each plan family with the due instants and statuses worked out by hand, the monthly compliance
report, the explanation, breach notices on Kafka (on time, once, across a restart), and the
PostgreSQL view agreeing with the in-memory one.

Statuses are judged at the real now (late 2026), so a clock left on past its 2026 due instant
reads `breached`.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from infra.kafka.notices import SLA_TOPIC as NOTICE_TOPIC
from infra.kafka.notices import decode_breach as decode_notice
from infra.postgres.views.sla import PgSlaView
from infra.process import wiring
from infra.process.catalog import load_catalog
from infra.settings import Settings
from projections.envelope import Envelope
from projections.sla import InMemorySlaView, SlaProjection
from tests.factories import contract, post, ticket
from tests.processes import Processes

SIGNED_AT = "2026-01-01T00:00:00Z"


def sla(client: httpx.Client, tid: str, position: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/tickets/{tid}/sla", params={"wait_for": position, **params})
    assert response.status_code == 200, response.text
    return response.json()


def clock(body: dict[str, Any], name: str) -> tuple[Any, ...]:
    c = body[name]
    due = c["due_at"] and datetime.fromisoformat(c["due_at"])
    stopped = c["stopped_at"] and datetime.fromisoformat(c["stopped_at"])
    return due, stopped, c["status"]


def live(client: httpx.Client, plan: str, opened: str, steps: list[tuple[Any, ...]], **open_extra: Any) -> None:
    """Open a ticket at `opened`, then for each (verb, at, body, response, resolution) post
    the command and check each clock's (due_at, stopped_at, status) as written."""
    cid = contract(client, plan=plan, at=SIGNED_AT)
    found = post(client, "/tickets", 201, contract_id=cid, title="Login fails", reporter="ana",
                 at=opened, **open_extra)
    tid, position = found["ticket_id"], found["position"]
    for verb, at, body, response, resolution in steps:
        if verb:
            position = post(client, f"/tickets/{tid}/{verb}", at=at, **body)["position"]
        got = sla(client, tid, position)
        assert clock(got, "response") == _expect(response), (verb, at, got)
        assert clock(got, "resolution") == _expect(resolution), (verb, at, got)


def _expect(values: tuple[Any, ...]) -> tuple[Any, ...]:
    due, stopped, status = values
    return (due and datetime.fromisoformat(due), stopped and datetime.fromisoformat(stopped), status)


NONE = (None, None, "none")


def test_a_crm_experts_gold_ticket_life(client: httpx.Client) -> None:
    # New York, Mon-Fri 08-20, responses only. Unclassified: P3, 2bd = 24 h from Tue Jun 2
    # 10:00 (Tue 10 h, Wed 12 h, Thu 2 h) -> Thu 10:00. Classified P1 (1 h) from the opening:
    # 11:00. A response at 10:50 is met. Pauses and reopenings move no response clock; there is
    # no resolution target (none), though the clock's stop is shown.
    p1 = ("2026-06-02T11:00:00-04:00", "2026-06-02T10:50:00-04:00", "met")
    live(client, "crm-experts/gold", "2026-06-02T10:00:00-04:00", [
        (None, None, {}, ("2026-06-04T10:00:00-04:00", None, "breached"), NONE),
        ("classify", "2026-06-02T10:30:00-04:00", {"priority": "P1"},
         ("2026-06-02T11:00:00-04:00", None, "breached"), NONE),
        ("respond", "2026-06-02T10:50:00-04:00", {}, p1, NONE),
        ("pause", "2026-06-02T11:00:00-04:00", {}, p1, NONE),
        ("resume", "2026-06-02T12:00:00-04:00", {}, p1, NONE),
        ("resolve", "2026-06-02T15:00:00-04:00", {}, p1, (None, "2026-06-02T15:00:00-04:00", "none")),
        ("reopen", "2026-06-03T09:00:00-04:00", {}, p1, NONE),
    ])


def test_a_bpm_premium_ticket_life_with_a_pause_and_a_reopening(client: httpx.Client) -> None:
    # Moscow. P2 at Fri Jun 5 15:00: reaction 4 h (24x7) -> 19:00; resolution 3 working days
    # (Mon-Fri 00-24) -> Wed Jun 10 15:00. Raised to P1: 60 min -> 16:00, resolution 12 h (24x7)
    # -> Sat 03:00. Paused 16:00-18:00 -> Sat 05:00. Resolved 23:00 after 6 h: met. Reopened
    # Sat 10:00 with 6 h left -> due Sat 16:00, and still on now: breached.
    met = ("2026-06-05T16:00:00+03:00", "2026-06-05T15:50:00+03:00", "met")
    live(client, "bpm/premium", "2026-06-05T15:00:00+03:00", [
        (None, None, {}, ("2026-06-05T19:00:00+03:00", None, "breached"),
         ("2026-06-10T15:00:00+03:00", None, "breached")),
        ("classify", "2026-06-05T15:30:00+03:00", {"priority": "P1"},
         ("2026-06-05T16:00:00+03:00", None, "breached"), ("2026-06-06T03:00:00+03:00", None, "breached")),
        ("respond", "2026-06-05T15:50:00+03:00", {}, met, ("2026-06-06T03:00:00+03:00", None, "breached")),
        ("pause", "2026-06-05T16:00:00+03:00", {}, met, (None, None, "paused")),
        ("resume", "2026-06-05T18:00:00+03:00", {}, met, ("2026-06-06T05:00:00+03:00", None, "breached")),
        ("resolve", "2026-06-05T23:00:00+03:00", {}, met,
         ("2026-06-06T05:00:00+03:00", "2026-06-05T23:00:00+03:00", "met")),
        ("reopen", "2026-06-06T10:00:00+03:00", {}, met, ("2026-06-06T16:00:00+03:00", None, "breached")),
    ], priority="P2")


def test_a_datacrm_ticket_life_on_the_split_shift(client: httpx.Client) -> None:
    # Bogota, 08-12 + 14-17, Colombian holidays (Mon Mar 23). No category: incident. Response
    # 4 h from Fri Mar 20 16:00: Fri 1 h, Tue 08-11 -> Tue 11:00; resolution 1bd = 7 h: Fri 1 h,
    # Tue 08-12 4 h, 14-16 2 h -> Tue 16:00. Reclassified system-down: response "immediate" ->
    # due at the opening, 16:00 (responded 16:40: missed); resolution 1.5 h: Fri 1 h, Tue 08:30.
    # Paused Tue 08:15-09:00 with 15 min left -> 09:15; resolved 09:10: met. Reopened Wed 10:00
    # with 5 min left -> 10:05: breached.
    missed = ("2026-03-20T16:00:00-05:00", "2026-03-20T16:40:00-05:00", "missed")
    live(client, "datacrm/standard", "2026-03-20T16:00:00-05:00", [
        (None, None, {}, ("2026-03-24T11:00:00-05:00", None, "breached"),
         ("2026-03-24T16:00:00-05:00", None, "breached")),
        ("classify", "2026-03-20T16:30:00-05:00", {"priority": "P1", "category": "system-down"},
         ("2026-03-20T16:00:00-05:00", None, "breached"), ("2026-03-24T08:30:00-05:00", None, "breached")),
        ("respond", "2026-03-20T16:40:00-05:00", {}, missed, ("2026-03-24T08:30:00-05:00", None, "breached")),
        ("pause", "2026-03-24T08:15:00-05:00", {}, missed, (None, None, "paused")),
        ("resume", "2026-03-24T09:00:00-05:00", {}, missed, ("2026-03-24T09:15:00-05:00", None, "breached")),
        ("resolve", "2026-03-24T09:10:00-05:00", {}, missed,
         ("2026-03-24T09:15:00-05:00", "2026-03-24T09:10:00-05:00", "met")),
        ("reopen", "2026-03-25T10:00:00-05:00", {}, missed, ("2026-03-25T10:05:00-05:00", None, "breached")),
    ])


def test_an_sf_partner_platinum_ticket_runs_p1_around_the_clock(client: httpx.Client) -> None:
    # Buenos Aires. P2 at Sat May 16 10:00 waits for Mon 08:00 (+1 h: 09:00); raised to P1 at
    # 10:30, P1's 24x7 calendar applies from the opening: 11:00; responded 10:45, met.
    met = ("2026-05-16T11:00:00-03:00", "2026-05-16T10:45:00-03:00", "met")
    live(client, "sf-partner/platinum", "2026-05-16T10:00:00-03:00", [
        (None, None, {}, ("2026-05-18T09:00:00-03:00", None, "breached"), NONE),
        ("classify", "2026-05-16T10:30:00-03:00", {"priority": "P1"}, ("2026-05-16T11:00:00-03:00", None, "breached"), NONE),
        ("respond", "2026-05-16T10:45:00-03:00", {}, met, NONE),
        ("pause", "2026-05-16T11:00:00-03:00", {}, met, NONE),
        ("resume", "2026-05-16T12:00:00-03:00", {}, met, NONE),
        ("resolve", "2026-05-16T13:00:00-03:00", {}, met, (None, "2026-05-16T13:00:00-03:00", "none")),
        ("reopen", "2026-05-18T09:00:00-03:00", {}, met, NONE),
    ], priority="P2")


def test_the_explanation_shows_counted_paused_and_outside_coverage_time(client: httpx.Client) -> None:
    cid = contract(client, plan="datacrm/standard", at=SIGNED_AT)
    tid = ticket(client, cid, at="2026-03-20T16:00:00-05:00")
    post(client, f"/tickets/{tid}/pause", at="2026-03-24T09:00:00-05:00")
    post(client, f"/tickets/{tid}/resume", at="2026-03-24T10:30:00-05:00")
    last = post(client, f"/tickets/{tid}/resolve", at="2026-03-24T15:00:00-05:00")["position"]
    body = sla(client, tid, last, explain="true")
    shown = body["explain"]["resolution"]
    # Fri 16-17, Tue 08-09, 10:30-12:00 and 14:00-15:00 counted: 4.5 h of the 7 h target.
    assert shown["elapsed_minutes"] == body["resolution"]["elapsed_minutes"] == 270
    assert {s["kind"] for s in shown["timeline"]} == {"counted", "outside_coverage", "paused"}
    assert shown["target"] == "1bd" and shown["nominal_day_minutes"] == 420
    assert "explain" not in sla(client, tid, last)


def test_the_monthly_compliance_report_counts_and_times_by_priority(client: httpx.Client) -> None:
    # crm-experts/platinum, P1 30 min, P2 2 h: two P1 in June (responded after 10 and 40
    # business minutes: met and missed), one P2 left unanswered (breached), one in July.
    cid = contract(client, plan="crm-experts/platinum", at=SIGNED_AT)
    for opened, answered, priority in (("2026-06-01T09:00:00-04:00", "2026-06-01T09:10:00-04:00", "P1"),
                                       ("2026-06-02T19:50:00-04:00", "2026-06-03T08:30:00-04:00", "P1"),
                                       ("2026-06-03T09:00:00-04:00", None, "P2"),
                                       ("2026-07-01T09:00:00-04:00", "2026-07-01T09:05:00-04:00", "P1")):
        tid = ticket(client, cid, at=opened, priority=priority)
        last = post(client, f"/tickets/{tid}/respond", at=answered)["position"] if answered else 0
    response = client.get(f"/contracts/{cid}/sla", params={"month": "2026-06", "wait_for": last})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["tickets"], report["targets_by"], report["time_zone"]) == (3, "priority", "America/New_York")
    p1 = report["groups"]["P1"]["response"]
    assert (p1["met"], p1["missed"], p1["breached"], p1["met_pct"]) == (1, 1, 0, 50.0)
    assert (p1["mean_minutes"], p1["p90_minutes"]) == (25.0, 40.0)
    p2 = report["groups"]["P2"]["response"]
    assert (p2["breached"], p2["met_pct"], p2["mean_minutes"]) == (1, 0.0, None)
    assert report["all"]["response"]["met_pct"] == round(100 / 3, 2)
    assert report["groups"]["P1"]["resolution"]["none"] == 2
    bad = client.get(f"/contracts/{cid}/sla", params={"month": "2026-13"})
    assert bad.status_code == 422 and bad.json()["error"]
    assert client.get(f"/contracts/{uuid.uuid4()}/sla").status_code == 404
    assert client.get(f"/tickets/{uuid.uuid4()}/sla").status_code == 404


# Breach notices on Kafka.


def notices(bootstrap: str, cid: str, wait: float, until: int = 1) -> list[dict[str, Any]]:
    """The contract's breach notices on the topic (read from its start), waiting up to `wait` s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    tp = TopicPartition(NOTICE_TOPIC, 0)
    found: list[dict[str, Any]] = []

    def take(records: list[Any]) -> None:
        for record in records:
            if record.key == cid.encode():
                found.append(decode_notice(record.value) | {"headers": dict(record.headers),
                                                            "published_at": record.timestamp / 1000})
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(found) < until:
            take(consumer.poll(timeout_ms=100).get(tp, []))
        end = consumer.end_offsets([tp])[tp]
        while consumer.position(tp) < end:  # read the rest, to see any repeat
            take(consumer.poll(timeout_ms=100).get(tp, []))
    finally:
        consumer.close()
    return found


def open_due_in(client: httpx.Client, seconds: float) -> tuple[str, str, int, datetime]:
    """A bpm premium P1 (60 min reaction on 24x7) opened so that its response is due soon."""
    cid = contract(client, plan="bpm/premium", at=SIGNED_AT)
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    found = post(client, "/tickets", 201, contract_id=cid, title="Down", reporter="ana", priority="P1",
                 at=(due - timedelta(hours=1)).isoformat())
    return cid, found["ticket_id"], found["position"], due


def test_a_breach_is_published_within_seconds_of_the_due_instant_and_only_once(
    client: httpx.Client, servers: Settings
) -> None:
    assert servers.kafka_bootstrap
    cid, tid, position, due = open_due_in(client, 4)
    before = sla(client, tid, position)
    assert clock(before, "response")[0] == due and before["response"]["status"] == "running"
    assert notices(servers.kafka_bootstrap, cid, wait=0, until=0) == []
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)
    assert sla(client, tid, position)["response"]["status"] == "breached"  # at once, no event needed
    found = notices(servers.kafka_bootstrap, cid, wait=10)
    assert [(n["ticket_id"], n["clock"], n["due_at"]) for n in found] == [(tid, "response", due)]
    assert found[0]["published_at"] - due.timestamp() < 5
    assert found[0]["notice_id"] == f"sla-breach:{tid}:response:{due.isoformat()}"
    assert (found[0]["plan_id"], found[0]["target"], found[0]["target_minutes"]) == ("bpm/premium", "1h", 60)
    assert found[0]["headers"]["ticketing-notice-type"] == b"Sla.Breached"
    time.sleep(2.5)  # two more ticks
    assert len(notices(servers.kafka_bootstrap, cid, wait=0, until=0)) == 1
    post(client, f"/tickets/{tid}/respond")


def wait_beat(db: psycopg.Connection, since: datetime, timeout: float = 60) -> None:
    """Until the SLA runner has beaten (and so ticked) after `since`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute("SELECT beat_at FROM proj_sla.heartbeat WHERE runner = 'sla'").fetchone()
        if row and row[0] > since:
            return
        time.sleep(0.2)
    raise AssertionError("the SLA runner did not beat again")


def test_restarting_the_sla_consumer_neither_loses_nor_repeats_a_breach_notice(
    client: httpx.Client, servers: Settings, backend: Processes, db: psycopg.Connection
) -> None:
    assert servers.kafka_bootstrap
    cid, tid, position, due = open_due_in(client, 6)
    sla(client, tid, position)
    backend.kill("consume-sla", signal.SIGKILL)  # down across the due instant
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1)
    backend.start("consume-sla")
    found = notices(servers.kafka_bootstrap, cid, wait=30)
    assert [(n["ticket_id"], n["due_at"]) for n in found] == [(tid, due)]
    time.sleep(1)
    backend.kill("consume-sla", signal.SIGKILL)
    restarted = datetime.now(UTC)
    backend.start("consume-sla")
    wait_beat(db, restarted)
    time.sleep(2.5)  # two more ticks
    assert len(notices(servers.kafka_bootstrap, cid, wait=0, until=0)) == 1
    post(client, f"/tickets/{tid}/respond")


# The PostgreSQL view against the in-memory reference.

PLANS = ("crm-experts/gold", "bpm/premium", "datacrm/standard", "sf-partner/platinum")
VERBS = ("Classified", "Responded", "Paused", "Resumed", "Resolved", "Reopened", "Cancelled", "TimeConsumed")


def _stream(rng: random.Random, tickets: int) -> list[Envelope]:
    """A contract on a random plan and random (not always valid) ticket histories, interleaved."""
    catalog, cid = load_catalog(), str(uuid.uuid4())
    plan = rng.choice(PLANS)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    envs = [Envelope(1, "Contract.Signed", cid, 1, cid, t, t, {
        "plan_id": plan, "terms": catalog[plan].to_dict(), "time_zone": catalog[plan].time_zone,
        "holidays": ["2026-03-10"]})]
    open_ = []
    for _ in range(tickets * 6):
        t += timedelta(minutes=rng.randint(0, 600))
        if not open_ or rng.random() < 1 / 6:
            tid = f"{cid}:t{len(open_)}"
            open_.append(tid)
            data = {"priority": rng.choice([None, "P1", "P2", "P4"]), "category": rng.choice([None, "system-down"])}
            envs.append(Envelope(len(envs) + 1, "Ticket.Opened", tid, 1, cid, t, t, data))
        else:
            data = {"priority": rng.choice(["P1", "P3"]), "category": rng.choice([None, "incident"])}
            envs.append(Envelope(len(envs) + 1, f"Ticket.{rng.choice(VERBS)}", rng.choice(open_), 2, cid, t, t, data))
    return envs


@pytest.fixture(scope="module")
def scratch(servers: Settings) -> str:
    """A throwaway schema holding the sla tables, beside the live ones."""
    assert servers.database_url
    wiring.create_tables(servers.database_url, "sla", "test_sla_view")
    return "test_sla_view"


@pytest.mark.parametrize("seed", range(12))
def test_the_postgresql_view_agrees_with_the_in_memory_one(servers: Settings, scratch: str, seed: int) -> None:
    rng = random.Random(seed)
    envs = _stream(rng, rng.randint(1, 12))
    batch = rng.randint(1, 15)
    projection, memory = SlaProjection(), InMemorySlaView()
    now = datetime(2026, 4, 15, tzinfo=UTC)
    assert servers.database_url
    with psycopg.connect(servers.database_url) as conn:
        for i in range(0, len(envs), batch):
            view = PgSlaView(conn, scratch, guard=False)
            # Each batch comes after the one before it again (a redelivery) and repeats an event:
            # both are dropped.
            delivered = envs[max(0, i - batch):i] + envs[i:i + batch] + envs[i:i + 1]
            for env in delivered:
                projection.apply(env, view)
            for env in envs[i:i + batch]:
                projection.apply(env, memory)
            view.flush()
            conn.commit()
        projection.tick(now, PgSlaView(conn, scratch, guard=False))
        projection.tick(now, memory)
        conn.commit()
        cid = envs[0].aggregate_id
        rows = conn.execute(f"SELECT ticket_id, position, response_due_at, response_stopped_at, response_on,"
                            f" resolution_due_at, resolution_stopped_at, resolution_on, response_noticed,"
                            f" resolution_noticed FROM {scratch}.sla_tickets WHERE contract_id = %s", (cid,)).fetchall()
    expected = {}
    for tid, r in memory.tickets.items():
        assert r.derived is not None
        d, n = r.derived, r.noticed
        expected[tid] = (r.position, d.response.due_at, d.response.stopped_at, d.response.on, d.resolution.due_at,
                         d.resolution.stopped_at, d.resolution.on, n.get("response"), n.get("resolution"))
    assert {row[0]: tuple(row[1:]) for row in rows} == expected
