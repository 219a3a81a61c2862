"""The ledger projection on the in-memory view: worked examples for each plan family (hour
bank, credits, quarterly allowance, no bank), renewals, statements, notices once per
crossing, and properties: the order entries are recorded in never changes the totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.periods import add_months, bank_period, next_period_start
from infra.process.catalog import load_catalog
from projections.envelope import Envelope
from projections.ledger import EXHAUSTED, LOW, InMemoryLedgerView, LedgerProjection

CATALOG = load_catalog()
CID = "c-1"


class History:
    """Builds envelopes of one contract in store order, and applies them."""

    def __init__(self, plan: str, starts_on: str = "2026-01-01", zone: str | None = None) -> None:
        self.positions = count(1)
        self.view, self.projection = InMemoryLedgerView(), LedgerProjection()
        terms = CATALOG[plan].to_dict()
        self.zone = zone or terms["time_zone"]
        self.signed = self.env("Contract.Signed", CID, "2025-12-01T12:00:00+00:00", customer="Acme",
                               plan_id=plan, terms=terms, starts_on=starts_on, time_zone=self.zone,
                               holidays=[])
        self.apply(self.signed)

    def env(self, type_: str, aggregate: str, at: str, **data: Any) -> Envelope:
        when = datetime.fromisoformat(at).astimezone(UTC)
        return Envelope(next(self.positions), type_, aggregate, 1, CID, when, when, data)

    def apply(self, env: Envelope) -> bool:
        return self.projection.apply(env, self.view)

    def time(self, ticket: str, minutes: int, at: str, kind: str = "work") -> Envelope:
        env = self.env("Ticket.TimeConsumed", ticket, at, contract_id=CID, minutes=minutes, kind=kind,
                       engineer="eve")
        self.apply(env)
        return env

    def contract(self, type_: str, at: str, **data: Any) -> None:
        self.apply(self.env(type_, CID, at, **data))

    def period(self, label: str) -> Any:
        return self.view.period(CID, label)

    def entries(self, label: str) -> list[tuple[int, int, int]]:
        return [(e.minutes, e.charge, e.overage) for e in self.view.entries_of(CID, label)]


# Hour banks (crm-experts/gold: 40 h = 2,400 minutes a year, low balance at 240).


def test_an_hour_bank_debits_exact_minutes_and_keeps_raw_minutes_and_charge_apart() -> None:
    h = History("crm-experts/gold")
    h.time("t-1", 50, "2026-02-03T10:00:00-05:00", kind="query")
    h.time("t-1", 7, "2026-02-03T11:00:00-05:00")
    p = h.period("2026-01-01")
    assert (p.granted, p.used, p.balance) == (2400, 57, 2343)
    assert h.entries("2026-01-01") == [(50, 50, 0), (7, 7, 0)]
    assert not p.low and not p.exhausted and h.view.notices == []


def test_an_hour_bank_warns_once_at_ten_percent_and_records_overage_beyond_zero() -> None:
    h = History("crm-experts/gold")
    h.time("t-1", 2100, "2026-02-03T10:00:00-05:00")
    h.time("t-1", 60, "2026-02-04T10:00:00-05:00")  # 240 left: at the threshold
    h.time("t-1", 30, "2026-02-05T10:00:00-05:00")  # still low: no second notice
    h.time("t-2", 300, "2026-02-06T10:00:00-05:00")  # 210 -> -90: exhausted, 90 overage
    h.time("t-2", 15, "2026-02-07T10:00:00-05:00")
    p = h.period("2026-01-01")
    assert (p.used, p.balance, p.low, p.exhausted) == (2505, -105, True, True)
    assert h.entries("2026-01-01")[-2:] == [(300, 300, 90), (15, 15, 15)]
    assert [(n.kind, n.crossing, n.used) for n in h.view.notices] == [(LOW, 1, 2160), (EXHAUSTED, 1, 2490)]
    assert h.view.notices[0].notice_id == f"low-balance:{CID}:2026-01-01:1"
    assert h.view.notices[1].ticket_id == "t-2"


def test_a_renewal_starts_a_fresh_bank_and_unused_minutes_expire() -> None:
    h = History("crm-experts/silver", starts_on="2025-01-01")
    h.time("t-1", 1000, "2025-06-10T10:00:00-04:00")
    h.contract("Contract.Renewed", "2026-01-01T00:00:00-05:00", reason=None, period_starts_on="2026-01-01")
    h.time("t-2", 30, "2026-01-02T10:00:00-05:00")
    assert h.view.labels(CID) == ["2025-01-01", "2026-01-01"]
    assert (h.period("2025-01-01").balance, h.period("2026-01-01").balance) == (200, 1170)
    assert h.view.books[CID].renews_at == datetime.fromisoformat("2027-01-01T00:00:00-05:00")


def test_a_back_dated_entry_arriving_after_the_renewal_lands_in_the_period_it_happened_in() -> None:
    h = History("crm-experts/silver", starts_on="2025-01-01")
    h.contract("Contract.Renewed", "2026-01-01T00:00:00-05:00", reason=None, period_starts_on="2026-01-01")
    h.time("t-1", 45, "2025-12-31T23:30:00-05:00")  # New Year's Eve in New York, 04:30 UTC
    h.time("t-1", 20, "2026-01-01T00:00:00-05:00")
    assert h.entries("2025-01-01") == [(45, 45, 0)]
    assert h.entries("2026-01-01") == [(20, 20, 0)]


def test_an_entry_recorded_before_the_renewal_stays_in_the_old_period_whatever_its_date() -> None:
    h = History("crm-experts/silver", starts_on="2025-01-01")
    h.time("t-1", 45, "2026-01-03T10:00:00-05:00")  # the renewal is not recorded yet
    h.contract("Contract.Renewed", "2026-01-03T11:00:00-05:00", reason=None, period_starts_on="2026-01-01")
    assert h.entries("2025-01-01") == [(45, 45, 0)]
    assert h.period("2026-01-01").used == 0


def test_an_entry_dated_before_the_contract_starts_goes_to_the_first_period() -> None:
    h = History("crm-experts/gold", starts_on="2026-01-01")
    h.time("t-1", 10, "2025-12-20T10:00:00-05:00")
    assert h.entries("2026-01-01") == [(10, 10, 0)]


def test_a_cancelled_bank_is_not_due_for_renewal_and_a_repeated_renewal_changes_nothing() -> None:
    h = History("crm-experts/gold", starts_on="2025-01-01")
    renewal = h.env("Contract.Renewed", CID, "2026-01-01T05:00:00+00:00", reason=None,
                    period_starts_on="2026-01-01")
    assert h.apply(renewal) is True
    assert h.apply(h.env("Contract.Renewed", CID, "2026-01-01T05:00:00+00:00", reason=None,
                         period_starts_on="2026-01-01")) is False
    assert h.view.books[CID].periods == ["2025-01-01", "2026-01-01"]
    h.contract("Contract.Cancelled", "2026-02-01T00:00:00+00:00", reason="moving on")
    assert h.view.books[CID].renews_at is None


# Credits (dolibarr/credits: low balance at 45, one intervention).


def test_credits_are_charged_by_the_plans_rules_and_never_expire() -> None:
    h = History("dolibarr/credits")
    h.contract("Contract.CreditsAdded", "2026-01-05T10:00:00+01:00", credits=600)
    for minutes, kind in ((1, "query"), (16, "query"), (10, "intervention"), (46, "intervention"),
                          (500, "update")):
        h.time("t-1", minutes, "2026-01-06T10:00:00+01:00", kind=kind)
    assert h.entries("2026-01-01") == [(1, 15, 0), (16, 30, 0), (10, 45, 0), (46, 60, 0), (500, 120, 0)]
    h.time("t-2", 20, "2027-06-01T10:00:00+02:00", kind="query")  # years later, the same period
    p = h.period("2026-01-01")
    assert (p.granted, p.used, p.balance) == (600, 300, 300)
    assert h.view.labels(CID) == ["2026-01-01"]


def test_credits_warn_once_per_crossing_and_again_after_a_top_up() -> None:
    h = History("dolibarr/credits")
    assert h.period("2026-01-01").exhausted  # nothing bought yet: no notice, it never crossed
    h.contract("Contract.CreditsAdded", "2026-01-05T10:00:00+01:00", credits=120)
    h.time("t-1", 70, "2026-01-06T10:00:00+01:00", kind="intervention")  # 75: 45 left
    h.time("t-1", 1, "2026-01-06T11:00:00+01:00", kind="query")  # 30 left
    h.contract("Contract.CreditsAdded", "2026-01-07T10:00:00+01:00", credits=120)  # 150
    h.time("t-2", 120, "2026-01-08T10:00:00+01:00", kind="intervention")  # 30 left
    h.time("t-2", 50, "2026-01-08T12:00:00+01:00", kind="intervention")  # -30
    assert [(n.kind, n.crossing) for n in h.view.notices] == [(LOW, 1), (LOW, 2), (EXHAUSTED, 1)]
    assert h.entries("2026-01-01")[-1] == (50, 60, 30)
    assert h.view.notices[1].notice_id == f"low-balance:{CID}:2026-01-01:2"


# Periodic allowance (datacrm: 2 h of guidance per calendar quarter in Bogota).


def test_guidance_beyond_the_quarters_two_hours_is_billable_and_the_next_quarter_starts_afresh() -> None:
    h = History("datacrm/standard")
    h.time("t-1", 90, "2026-03-20T10:00:00-05:00", kind="guidance")
    h.time("t-1", 60, "2026-03-31T23:30:00-05:00", kind="guidance")  # 1 April 04:30 UTC: still Q1
    h.time("t-1", 40, "2026-03-31T15:00:00-05:00", kind="work")  # not guidance: not charged
    h.time("t-2", 30, "2026-04-01T00:00:00-05:00", kind="guidance")
    q1, q2 = h.period("2026-Q1"), h.period("2026-Q2")
    assert h.entries("2026-Q1") == [(90, 90, 0), (60, 60, 30), (40, 0, 0)]
    assert (q1.granted, q1.used, q1.balance, q1.minutes) == (120, 150, -30, 190)
    assert (q2.used, q2.balance) == (30, 90)
    assert [(n.kind, n.period) for n in h.view.notices] == [(EXHAUSTED, "2026-Q1")]


# A plan without bank, credits or allowance.


def test_a_plan_without_a_bank_lists_entries_and_debits_nothing() -> None:
    h = History("bpm/basic")
    h.time("t-1", 30, "2026-02-03T10:00:00+03:00")
    p = h.period("2026-01-01")
    assert (p.granted, p.balance, p.minutes, p.used) == (None, None, 30, 0)
    assert h.entries("2026-01-01") == [(30, 0, 0)]


# Statements.


def test_a_resolved_ticket_gets_a_statement_of_its_cost_and_the_balance_after() -> None:
    h = History("dolibarr/credits")
    h.contract("Contract.CreditsAdded", "2026-01-05T10:00:00+01:00", credits=300)
    h.time("t-1", 20, "2026-01-06T10:00:00+01:00", kind="query")
    h.time("t-1", 50, "2026-01-06T11:00:00+01:00", kind="intervention")
    h.time("t-2", 5, "2026-01-06T11:30:00+01:00", kind="query")
    h.apply(h.env("Ticket.Resolved", "t-1", "2026-01-06T12:00:00+01:00", contract_id=CID, reason=None))
    (s,) = h.view.statements
    assert (s.ticket_id, s.minutes, s.charge, s.balance_after, s.unit) == ("t-1", 70, 90, 195, "credits")


def test_events_of_an_unknown_contract_and_other_event_types_are_ignored() -> None:
    h = History("crm-experts/gold")
    stranger = Envelope(99, "Ticket.TimeConsumed", "t-9", 2, "c-unknown", *[datetime.now(UTC)] * 2,
                        {"minutes": 5, "kind": "work", "engineer": None})
    assert h.apply(stranger) is False
    assert h.apply(h.env("Ticket.Opened", "t-1", "2026-02-03T10:00:00-05:00", contract_id=CID)) is False
    assert h.apply(h.signed) is False  # the same contract signed again: a replayed duplicate


# Properties.

entries = st.lists(
    st.tuples(st.integers(1, 600), st.sampled_from(["query", "intervention", "update", "guidance", "work"]),
              st.integers(0, 800)),
    min_size=1, max_size=25,
)


def _totals(plan: str, items: list[tuple[int, str, int]], credits: int) -> dict[str, tuple[Any, ...]]:
    h = History(plan, starts_on="2025-01-01")
    if credits:
        h.contract("Contract.CreditsAdded", "2025-01-01T12:00:00+00:00", credits=credits)
    h.contract("Contract.Renewed", "2026-01-01T05:00:00+00:00", reason=None, period_starts_on="2026-01-01")
    for i, (minutes, kind, day) in enumerate(items):
        at = datetime(2025, 1, 1, 15, tzinfo=UTC) + timedelta(days=day)
        h.time(f"t-{i}", minutes, at.isoformat(), kind=kind)
    return {(p.label): (p.granted, p.used, p.minutes, p.entries, max(0, -(p.balance or 0)),
                        sum(e.overage for e in h.view.entries_of(CID, p.label)))
            for p in h.view.periods.values()}


@settings(max_examples=60, deadline=None)
@given(entries, st.randoms(use_true_random=False),
       st.sampled_from(["crm-experts/silver", "dolibarr/credits", "datacrm/standard", "bpm/basic"]))
def test_the_order_entries_are_recorded_in_never_changes_any_periods_totals(
    items: list[tuple[int, str, int]], random: Any, plan: str
) -> None:
    credits = 3000 if plan == "dolibarr/credits" else 0
    items = [(m, k if plan != "dolibarr/credits" or k in ("query", "intervention", "update") else "query", d)
             for m, k, d in items]
    shuffled = list(items)
    random.shuffle(shuffled)
    assert _totals(plan, items, credits) == _totals(plan, shuffled, credits)


@settings(max_examples=60, deadline=None)
@given(entries)
def test_an_hour_banks_overage_is_what_was_used_beyond_the_grant(items: list[tuple[int, str, int]]) -> None:
    for granted, used, _, _, overage, entry_overage in _totals("crm-experts/silver", items, 0).values():
        assert overage == entry_overage == max(0, used - granted)


@given(st.dates(date(2000, 1, 1), date(2090, 1, 1)), st.integers(0, 40), st.integers(1, 24))
def test_a_bank_renews_on_the_anniversary_bank_period_names(start: date, periods: int, months: int) -> None:
    current = add_months(start, periods * months)
    assert next_period_start(start, current, months) == bank_period(start, current, months)[1]


@pytest.mark.parametrize(
    ("start", "current", "expected"),
    [(date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28)),
     (date(2024, 2, 29), date(2027, 2, 28), date(2028, 2, 29)),
     (date(2025, 1, 1), date(2025, 6, 15), date(2026, 6, 15))],  # renewed by hand mid-period
)
def test_the_next_renewal_after_a_leap_day_start_or_a_manual_renewal(
    start: date, current: date, expected: date
) -> None:
    assert next_period_start(start, current, 12) == expected
