"""Reports replayed from a contract's events (projections/replay.py): on random histories
they equal what the in-memory views answer when the projections are run on them directly; on a
worked history they give the figures worked by hand; a later, back-dated event changes the
figures only of a replay that includes it; and the module loads without any I/O library."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import NotFound
from domain.periods import month_bounds
from domain.rules import RULES_VERSION
from domain.sla.clock import evaluate
from domain.sla.report import compliance
from infra.process.catalog import load_catalog
from projections import replay
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from projections.ledger import InMemoryLedgerView, LedgerProjection
from projections.sla import InMemorySlaView, SlaProjection
from tests.strategies import contract_histories

NOW = datetime(2027, 2, 10, 12, tzinfo=UTC)


def applied(projection: Any, view: Any, envs: list[Envelope]) -> Any:
    for env in envs:
        projection.apply(env, view)
    return view


@settings(max_examples=40, deadline=None)
@given(envs=contract_histories(), later=st.integers(0, 400))
def test_the_replayed_sla_reports_are_those_of_the_in_memory_view(envs: list[Envelope], later: int) -> None:
    now = envs[-1].occurred_at + timedelta(hours=later)
    view = applied(SlaProjection(), InMemorySlaView(), envs)
    signed = view.contract(envs[0].aggregate_id)
    found = replay.figures(envs, now)
    for month, report in found["sla"].items():
        start, end = month_bounds(month, signed.time_zone)
        tickets = sorted((r.facts.opened_at, t, r.facts) for t, r in view.tickets.items() if start <= r.facts.opened_at < end)
        expected = compliance(signed.rules, [evaluate(signed.rules, facts, now) for _, _, facts in tickets])
        assert {k: report[k] for k in expected} == expected
        assert (report["month"], report["as_of"], report["rules_version"]) == (month, now.isoformat(), RULES_VERSION)
    assert sum(r["tickets"] for r in found["sla"].values()) == len(view.tickets)


@settings(max_examples=40, deadline=None)
@given(envs=contract_histories(), later=st.integers(0, 400))
def test_the_replayed_ledger_is_that_of_the_in_memory_view(envs: list[Envelope], later: int) -> None:
    now = envs[-1].occurred_at + timedelta(hours=later)
    cid = envs[0].aggregate_id
    view = applied(LedgerProjection(), InMemoryLedgerView(), envs)
    ledgers = replay.figures(envs, now)["ledger"]
    assert set(view.labels(cid)) <= set(ledgers)
    for label in view.labels(cid):
        period, answer = view.period(cid, label), ledgers[label]
        assert (answer["granted"], answer["used"], answer["minutes"], answer["balance"]) == (
            period.granted, period.used, period.minutes, period.balance)
        assert [(e["position"], e["charge"], e["overage"]) for e in answer["entries"]] == [
            (e.position, e.charge, e.overage) for e in view.entries_of(cid, label)]
        assert answer["rules_version"] == RULES_VERSION


@settings(max_examples=40, deadline=None)
@given(envs=contract_histories(), later=st.integers(0, 400))
def test_the_replayed_availability_is_that_of_the_in_memory_view(envs: list[Envelope], later: int) -> None:
    now = envs[-1].occurred_at + timedelta(hours=later)
    cid = envs[0].aggregate_id
    view = applied(AvailabilityProjection(), InMemoryAvailabilityView(), envs)
    contract = view.outages_of(cid)
    for month, answer in replay.figures(envs, now)["availability"].items():
        figures = contract.month(month, now)
        assert answer["downtime_minutes"] == round(figures.downtime_minutes, 4)
        assert (answer["availability_pct"], answer["met"], answer["budget_left_minutes"]) == (
            figures.availability_pct, figures.met, figures.budget_left_minutes)
        assert answer["rules_version"] == RULES_VERSION


class Story:
    """One datacrm contract's events in store order (quarterly guidance allowance, 99.96 %)."""

    def __init__(self) -> None:
        self.envs: list[Envelope] = []
        terms = load_catalog()["datacrm/standard"].to_dict()
        self.add("Contract.Signed", "c", "2026-01-01T00:00:00Z", customer="Acme", plan_id="datacrm/standard",
                 terms=terms, starts_on="2026-01-01", time_zone=terms["time_zone"], holidays=[])

    def add(self, type_: str, aggregate: str, at: str, **data: Any) -> list[Envelope]:
        when = datetime.fromisoformat(at)
        self.envs.append(Envelope(len(self.envs) + 1, type_, aggregate, 1, "c", when, when, data))
        return list(self.envs)

    def opened(self, ticket: str, at: str, category: str) -> list[Envelope]:
        return self.add("Ticket.Opened", ticket, at, title="t", reporter="ana", channel="portal", contract_id="c",
                        priority=None, category=category, down_since=None)


def test_a_worked_history_gives_the_figures_worked_by_hand() -> None:
    story = Story()
    story.opened("t1", "2026-10-06T15:00:00Z", "system-down")
    story.add("Ticket.TimeConsumed", "t1", "2026-10-06T15:30:00Z", contract_id="c", minutes=50, kind="guidance",
              engineer="eve")
    story.add("Ticket.TimeConsumed", "t1", "2026-10-06T15:40:00Z", contract_id="c", minutes=20, kind="work",
              engineer="eve")
    envs = story.add("Ticket.Restored", "t1", "2026-10-06T16:30:00Z", contract_id="c", reason=None)
    found = replay.figures(envs, NOW)
    october = found["availability"]["2026-10"]
    assert (october["downtime_minutes"], october["outages"][0]["open"]) == (90.0, False)
    assert october["budget_exhausted"] is True  # 99.96 % of October allows about 17.9 minutes
    ledger = found["ledger"]["2026-Q4"]
    assert (ledger["granted"], ledger["used"], ledger["balance"], ledger["minutes"]) == (120, 50, 70, 70)
    sla = found["sla"]["2026-10"]
    assert (sla["tickets"], sla["groups"]["system-down"]["tickets"]) == (1, 1)
    # from the signing's month in Bogota (midnight UTC on 1 January is still December there) to now's
    assert list(found["sla"]) == ["2025-12", *(f"2026-{m:02}" for m in range(1, 13)), "2027-01", "2027-02"]
    assert found["rules_version"] == RULES_VERSION and found["as_of"] == NOW.isoformat()


def test_a_back_dated_event_changes_only_the_figures_of_a_replay_that_includes_it() -> None:
    story = Story()
    known = story.opened("t1", "2026-10-06T15:00:00Z", "incident")
    story.opened("t2", "2026-10-02T09:00:00Z", "system-down")  # recorded later, happened earlier
    later = story.add("Ticket.TimeConsumed", "t2", "2026-10-02T09:30:00Z", contract_id="c", minutes=30,
                      kind="guidance", engineer="eve")
    then, now = replay.figures(known, NOW), replay.figures(later, NOW)
    assert then == replay.figures(later[:len(known)], NOW)
    assert (then["sla"]["2026-10"]["tickets"], now["sla"]["2026-10"]["tickets"]) == (1, 2)
    assert "2026-Q4" not in then["ledger"] and now["ledger"]["2026-Q4"]["used"] == 30  # a period without activity is not listed
    assert then["availability"]["2026-10"]["downtime_minutes"] == 0
    assert now["availability"]["2026-10"]["outages"][0]["open"] is True


def test_the_default_month_and_period_are_those_holding_now() -> None:
    envs = Story().opened("t1", "2026-10-06T15:00:00Z", "incident")
    assert replay.sla_report(envs, NOW)["month"] == "2027-02"
    assert replay.availability_report(envs, NOW)["month"] == "2027-02"
    assert replay.ledger_report(envs, NOW)["period"] == "2027-Q1"
    assert replay.sla_report(envs, NOW, "2026-10")["tickets"] == 1


def test_events_without_a_signing_name_no_contract() -> None:
    envs = Story().opened("t1", "2026-10-06T15:00:00Z", "incident")[1:]
    with pytest.raises(NotFound):
        replay.figures(envs, NOW)
    with pytest.raises(NotFound):
        replay.ledger_report([], NOW)


def test_replay_loads_without_any_database_or_web_library() -> None:
    code = ("import sys, projections.replay; "
            "print(sorted(m for m in ('psycopg', 'psycopg_pool', 'fastapi', 'kafka', 'fastavro') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
