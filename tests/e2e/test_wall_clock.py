"""What the backend decides from the wall clock, under several shifted clocks.

Each scenario starts a whole backend (API, relay, every consumer, the renewals pass) on its
own database and broker with `TICKETING_CLOCK_OFFSET`, so every process reads the same
shifted "now"; the test reads it too, and derives every expectation from the month and the
zone it falls in: open outages counted up to now, an error budget spent as time passes, a
breach noticed seconds after its due instant, the current month's reports, and an hour bank
renewed at its anniversary. The scenarios are a 31-day month, February of a leap and of a
common year, the spring daylight-saving change in New York and in Moscow (2011, its last
one), New Year's Eve, and the real clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from domain.periods import add_months
from domain.wallclock import ShiftedClock
from infra.kafka.notices import AVAILABILITY_TOPIC as BUDGET_TOPIC
from infra.kafka.notices import SLA_TOPIC, decode_breach, decode_budget
from infra.settings import Settings
from tests.backends import isolated
from tests.factories import post

TARGET = 0.9996  # datacrm's availability target


@dataclass(frozen=True)
class Scenario:
    name: str
    starts_at: datetime | None  # what the clock reads when the backend starts; None: the real clock
    zone: str  # the contracts' time zone


SCENARIOS = [
    Scenario("31-day-month", datetime(2027, 7, 15, 12, 0, tzinfo=UTC), "UTC"),
    Scenario("leap-february", datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "UTC"),
    Scenario("common-february", datetime(2027, 2, 14, 12, 0, tzinfo=UTC), "America/Bogota"),
    # 02:00 EST becomes 03:00 EDT at 07:00Z: a clock counting the last hour crosses it.
    Scenario("new-york-dst", datetime(2027, 3, 14, 7, 0, 30, tzinfo=UTC), "America/New_York"),
    # 02:00 MSK became 03:00 MSD at 23:00Z on 2011-03-26, Moscow's last change of this kind.
    Scenario("moscow-dst", datetime(2011, 3, 26, 23, 0, 30, tzinfo=UTC), "Europe/Moscow"),
    Scenario("new-years-eve", datetime(2027, 12, 31, 23, 58, 0, tzinfo=UTC), "UTC"),
    Scenario("real-clock", None, "Europe/Madrid"),
]


@dataclass
class Shifted:
    """A running backend whose every process reads `clock`."""

    scenario: Scenario
    settings: Settings
    clock: ShiftedClock
    client: httpx.Client

    @property
    def zone(self) -> str:
        return self.scenario.zone

    def now(self) -> datetime:
        return self.clock.now()


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def shifted(request: pytest.FixtureRequest, servers: Settings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shifted]:
    scenario: Scenario = request.param
    offset = 0.0 if scenario.starts_at is None else (scenario.starts_at - datetime.now(UTC)).total_seconds()
    with isolated(servers, tmp_path_factory.mktemp("clock"), extra=("renewals",), clock_offset=offset,
                  renewals_interval=1.0) as backend, backend.client() as client:
        yield Shifted(scenario, backend.settings, ShiftedClock(timedelta(seconds=offset)), client)


# -- local months, computed here independently of the backend's own code ----------------------


def month_start(when: datetime, zone: str, months: int = 0) -> datetime:
    local = when.astimezone(ZoneInfo(zone))
    first = add_months(date(local.year, local.month, 1), months)
    return datetime(first.year, first.month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def label(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def minutes_in_month(when: datetime, zone: str) -> float:
    return (month_start(when, zone, 1) - month_start(when, zone)).total_seconds() / 60


# -- helpers ----------------------------------------------------------------------------------


def sign(s: Shifted, plan: str = "datacrm/standard", signed_at: datetime | None = None,
         starts_on: date | None = None) -> str:
    signed_at = signed_at or month_start(s.now(), s.zone, -2)
    starts_on = starts_on or signed_at.astimezone(ZoneInfo(s.zone)).date()
    body = post(s.client, "/contracts", 201, customer="Acme", plan=plan, starts_on=starts_on.isoformat(),
                time_zone=s.zone, at=signed_at.isoformat())
    return str(body["contract_id"])


def read(s: Shifted, path: str, **params: Any) -> dict[str, Any]:
    response = s.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def notices(s: Shifted, topic: str, key: str, wait: float, until: int = 1) -> list[dict[str, Any]]:
    """The notices keyed by `key` on `topic`, read from its start, waiting up to `wait` s."""
    decode = decode_budget if topic == BUDGET_TOPIC else decode_breach
    consumer = KafkaConsumer(bootstrap_servers=s.settings.kafka_bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=20)
    tp = TopicPartition(topic, 0)
    found: list[dict[str, Any]] = []
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + wait
        while True:
            for record in consumer.poll(timeout_ms=100).get(tp, []):
                if record.key == key.encode():
                    found.append(decode(record.value))
            if len(found) >= until or time.monotonic() > deadline:
                return found
    finally:
        consumer.close()


# -- the tests --------------------------------------------------------------------------------


def test_an_open_outage_counts_up_to_now_in_this_month_and_to_the_end_of_the_last(s: Shifted) -> None:
    this_month = month_start(s.now(), s.zone)
    cid = sign(s)
    tid = post(s.client, "/tickets", 201, contract_id=cid, title="Down", reporter="ana", category="system-down",
               down_since=(this_month - timedelta(hours=1)).isoformat())["ticket_id"]
    position = post(s.client, f"/tickets/{tid}/respond")["position"]
    last = read(s, f"/contracts/{cid}/availability", month=label(this_month - timedelta(hours=1), s.zone),
                wait_for=position)
    assert last["downtime_minutes"] == 60
    assert last["outages"][0]["open"] is True and last["outages"][0]["ends_at"] is None
    before = (s.now() - this_month).total_seconds() / 60
    current = read(s, f"/contracts/{cid}/availability", month=label(this_month, s.zone))
    after = (s.now() - this_month).total_seconds() / 60
    assert before - 0.01 <= current["downtime_minutes"] <= after + 0.01
    assert current["minutes_in_month"] == minutes_in_month(this_month, s.zone)
    labels = {label(s.now(), s.zone)}
    default = read(s, f"/contracts/{cid}/availability")["month"]
    labels.add(label(s.now(), s.zone))
    assert default in labels  # the month the backend's now falls in (the clock may cross a month end)


def test_an_open_outage_spends_the_budget_as_time_passes(s: Shifted) -> None:
    down_since = s.now() - timedelta(minutes=minutes_in_month(s.now(), s.zone) * (1 - TARGET) - 0.1)
    allowed = minutes_in_month(down_since, s.zone) * (1 - TARGET)
    spent_at = down_since + timedelta(minutes=allowed)
    assert spent_at < month_start(down_since, s.zone, 1), "the scenario must spend one month's budget"
    cid = sign(s)
    tid = post(s.client, "/tickets", 201, contract_id=cid, title="Down", reporter="ana", category="system-down",
               down_since=down_since.isoformat())["ticket_id"]
    assert notices(s, BUDGET_TOPIC, cid, wait=0.5, until=0) == []
    found = notices(s, BUDGET_TOPIC, cid, wait=30)
    assert [n["month"] for n in found] == [label(down_since, s.zone)]
    assert abs(found[0]["exhausted_at"] - spent_at) < timedelta(seconds=1)
    assert s.now() >= spent_at  # not announced ahead of the backend's clock
    post(s.client, f"/tickets/{tid}/restore")


def test_a_breach_is_noticed_seconds_after_its_due_instant_and_counted_in_this_months_report(s: Shifted) -> None:
    cid = sign(s, plan="bpm/premium")
    due = s.now() + timedelta(seconds=3)
    opened = due - timedelta(hours=1)  # a P1's 60 min reaction on 24x7: across the DST change, if any
    body = post(s.client, "/tickets", 201, contract_id=cid, title="Down", reporter="ana", priority="P1",
                at=opened.isoformat())
    sla = read(s, f"/tickets/{body['ticket_id']}/sla", wait_for=body["position"])
    assert datetime.fromisoformat(sla["response"]["due_at"]) == due
    assert sla["response"]["status"] == "running"
    found = notices(s, SLA_TOPIC, cid, wait=20)
    assert [(n["ticket_id"], n["clock"], n["due_at"]) for n in found] == [(body["ticket_id"], "response", due)]
    assert read(s, f"/tickets/{body['ticket_id']}/sla")["response"]["status"] == "breached"
    month = label(opened, s.zone)
    report = read(s, f"/contracts/{cid}/sla", month=month)
    assert report["all"]["response"]["breached"] == 1
    if label(s.now(), s.zone) == month:
        assert read(s, f"/contracts/{cid}/sla")["month"] == month


def test_an_hour_bank_renews_at_its_anniversary_by_the_backends_clock(s: Shifted) -> None:
    today = s.now().astimezone(ZoneInfo(s.zone)).date()
    starts_on = add_months(today, -12)
    anniversary = datetime(today.year, today.month, today.day, tzinfo=ZoneInfo(s.zone))
    if anniversary.date() != add_months(starts_on, 12):  # a Feb 29 has no day a year before
        anniversary = datetime.combine(add_months(starts_on, 12), anniversary.timetz())
    signed_at = datetime(starts_on.year, starts_on.month, starts_on.day, tzinfo=ZoneInfo(s.zone))
    cid = sign(s, plan="crm-experts/gold", signed_at=signed_at.astimezone(UTC), starts_on=starts_on)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = read(s, f"/contracts/{cid}/history")["events"]
        renewed = [e for e in events if e["type"] == "Contract.Renewed"]
        if renewed:
            break
        time.sleep(0.5)
    assert [e["period_starts_on"] for e in renewed] == [anniversary.date().isoformat()]
    assert datetime.fromisoformat(renewed[0]["occurred_at"]) == anniversary.astimezone(UTC)


@pytest.fixture
def s(shifted: Shifted) -> Shifted:
    return shifted
