"""The availability projection on its in-memory view: outage segments from ticket lifecycles
(with the interpretations OutageFacts documents), order independence, idempotence, and the
error-budget notices its `tick` decides as time passes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.availability import Interval, monthly_availability
from infra.kafka.notices import decode_budget as decode_notice
from infra.kafka.notices import encode_budget as encode_notice
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from tests.unit.test_availability import interval_lists, zone_names

CONTRACT = "c-1"
T0 = datetime(2026, 4, 10, 12, tzinfo=UTC)  # April: 30 days, 17.28 minutes of budget
LATER = datetime(2026, 11, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Stream:
    """Builds envelopes with increasing positions, and applies them."""

    def __init__(self) -> None:
        self.position = 0
        self.projection = AvailabilityProjection()
        self.view = InMemoryAvailabilityView()

    def env(self, type_: str, aggregate: str, when: datetime, **data: Any) -> Envelope:
        self.position += 1
        return Envelope(self.position, type_, aggregate, 1, CONTRACT, when, when, data)

    def apply(self, *envs: Envelope) -> list[bool]:
        return [self.projection.apply(e, self.view) for e in envs]

    def sign(self, target: float | None = 99.96, zone: str = "America/Bogota") -> None:
        terms = _terms(target)
        self.apply(self.env("Contract.Signed", CONTRACT, T0 - timedelta(days=200),
                            terms=terms, time_zone=zone))

    def open(self, ticket: str, minutes: float, category: str | None = "system-down",
             down_since: datetime | None = None) -> None:
        since = down_since.isoformat() if down_since else None
        self.apply(self.env("Ticket.Opened", ticket, at(minutes), title="down", reporter="ana",
                            channel="portal", priority=None, category=category, down_since=since))

    def do(self, ticket: str, verb: str, offset: float, **data: Any) -> bool:
        return self.apply(self.env(f"Ticket.{verb}", ticket, at(offset), **data))[0]

    def month(self, month: str = "2026-04", now: datetime = LATER) -> Any:
        contract = self.view.outages_of(CONTRACT)
        assert contract is not None
        return contract.month(month, now)


def _terms(target: float | None) -> dict[str, Any]:
    from infra.process.catalog import load_catalog

    terms = load_catalog()["datacrm/standard"].to_dict()
    return terms | {"availability_target_pct": target}


# Outage segments.


def test_overlapping_outages_of_two_tickets_count_once() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.open("t-2", 5, down_since=at(-10))
    s.do("t-1", "Restored", 20)
    s.do("t-2", "Resolved", 30)
    assert s.month().downtime_minutes == 40


def test_an_outage_ends_at_restoration_and_not_again_at_resolution() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Restored", 12)
    s.do("t-1", "Resolved", 90)
    assert s.month().downtime_minutes == 12


def test_a_ticket_classified_into_system_down_is_an_outage_from_its_opening() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0, category="incident")
    assert s.do("t-1", "Classified", 30, priority="P1", category="system-down")
    s.do("t-1", "Resolved", 45)
    assert s.month().downtime_minutes == 45


def test_a_ticket_classified_away_from_system_down_was_never_an_outage() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Classified", 30, priority="P3", category="incident")
    s.do("t-1", "Resolved", 45)
    assert s.month().downtime_minutes == 0
    s.do("t-1", "Reopened", 50)
    s.do("t-1", "Classified", 55, priority="P1", category="system-down")
    s.do("t-1", "Resolved", 60)
    assert s.month().downtime_minutes == 45 + 10


def test_a_cancelled_system_down_ticket_is_a_withdrawn_report() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Restored", 10)
    s.do("t-1", "Cancelled", 11, reason="duplicate")
    assert s.month().downtime_minutes == 0


def test_a_reopened_outage_resumes_at_the_reopening_unless_service_was_restored() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Resolved", 10)
    s.do("t-1", "Reopened", 100)
    s.do("t-1", "Restored", 105)
    assert s.month().downtime_minutes == 10 + 5
    s.do("t-1", "Resolved", 110)
    s.do("t-1", "Reopened", 200)
    assert s.month().downtime_minutes == 15
    assert all(o.end is not None for o in s.view.outages_of(CONTRACT).outages)


def test_an_open_outage_counts_up_to_now() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    assert s.month(now=at(25)).downtime_minutes == 25
    assert s.month(now=at(26)).downtime_minutes == 26


def test_downtime_inside_planned_maintenance_is_reported_apart() -> None:
    s = Stream()
    s.sign()
    s.apply(s.env("Contract.MaintenanceScheduled", CONTRACT, at(-60),
                  starts_at=at(-5).isoformat(), ends_at=at(10).isoformat(), reason="upgrade"))
    s.open("t-1", 0)
    s.do("t-1", "Restored", 30)
    figures = s.month()
    assert (figures.downtime_minutes, figures.maintenance_minutes) == (20, 10)


def test_events_without_bearing_on_availability_are_ignored() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0, category="incident")
    assert not s.do("t-1", "Responded", 1)
    assert not s.do("t-1", "TimeConsumed", 2, minutes=5, kind="query", engineer=None)
    assert not s.do("t-1", "Classified", 3, priority="P2", category=None)
    assert not s.apply(s.env("Contract.CreditsAdded", CONTRACT, at(4), credits=5))[0]


# Order independence and idempotence.


@st.composite
def lifecycles(draw: st.DrawFn, ticket: str) -> list[tuple[str, datetime, dict[str, Any]]]:
    """One ticket's events as the domain allows them, at whole minutes over ~2 months."""
    t = T0 + timedelta(minutes=draw(st.integers(-30 * 1440, 30 * 1440)))
    down = draw(st.booleans())
    since = t - timedelta(minutes=draw(st.integers(0, 600))) if draw(st.booleans()) else None
    events = [("Opened", t, {"category": "system-down" if down else "incident",
                             "down_since": since and since.isoformat()})]
    status, restored = "open", False
    for _ in range(draw(st.integers(0, 6))):
        t += timedelta(minutes=draw(st.integers(0, 3 * 1440)))
        verbs = {"open": ["Resolved", "Cancelled", "Classified"] + (["Restored"] if down and not restored else []),
                 "resolved": ["Reopened"]}.get(status, [])
        if not verbs:
            break
        verb = draw(st.sampled_from(verbs))
        data: dict[str, Any] = {}
        if verb == "Classified":
            down = draw(st.booleans())
            data = {"priority": "P1", "category": "system-down" if down else "incident"}
        restored = restored or verb == "Restored"
        status = {"Resolved": "resolved", "Cancelled": "cancelled", "Reopened": "open"}.get(verb, status)
        events.append((verb, t, data))
    return events


def _run(order: list[tuple[str, str, datetime, dict[str, Any]]]) -> Stream:
    s = Stream()
    s.sign()
    for ticket, verb, when, data in order:
        if verb == "Opened":
            s.apply(s.env("Ticket.Opened", ticket, when, title="x", reporter="r", channel="portal",
                          priority=None, **data))
        else:
            s.apply(s.env(f"Ticket.{verb}", ticket, when, **data))
    return s


def _interleave(streams: list[list[Any]], rng: random.Random) -> list[Any]:
    queues = [list(q) for q in streams]
    out = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        out.append(queue.pop(0))
    return out


@given(interval_lists.flatmap(lambda xs: st.tuples(st.just(xs), st.permutations(xs))),
       interval_lists, zone_names)
def test_monthly_figures_are_the_same_whatever_order_the_outages_come_in(
    pair: tuple[list[Interval], list[Interval]], maintenance: list[Interval], zone: str
) -> None:
    outages, shuffled = pair
    for month in ("2025-12", "2026-01", "2026-02", "2026-03"):
        assert monthly_availability(month, zone, shuffled, maintenance[::-1], 99.96) == \
            monthly_availability(month, zone, outages, maintenance, 99.96)


MONTHS = ("2026-03", "2026-04", "2026-05")
NOW = datetime(2026, 5, 20, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(*[lifecycles(f"t-{i}") for i in range(n)])),
       st.randoms(use_true_random=False))
def test_totals_are_the_same_whatever_order_the_tickets_arrive_in(
    tickets: tuple[list[Any], ...], rng: random.Random
) -> None:
    streams = [[(f"t-{i}", *e) for e in events] for i, events in enumerate(tickets)]
    one_by_one = _run([e for stream in streams for e in stream])
    shuffled = _run(_interleave(streams, rng))
    for month in MONTHS:
        assert shuffled.month(month, NOW) == one_by_one.month(month, NOW)


def test_replaying_all_equals_replaying_in_two_parts_and_a_duplicate_changes_nothing() -> None:
    s = Stream()
    s.sign()
    envs = [s.env("Ticket.Opened", "t-1", at(0), title="x", reporter="r", channel="portal",
                  priority=None, category="system-down", down_since=None),
            s.env("Ticket.Resolved", "t-1", at(10), reason=None),
            s.env("Ticket.Reopened", "t-1", at(20), reason=None),
            s.env("Ticket.Restored", "t-1", at(25))]
    s.apply(*envs)
    whole = s.month()
    s.apply(*envs)  # redelivered: the runner drops these, but the view must not care either
    assert s.month() == whole
    parts = Stream()
    parts.sign()
    parts.apply(*envs[:2])
    parts.apply(*envs[2:])
    assert parts.month() == whole


# Error-budget notices.


def test_a_spent_budget_is_noticed_once_with_the_instant_it_ran_out() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Restored", 20)
    s.projection.tick(LATER, s.view)
    s.open("t-2", 60)
    s.do("t-2", "Restored", 70)
    s.projection.tick(LATER, s.view)
    assert [n.notice_id for n in s.view.notices] == [f"budget-exhausted:{CONTRACT}:2026-04"]
    notice = s.view.notices[0]
    assert notice.exhausted_at == at(17.28)
    assert notice.figures.budget_left_minutes == round(17.28 - 20, 4)


def test_an_open_outage_spends_the_budget_as_time_passes_without_a_new_event() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.projection.tick(at(17), s.view)
    assert s.view.notices == []
    s.projection.tick(at(18), s.view)
    assert [n.month for n in s.view.notices] == ["2026-04"]
    assert s.view.notices[0].decided_at == at(18)


def test_downtime_exactly_at_the_budget_exhausts_it() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.do("t-1", "Restored", 17.28)
    s.projection.tick(LATER, s.view)
    assert s.month().met is True
    assert len(s.view.notices) == 1


def test_a_plan_without_a_target_gets_figures_but_no_notice() -> None:
    s = Stream()
    s.sign(target=None)
    s.open("t-1", 0)
    s.do("t-1", "Restored", 600)
    s.projection.tick(LATER, s.view)
    figures = s.month()
    assert (figures.downtime_minutes, figures.target_pct, figures.met) == (600, None, None)
    assert s.view.notices == []


def test_a_notice_round_trips_through_its_avro_schema() -> None:
    s = Stream()
    s.sign()
    s.open("t-1", 0)
    s.projection.tick(at(30), s.view)
    value, headers = encode_notice(s.view.notices[0])
    record = decode_notice(value)
    assert record["notice_id"] == f"budget-exhausted:{CONTRACT}:2026-04"
    assert record["downtime_minutes"] == 30
    assert record["exhausted_at"] == at(17.28)
    assert headers["ticketing-notice-type"] == "Availability.ErrorBudgetExhausted"


def test_a_backdated_outage_spends_the_budget_of_past_months_too() -> None:
    s = Stream()
    s.sign()
    s.projection.tick(LATER, s.view)
    s.open("t-1", 30 * 1440, down_since=datetime(2026, 4, 30, 23, tzinfo=UTC))
    s.do("t-1", "Restored", 30 * 1440 + 1)
    s.projection.tick(LATER, s.view)
    assert [n.month for n in s.view.notices] == ["2026-04", "2026-05"]
    assert s.view.candidates() == []
