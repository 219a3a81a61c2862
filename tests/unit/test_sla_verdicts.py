"""SLA verdicts cannot be rewritten after the fact: a reclassification applies, from the opening,
only to the clocks still on; a clock that stopped keeps the priority, target, due instant and
verdict it stopped with, and the monthly report counts it under that priority (or category).

Worked examples by hand (instants in the contract's zone), then properties over random
histories: a stopped clock never changes under any later reclassifications, a clock on is judged
as if the ticket had had its current classification from the opening, and the report counts
every clock once, under the group that judged it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sla.clock import SlaRules, evaluate
from domain.sla.explain import explain
from domain.sla.facts import TicketFacts, apply
from domain.sla.report import STATUSES, compliance
from tests.unit.test_sla_clock import BOG, CATALOG, LATER, MSK, NY, at, clocks, life, rules

H = timedelta(hours=1)


def premium_without_lowering() -> SlaRules:
    """bpm premium's targets and calendars, without its P1-lowering rule: a plan keyed by
    priority whose resolution clock runs on whatever the priority becomes."""
    terms = CATALOG["bpm/premium"].to_dict() | {"p1_downgrade_meets_resolution": False}
    return SlaRules.from_signed(terms, CATALOG["bpm/premium"].time_zone)


def test_a_p1_answered_late_then_lowered_to_p3_keeps_its_missed_p1_response() -> None:
    # P1 opened Mon Jun 1 09:00: reaction 60 min (24x7) -> 10:00; answered 10:30: missed.
    # Lowered to P3 at 12:00: the response had stopped, so it stays P1's (due 10:00, 1 h,
    # missed). The resolution clock still runs: P3's 10 working days (Mon-Fri 00-24, Russia
    # Day Fri Jun 12 shut) from the opening: Jun 1 15 h, Jun 2-5 96 h, Jun 8-11 96 h, Jun 15
    # 24 h (231 h), Tue Jun 16 09:00 the last 9 h.
    r = premium_without_lowering()
    facts = life(at(MSK, 2026, 6, 1, 9), ("Responded", at(MSK, 2026, 6, 1, 10, 30)),
                 ("Classified", at(MSK, 2026, 6, 1, 12), {"priority": "P3"}), priority="P1")
    result = evaluate(r, facts, at(MSK, 2026, 6, 2, 0))
    response, resolution = result.response, result.resolution
    assert result.priority == "P3"
    assert (response.priority, response.group, response.due_at, response.status) == (
        "P1", "P1", at(MSK, 2026, 6, 1, 10), "missed")
    assert (str(response.target), response.target_time) == ("1h", H)
    assert (resolution.priority, resolution.due_at, resolution.status) == ("P3", at(MSK, 2026, 6, 16, 9), "running")
    assert resolution.calendar_name == "working-days"
    # Lowered before any response: the response clock was still running, so P3's 6 h apply
    # from the opening (15:00) and the answer at 10:30 is met.
    early = life(at(MSK, 2026, 6, 1, 9), ("Classified", at(MSK, 2026, 6, 1, 9, 30), {"priority": "P3"}),
                 ("Responded", at(MSK, 2026, 6, 1, 10, 30)), priority="P1")
    response = evaluate(r, early, early.last_at).response
    assert (response.priority, response.due_at, response.status) == ("P3", at(MSK, 2026, 6, 1, 15), "met")


def test_the_monthly_report_counts_each_clock_under_the_priority_that_judged_it() -> None:
    r = premium_without_lowering()
    lowered = life(at(MSK, 2026, 6, 1, 9), ("Responded", at(MSK, 2026, 6, 1, 10, 30)),
                   ("Classified", at(MSK, 2026, 6, 1, 12), {"priority": "P3"}), priority="P1")
    p3 = life(at(MSK, 2026, 6, 3, 9), ("Responded", at(MSK, 2026, 6, 3, 10)), priority="P3")
    report = compliance(r, [evaluate(r, f, at(MSK, 2026, 6, 4, 0)) for f in (lowered, p3)])
    p1_group, p3_group = report["groups"]["P1"], report["groups"]["P3"]
    assert (p1_group["tickets"], p1_group["response"]["missed"], p1_group["response"]["met_pct"]) == (1, 1, 0.0)
    assert sum(p1_group["resolution"][s] for s in STATUSES) == 0
    assert (p3_group["tickets"], p3_group["response"]["met"], p3_group["resolution"]["running"]) == (2, 1, 2)
    assert (report["tickets"], report["all"]["tickets"], report["all"]["response"]["met_pct"]) == (2, 2, 50.0)


def test_bpm_premium_lowering_stops_the_p1_resolution_and_a_stopped_response_keeps_its_p1_verdict() -> None:
    # P1 opened Mon Jun 1 09:00: reaction due 10:00, answered 10:30 (missed); resolution 12 h
    # (24x7) due 21:00. Lowered to P4 at 20:00: the P1 resolution is met; at 22:00 missed.
    opened = at(MSK, 2026, 6, 1, 9)
    answered = ("Responded", at(MSK, 2026, 6, 1, 10, 30))
    met = clocks("bpm/premium", life(opened, answered, ("Classified", at(MSK, 2026, 6, 1, 20), {"priority": "P4"}),
                                     priority="P1"))
    assert (met.priority, met.resolution.priority, met.resolution.status, met.resolution.stopped_by) == (
        "P4", "P1", "met", "lowered")
    assert (met.response.priority, met.response.due_at, met.response.status) == ("P1", at(MSK, 2026, 6, 1, 10), "missed")
    late = clocks("bpm/premium", life(opened, answered, ("Classified", at(MSK, 2026, 6, 1, 22), {"priority": "P3"}),
                                      priority="P1"))
    assert (late.resolution.due_at, late.resolution.stopped_at, late.resolution.status) == (
        at(MSK, 2026, 6, 1, 21), at(MSK, 2026, 6, 1, 22), "missed")
    assert (late.response.priority, late.response.status) == ("P1", "missed")
    notes = explain(rules("bpm/premium"), life(opened, answered, ("Classified", at(MSK, 2026, 6, 1, 20),
                                                                  {"priority": "P4"}), priority="P1"), LATER)["notes"]
    assert "P1 lowered to P4 at 2026-06-01T17:00:00+00:00: counted as the P1 resolution (plan rule)" in notes
    assert "response judged under P1, in force when it stopped at 2026-06-01T07:30:00+00:00" in notes
    # The report counts both clocks under P1, none under P4.
    report = compliance(rules("bpm/premium"), [met])
    assert (report["groups"]["P1"]["tickets"], report["groups"]["P1"]["resolution"]["met"],
            report["groups"]["P1"]["response"]["missed"], report["groups"]["P4"]["tickets"]) == (1, 1, 1, 0)


def test_a_lowered_p1_raised_again_keeps_its_p1_resolution_verdict() -> None:
    # Lowered to P3 at 20:00 (met, due 21:00), raised to P1 at 23:00 and to P2 the next day:
    # the P1 resolution stopped at the lowering and stays met.
    opened = at(MSK, 2026, 6, 1, 9)
    facts = life(opened, ("Classified", at(MSK, 2026, 6, 1, 20), {"priority": "P3"}),
                 ("Classified", at(MSK, 2026, 6, 1, 23), {"priority": "P1"}),
                 ("Classified", at(MSK, 2026, 6, 2, 9), {"priority": "P2"}), priority="P1")
    resolution = clocks("bpm/premium", facts).resolution
    assert (resolution.priority, resolution.stopped_at, resolution.stopped_by, resolution.status) == (
        "P1", at(MSK, 2026, 6, 1, 20), "lowered", "met")


def test_a_reclassification_applies_retroactively_to_a_clock_still_running() -> None:
    # crm-experts gold, P3 2bd from Tue Jun 2 10:00 (-> Thu 10:00); raised to P1 at 10:30 with
    # no answer yet: P1's 1 h from the opening, 11:00; answered 10:50: met under P1.
    facts = life(at(NY, 2026, 6, 2, 10), ("Classified", at(NY, 2026, 6, 2, 10, 30), {"priority": "P1"}),
                 ("Responded", at(NY, 2026, 6, 2, 10, 50)), priority="P3")
    response = clocks("crm-experts/gold", facts).response
    assert (response.priority, response.due_at, response.status) == ("P1", at(NY, 2026, 6, 2, 11), "met")


def test_a_classification_stamped_with_the_instant_a_clock_stops_does_not_judge_it() -> None:
    # Answered at 10:30 and raised to P1 at that same instant (perhaps recorded after the
    # answer): the response stays P3's, 2bd from Tue Jun 2 10:00 -> Thu 10:00, met.
    facts = life(at(NY, 2026, 6, 2, 10), ("Responded", at(NY, 2026, 6, 2, 10, 30)),
                 ("Classified", at(NY, 2026, 6, 2, 10, 30), {"priority": "P1"}), priority="P3")
    result = clocks("crm-experts/gold", facts)
    assert result.priority == "P1"
    assert (result.response.priority, result.response.due_at, result.response.status) == (
        "P3", at(NY, 2026, 6, 4, 10), "met")


def test_a_reopened_resolution_clock_runs_again_under_the_current_priority() -> None:
    # bpm premium P2 opened Mon Jun 1 09:00: reaction 4 h (13:00), answered 09:30: met; resolved
    # 11:00 under P2 (3 working days: Thu 09:00): met. Reopened 12:00 and raised to P1 at 12:30:
    # the response keeps its P2 verdict; the resolution runs again, now P1's 12 h (24x7) from the
    # opening, with the 2 h of 09:00-11:00 kept: 10 h left from 12:00 -> 22:00.
    opened = at(MSK, 2026, 6, 1, 9)
    facts = life(opened, ("Responded", at(MSK, 2026, 6, 1, 9, 30)), ("Resolved", at(MSK, 2026, 6, 1, 11)),
                 priority="P2")
    before = clocks("bpm/premium", facts)
    assert (before.resolution.priority, before.resolution.due_at, before.resolution.status) == (
        "P2", at(MSK, 2026, 6, 4, 9), "met")
    facts = apply(facts, "Ticket.Reopened", at(MSK, 2026, 6, 1, 12), {})
    facts = apply(facts, "Ticket.Classified", at(MSK, 2026, 6, 1, 12, 30), {"priority": "P1"})
    result = evaluate(rules("bpm/premium"), facts, at(MSK, 2026, 6, 1, 13))
    assert (result.response.priority, result.response.due_at, result.response.status) == (
        "P2", at(MSK, 2026, 6, 1, 13), "met")
    assert (result.resolution.priority, result.resolution.due_at, result.resolution.status) == (
        "P1", at(MSK, 2026, 6, 1, 22), "running")
    assert result.resolution.elapsed == 3 * H
    # Resolved again at 23:00, after P1's due: missed, judged under P1.
    resolved = clocks("bpm/premium", apply(facts, "Ticket.Resolved", at(MSK, 2026, 6, 1, 23), {})).resolution
    assert (resolved.priority, resolved.status) == ("P1", "missed")


def test_a_category_plan_judges_a_stopped_clock_under_the_category_in_force_at_its_stop() -> None:
    # datacrm, Bogota 08-12 + 14-17. system-down opened Tue Mar 10 09:00: response "immediate"
    # (09:00), answered 09:30: missed. Reclassified incident at 10:00: the response stays
    # system-down's; the resolution, still running, takes incident's 1bd = 7 h from the
    # opening: 09:00-12:00 3 h, 14:00-17:00 3 h, Wed 08:00-09:00 -> Wed 09:00.
    facts = life(at(BOG, 2026, 3, 10, 9), ("Responded", at(BOG, 2026, 3, 10, 9, 30)),
                 ("Classified", at(BOG, 2026, 3, 10, 10), {"priority": "P3", "category": "incident"}),
                 category="system-down")
    result = clocks("datacrm/standard", facts, now=at(BOG, 2026, 3, 10, 11))
    assert (result.group, result.response.group, result.response.status) == ("incident", "system-down", "missed")
    assert result.response.due_at == at(BOG, 2026, 3, 10, 9)
    assert (result.resolution.group, result.resolution.due_at, result.resolution.status) == (
        "incident", at(BOG, 2026, 3, 11, 9), "running")
    report = compliance(rules("datacrm/standard"), [result])
    assert (report["groups"]["system-down"]["response"]["missed"], report["groups"]["incident"]["response"]["missed"],
            report["groups"]["incident"]["resolution"]["running"]) == (1, 0, 1)
    notes = explain(rules("datacrm/standard"), facts, at(BOG, 2026, 3, 10, 11))["notes"]
    assert any(n.startswith("response judged under P3 (system-down)") for n in notes), notes


# Properties.

PLANS = ("crm-experts/gold", "bpm/premium", "datacrm/standard", "sf-partner/platinum")
VERBS = ("Classified", "Classified", "Responded", "Paused", "Resumed", "Resolved", "Reopened", "Cancelled")
PRIORITIES = st.sampled_from(["P1", "P2", "P3", "P4"])
CATEGORIES = st.sampled_from([None, "incident", "system-down", "development"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, TicketFacts]:
    """A plan and a random (not always valid) ticket history over a few weeks of 2026; events
    may share an instant."""
    plan = draw(st.sampled_from(PLANS))
    t = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 300 * 24 * 60)))
    facts = TicketFacts.opened(t, {"priority": draw(st.one_of(st.none(), PRIORITIES)), "category": draw(CATEGORIES)})
    for verb in draw(st.lists(st.sampled_from(VERBS), max_size=10)):
        t += timedelta(minutes=draw(st.sampled_from([0, 0, 1]) | st.integers(0, 2 * 24 * 60)))
        facts = apply(facts, f"Ticket.{verb}", t, {"priority": draw(PRIORITIES), "category": draw(CATEGORIES)})
    return plan, facts


# Later: at or after the last event, as the facts receive them (so possibly at the stop itself).
reclassifications = st.lists(st.tuples(st.integers(0, 3 * 24 * 60), PRIORITIES, CATEGORIES), min_size=1, max_size=6)


def judged(clock: Any) -> tuple[Any, ...]:
    return (clock.priority, clock.category, clock.group, clock.target, clock.calendar_name, clock.due_at,
            clock.stopped_at, clock.stopped_by, clock.status, clock.elapsed)


@settings(max_examples=200, deadline=None)
@given(histories(), reclassifications)
def test_a_stopped_clocks_verdict_and_due_never_change_under_any_later_reclassifications(
    history: Any, later: list[tuple[int, str, str | None]]
) -> None:
    plan, facts = history
    r = rules(plan)
    before = evaluate(r, facts, facts.last_at)
    t = facts.last_at
    for minutes, priority, category in later:
        t += timedelta(minutes=minutes)
        facts = apply(facts, "Ticket.Classified", t, {"priority": priority, "category": category})
    after = evaluate(r, facts, t)
    for a, b in zip(before.clocks, after.clocks, strict=True):
        if a.stopped_at is not None:
            assert judged(a) == judged(b)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_a_clock_still_on_is_judged_as_if_the_current_classification_held_from_the_opening(history: Any) -> None:
    plan, facts = history
    r = rules(plan)
    found = evaluate(r, facts, facts.last_at)
    always = replace(facts, reported_priority=facts.priority, opened_category=facts.category, classifications=())
    reference = evaluate(r, always, facts.last_at)
    for a, b in zip(found.clocks, reference.clocks, strict=True):
        if a.stopped_at is None:
            assert (a.priority, a.category) == (facts.priority, facts.category)
            assert judged(a) == judged(b)


@settings(max_examples=100, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=6))
def test_the_report_counts_every_clock_once_under_the_group_that_judged_it(found: list[Any]) -> None:
    r = rules("datacrm/standard") if len(found) % 2 else rules("bpm/premium")
    results = [evaluate(r, facts, facts.last_at + H) for _, facts in found]
    report = compliance(r, results)
    for clock in ("response", "resolution"):
        for status in STATUSES:
            per_group = sum(g[clock][status] for g in report["groups"].values())
            assert per_group == report["all"][clock][status]
        for key, group in report["groups"].items():
            assert sum(group[clock][s] for s in STATUSES) == sum(getattr(x, clock).group == key for x in results)
    assert report["all"]["tickets"] == len(results)
    assert all(g["tickets"] <= len(results) for g in report["groups"].values())
