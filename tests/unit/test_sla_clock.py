"""SLA clocks: worked examples by hand for every seed plan family, then properties.

Each example spells out, in a comment, how the due instant follows from the plan (see
plans/*.toml): the calendar's windows in the contract's zone, its holidays, the nominal day
behind business-day targets, pauses, reopenings and reclassifications. Instants are written
in the contract's zone; aware datetimes compare as instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sla.clock import SlaRules, evaluate
from domain.sla.explain import explain
from domain.sla.facts import TicketFacts, apply, from_json, to_json
from infra.process.catalog import load_catalog

CATALOG = load_catalog()
NY, MSK = ZoneInfo("America/New_York"), ZoneInfo("Europe/Moscow")
BOG, BA = ZoneInfo("America/Bogota"), ZoneInfo("America/Argentina/Buenos_Aires")
LATER = datetime(2026, 11, 20, tzinfo=UTC)  # "now" well after every example
H = timedelta(hours=1)


def rules(plan: str, holidays: tuple[str, ...] = ()) -> SlaRules:
    terms = CATALOG[plan]
    return SlaRules.from_signed(terms.to_dict(), terms.time_zone, holidays)


def life(opened_at: datetime, *events: tuple[Any, ...], priority: str | None = None,
         category: str | None = None) -> TicketFacts:
    """A ticket's facts: opened, then ("Verb", at[, data]) events in order."""
    facts = TicketFacts.opened(opened_at, {"priority": priority, "category": category})
    for verb, at, *data in events:
        facts = apply(facts, f"Ticket.{verb}", at, data[0] if data else {})
    return facts


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def clocks(plan: str, facts: TicketFacts, now: datetime = LATER, holidays: tuple[str, ...] = ()) -> Any:
    return evaluate(rules(plan, holidays), facts, now)


# crm-experts: Mon-Fri 08:00-20:00 New York, 1 business day = 12 h, response targets only.


def test_silver_p3_two_business_days_run_over_a_weekend_and_the_spring_dst_change() -> None:
    # 2bd = 24 h of 08-20. Thu Mar 5 15:00-20:00 EST is 5 h, Fri 12 h (17 h), weekend shut,
    # New York springs forward on Sun Mar 8, so Mon 08:00 is EDT; 7 h more: Mon 15:00 EDT.
    opened = at(NY, 2026, 3, 5, 15, 0)
    result = clocks("crm-experts/silver", life(opened, ("Responded", at(NY, 2026, 3, 9, 14, 59)), priority="P3"))
    assert result.response.due_at == at(NY, 2026, 3, 9, 15, 0) == datetime(2026, 3, 9, 19, tzinfo=UTC)
    assert (result.response.status, result.response.elapsed) == ("met", timedelta(hours=23, minutes=59))
    assert result.resolution.status == "none" and result.resolution.due_at is None


def test_silver_p1_opened_on_friday_evening_is_due_monday_morning_and_a_late_response_misses() -> None:
    # 2 h: Fri Apr 3 19:00-20:00 is 1 h (no holiday: the page counts every weekday), then Mon 08:00-09:00.
    facts = life(at(NY, 2026, 4, 3, 19, 0), ("Responded", at(NY, 2026, 4, 6, 9, 30)), priority="P1")
    response = clocks("crm-experts/silver", facts).response
    assert (response.due_at, response.stopped_at, response.status) == (
        at(NY, 2026, 4, 6, 9, 0), at(NY, 2026, 4, 6, 9, 30), "missed")


def test_gold_ticket_without_priority_is_p3_until_classified_p1_which_applies_from_the_opening() -> None:
    # Unclassified: P3, 2bd = 24 h from Tue Jun 2 10:00: Tue 10 h, Wed 12 h, Thu 2 h -> Thu 10:00.
    opened = at(NY, 2026, 6, 2, 10, 0)
    assert clocks("crm-experts/gold", life(opened), now=opened).response.due_at == at(NY, 2026, 6, 4, 10, 0)
    # Classified P1 at 10:30: P1's 1 h counts from the opening, so due Tue 11:00.
    classified = life(opened, ("Classified", at(NY, 2026, 6, 2, 10, 30), {"priority": "P1"}))
    assert clocks("crm-experts/gold", classified, now=opened + H / 2).response.status == "running"
    met = apply(classified, "Ticket.Responded", at(NY, 2026, 6, 2, 10, 50), {})
    assert clocks("crm-experts/gold", met).response.status == "met"
    # Classified P1 only at 11:30: already past P1's due, so breached at once.
    late = life(opened, ("Classified", at(NY, 2026, 6, 2, 11, 30), {"priority": "P1"}))
    result = clocks("crm-experts/gold", late, now=at(NY, 2026, 6, 2, 11, 30))
    assert (result.priority, result.response.due_at, result.response.status) == (
        "P1", at(NY, 2026, 6, 2, 11, 0), "breached")


def test_gold_answer_after_closing_time_to_a_question_due_at_the_close_is_missed() -> None:
    # P1 1 h from Fri Apr 10 19:00: due at the 20:00 close. Answered Sat 10:00: no business time
    # passed since the due, but verdicts compare instants, so the response is missed.
    facts = life(at(NY, 2026, 4, 10, 19, 0), ("Responded", at(NY, 2026, 4, 11, 10, 0)), priority="P1")
    response = clocks("crm-experts/gold", facts).response
    assert (response.due_at, response.elapsed, response.status) == (at(NY, 2026, 4, 10, 20, 0), H, "missed")


def test_gold_contract_holiday_closes_its_calendar() -> None:
    # P2 5 h, with the contract's own closed date Fri Jul 3: Thu Jul 2 17:00-20:00 is 3 h,
    # Friday shut, Mon Jul 6 08:00-10:00 the last 2 h. Without it: Fri 10:00.
    facts = life(at(NY, 2026, 7, 2, 17, 0), priority="P2")
    assert clocks("crm-experts/gold", facts, holidays=("2026-07-03",)).response.due_at == at(NY, 2026, 7, 6, 10, 0)
    assert clocks("crm-experts/gold", facts).response.due_at == at(NY, 2026, 7, 3, 10, 0)


def test_platinum_p4_five_business_days_cross_the_autumn_dst_change() -> None:
    # 5bd = 60 h. Mon Oct 26 09:00-20:00 EDT 11 h, Tue-Fri 4 x 12 h (59 h); New York falls
    # back on Sun Nov 1, so Mon Nov 2 08:00 is EST (13:00 UTC): 1 h more, 09:00 EST = 14:00 UTC.
    result = clocks("crm-experts/platinum", life(at(NY, 2026, 10, 26, 9, 0), priority="P4"),
                    now=at(NY, 2026, 10, 26, 9, 0))
    assert result.response.due_at == datetime(2026, 11, 2, 14, tzinfo=UTC)
    assert result.response.target_time == timedelta(hours=60)


# bpm: Moscow (UTC+3, no DST); Basic Mon-Fri 10-18 and Business Mon-Sat 09-19, both minus
# Russian holidays; Premium reacts on 24x7 and resolves P2-P4 in working days (Mon-Fri 00-24).


def test_bpm_basic_p1_reaction_of_24_business_hours_skips_the_victory_day_holidays() -> None:
    # 24 h of 10-18 (8 h a day). Fri May 8 14:00-18:00 is 4 h; Sat, Sun and Mon May 11 (Victory
    # Day observed) shut; Tue 8 h (12 h), Wed 8 h (20 h), Thu May 14 10:00 + 4 h = 14:00.
    result = clocks("bpm/basic", life(at(MSK, 2026, 5, 8, 14, 0), priority="P1"), now=at(MSK, 2026, 5, 8, 14))
    assert result.response.due_at == at(MSK, 2026, 5, 14, 14, 0)


def test_bpm_business_counts_saturday_as_a_working_day() -> None:
    # P1 4 h of Mon-Sat 09-19: Sat Mar 14 17:00-19:00 is 2 h, Sunday shut, Mon 09:00-11:00.
    facts = life(at(MSK, 2026, 3, 14, 17, 0), ("Responded", at(MSK, 2026, 3, 16, 11, 0)), priority="P1")
    response = clocks("bpm/business", facts).response
    assert (response.due_at, response.status) == (at(MSK, 2026, 3, 16, 11, 0), "met")


def test_bpm_premium_p1_resolution_pauses_while_waiting_on_the_customer() -> None:
    # 24x7: reaction 60 min -> Sat 23:00. Resolution 12 h -> Sun 10:00, pushed 2 h by the
    # pause 01:00-03:00 -> Sun 12:00; resolved 11:30, met, after 11 h 30 of 24x7 time less 2 h.
    opened = at(MSK, 2026, 2, 21, 22, 0)
    facts = life(opened, ("Responded", at(MSK, 2026, 2, 21, 22, 40)),
                 ("Paused", at(MSK, 2026, 2, 22, 1, 0)), ("Resumed", at(MSK, 2026, 2, 22, 3, 0)),
                 ("Resolved", at(MSK, 2026, 2, 22, 11, 30)), priority="P1")
    result = clocks("bpm/premium", facts)
    assert (result.response.due_at, result.response.status) == (at(MSK, 2026, 2, 21, 23, 0), "met")
    assert result.resolution.due_at == at(MSK, 2026, 2, 22, 12, 0)
    assert (result.resolution.status, result.resolution.elapsed) == ("met", timedelta(hours=11, minutes=30))


def test_bpm_premium_paused_clock_has_no_due_instant_until_it_resumes() -> None:
    opened = at(MSK, 2026, 2, 21, 22, 0)
    facts = life(opened, ("Paused", at(MSK, 2026, 2, 22, 1, 0)), priority="P1")
    resolution = clocks("bpm/premium", facts, now=at(MSK, 2026, 2, 23, 0, 0)).resolution
    assert (resolution.status, resolution.due_at, resolution.elapsed) == ("paused", None, 3 * H)


def test_bpm_premium_p1_lowered_to_p3_counts_as_a_met_p1_resolution() -> None:
    # P1 opened Mon Jun 1 09:00: P1 resolution (12 h, 24x7) due 21:00. Lowered to P3 at
    # 20:00: the P1 resolution is met then. The response stopped at 09:40, before the
    # lowering, so it keeps its P1 verdict (60 min -> 10:00: met).
    opened = at(MSK, 2026, 6, 1, 9, 0)
    facts = life(opened, ("Responded", at(MSK, 2026, 6, 1, 9, 40)),
                 ("Classified", at(MSK, 2026, 6, 1, 20, 0), {"priority": "P3"}), priority="P1")
    result = clocks("bpm/premium", facts)
    assert result.priority == "P3" and result.resolution.priority == "P1"
    assert (result.resolution.due_at, result.resolution.stopped_at) == (at(MSK, 2026, 6, 1, 21), at(MSK, 2026, 6, 1, 20))
    assert (result.resolution.status, result.resolution.stopped_by) == ("met", "lowered")
    assert (result.response.priority, result.response.due_at, result.response.status) == (
        "P1", at(MSK, 2026, 6, 1, 10), "met")
    # Lowered only at 22:00, after P1's due: missed. Lowered to P2: not the plan's rule, so P2's
    # working-day target applies (3bd from Mon 09:00 -> Thu 09:00) and the clock runs on.
    late = life(opened, ("Classified", at(MSK, 2026, 6, 1, 22), {"priority": "P4"}), priority="P1")
    assert clocks("bpm/premium", late).resolution.status == "missed"
    p2 = life(opened, ("Classified", at(MSK, 2026, 6, 1, 20), {"priority": "P2"}), priority="P1")
    resolution = clocks("bpm/premium", p2, now=at(MSK, 2026, 6, 2, 0, 0)).resolution
    assert (resolution.due_at, resolution.status) == (at(MSK, 2026, 6, 4, 9, 0), "running")


def test_bpm_premium_working_days_skip_weekends_and_russia_day() -> None:
    # 1bd = 24 h of Mon-Fri 00-24. P2 3bd from Fri Jun 5 15:00: Fri 9 h, Mon 24 h (33 h),
    # Tue 24 h (57 h), Wed Jun 10 00:00 + 15 h = 15:00. P3 10bd from Mon Jun 1 00:00: Jun 1-5
    # and 8-11 are nine days, Fri Jun 12 (Russia Day) shut, Mon Jun 15 the tenth -> Tue 00:00.
    p2 = clocks("bpm/premium", life(at(MSK, 2026, 6, 5, 15), priority="P2"), now=at(MSK, 2026, 6, 5, 15))
    assert (p2.resolution.due_at, p2.resolution.calendar_name) == (at(MSK, 2026, 6, 10, 15), "working-days")
    assert p2.response.due_at == at(MSK, 2026, 6, 5, 19)  # reactions stay on 24x7: 4 h
    p3 = clocks("bpm/premium", life(at(MSK, 2026, 6, 1, 0), priority="P3"), now=at(MSK, 2026, 6, 1, 0))
    assert p3.resolution.due_at == at(MSK, 2026, 6, 16, 0)


def test_bpm_premium_reopened_ticket_keeps_its_elapsed_resolution_time() -> None:
    # P1 12 h on 24x7. Mon 08:00-12:00 ran 4 h before the resolution; reopened Tue 10:00 with
    # 8 h left -> due 18:00; a pause 11:00-13:00 pushes it to 20:00; resolved 19:00: met, 11 h.
    opened = at(MSK, 2026, 6, 1, 8, 0)
    facts = life(opened, ("Resolved", at(MSK, 2026, 6, 1, 12)), ("Reopened", at(MSK, 2026, 6, 2, 10)),
                 priority="P1")
    assert clocks("bpm/premium", facts, now=at(MSK, 2026, 6, 2, 10)).resolution.due_at == at(MSK, 2026, 6, 2, 18)
    facts = apply(facts, "Ticket.Paused", at(MSK, 2026, 6, 2, 11), {})
    facts = apply(facts, "Ticket.Resumed", at(MSK, 2026, 6, 2, 13), {})
    facts = apply(facts, "Ticket.Resolved", at(MSK, 2026, 6, 2, 19), {})
    resolution = clocks("bpm/premium", facts).resolution
    assert (resolution.due_at, resolution.status, resolution.elapsed) == (at(MSK, 2026, 6, 2, 20), "met", 11 * H)
    # The response clock stopped at the first resolution (no response before it): met.
    assert clocks("bpm/premium", facts).response.stopped_by == "resolved"


# datacrm: split shift 08-12 + 14-17 Bogota (7 h, no DST), Colombian holidays, by category.


def test_datacrm_system_down_immediate_response_is_due_at_the_next_opening() -> None:
    # Opened during lunch (12:30): nothing accrues until 14:00, so "immediate" is due 14:00;
    # a response then is met, a minute later missed. Resolution 1.5 h: 14:00-15:30.
    opened = at(BOG, 2026, 3, 10, 12, 30)
    on_time = life(opened, ("Responded", at(BOG, 2026, 3, 10, 14, 0)), category="system-down")
    result = clocks("datacrm/standard", on_time, now=at(BOG, 2026, 3, 10, 14, 30))
    assert (result.response.due_at, result.response.status) == (at(BOG, 2026, 3, 10, 14, 0), "met")
    assert (result.resolution.due_at, result.resolution.status) == (at(BOG, 2026, 3, 10, 15, 30), "running")
    late = life(opened, ("Responded", at(BOG, 2026, 3, 10, 14, 1)), category="system-down")
    assert clocks("datacrm/standard", late).response.status == "missed"
    # Opened inside the windows: due that very instant.
    inside = life(at(BOG, 2026, 3, 10, 9, 15), ("Responded", at(BOG, 2026, 3, 10, 9, 15)), category="system-down")
    assert clocks("datacrm/standard", inside).response.status == "met"


def test_datacrm_incident_split_shift_skips_saint_josephs_day_and_a_pause() -> None:
    # No category: incident (the default). Response 4 h from Fri Mar 20 16:00: Fri 16-17 is 1 h,
    # Mon Mar 23 (Saint Joseph, observed) shut, Tue 08:00-11:00 the other 3 h -> Tue 11:00.
    # Resolution 1bd = 7 h: Fri 1 h; Tue 08-09 1 h (2 h), paused 09:00-10:30, 10:30-12:00
    # 1.5 h (3.5 h), 14:00-17:00 3 h (6.5 h), Wed 08:00-08:30 the last 0.5 h.
    facts = life(at(BOG, 2026, 3, 20, 16, 0), ("Responded", at(BOG, 2026, 3, 24, 10, 0)),
                 ("Paused", at(BOG, 2026, 3, 24, 9, 0)), ("Resumed", at(BOG, 2026, 3, 24, 10, 30)))
    result = clocks("datacrm/standard", facts, now=at(BOG, 2026, 3, 24, 17, 0))
    assert result.group == "incident"
    assert (result.response.due_at, result.response.status) == (at(BOG, 2026, 3, 24, 11, 0), "met")
    assert result.resolution.target_time == 7 * H
    assert (result.resolution.due_at, result.resolution.status) == (at(BOG, 2026, 3, 25, 8, 30), "running")
    assert result.resolution.elapsed == timedelta(hours=6, minutes=30)


def test_datacrm_reclassified_to_development_has_no_resolution_target() -> None:
    facts = life(at(BOG, 2026, 3, 10, 9, 0), ("Classified", at(BOG, 2026, 3, 10, 9, 30),
                                              {"priority": "P3", "category": "development"}), category="incident")
    result = clocks("datacrm/standard", facts, now=at(BOG, 2026, 3, 10, 10))
    assert (result.category, result.response.due_at) == ("development", at(BOG, 2026, 3, 10, 15, 0))
    assert (result.resolution.status, result.resolution.due_at) == ("none", None)


# sf-partner: Buenos Aires (UTC-3), Argentine holidays; Platinum runs P1 on 24x7.


def test_sf_platinum_p1_runs_around_the_clock_while_p2_waits_for_monday() -> None:
    # Sat May 16 10:00: P1 (24x7) due 11:00; P2 (Mon-Fri 08-20) due Mon May 18 09:00.
    opened = at(BA, 2026, 5, 16, 10, 0)
    assert clocks("sf-partner/platinum", life(opened, priority="P1"), now=opened).response.due_at == at(BA, 2026, 5, 16, 11)
    p2 = clocks("sf-partner/platinum", life(opened, priority="P2"), now=opened).response
    assert (p2.due_at, p2.calendar_name) == (at(BA, 2026, 5, 18, 9), "business")
    # Raised to P1 at 10:30: P1's calendar and target from the opening, so 11:00; met at 10:45.
    raised = life(opened, ("Classified", at(BA, 2026, 5, 16, 10, 30), {"priority": "P1"}),
                  ("Responded", at(BA, 2026, 5, 16, 10, 45)), priority="P2")
    response = clocks("sf-partner/platinum", raised).response
    assert (response.due_at, response.status, response.calendar_name) == (at(BA, 2026, 5, 16, 11), "met", "24x7")


def test_sf_silver_business_day_is_nine_hours_and_skips_may_revolution_day() -> None:
    # P2 1bd = 9 h of 09-18: Fri May 22 12:00-18:00 6 h, Mon May 25 shut, Tue 09:00-12:00.
    result = clocks("sf-partner/silver", life(at(BA, 2026, 5, 22, 12), priority="P2"), now=at(BA, 2026, 5, 22, 12))
    assert (result.response.due_at, result.response.target_time) == (at(BA, 2026, 5, 26, 12), 9 * H)


def test_sf_gold_cancelled_ticket_owes_nothing_unless_it_was_already_past_due() -> None:
    opened = at(BA, 2026, 5, 19, 10, 0)  # P3 4 h of 08-20 -> 14:00
    early = life(opened, ("Cancelled", at(BA, 2026, 5, 19, 11)), priority="P3")
    assert clocks("sf-partner/gold", early).response.status == "none"
    late = life(opened, ("Cancelled", at(BA, 2026, 5, 19, 15)), priority="P3")
    response = clocks("sf-partner/gold", late).response
    assert (response.status, response.stopped_by, response.due_at) == ("missed", "cancelled", at(BA, 2026, 5, 19, 14))


def test_dolibarr_has_no_targets_so_every_clock_is_none() -> None:
    result = clocks("dolibarr/credits", life(at(MSK, 2026, 5, 4, 10), priority="P1"))
    assert (result.response.status, result.resolution.status) == ("none", "none")


# Explanation.


def test_explanation_lays_out_counted_outside_and_paused_time_adding_up_to_the_elapsed() -> None:
    facts = life(at(BOG, 2026, 3, 20, 16, 0), ("Paused", at(BOG, 2026, 3, 24, 9, 0)),
                 ("Resumed", at(BOG, 2026, 3, 24, 10, 30)), ("Resolved", at(BOG, 2026, 3, 24, 15)))
    shown = explain(rules("datacrm/standard"), facts, LATER)["resolution"]
    kinds = [(s["kind"], s["from"][:16], s["to"][:16]) for s in shown["timeline"]]
    assert kinds[:3] == [("counted", "2026-03-20T21:00", "2026-03-20T22:00"),
                         ("outside_coverage", "2026-03-20T22:00", "2026-03-24T13:00"),
                         ("counted", "2026-03-24T13:00", "2026-03-24T14:00")]
    assert ("paused", "2026-03-24T14:00", "2026-03-24T15:30") in kinds
    # Fri 16-17, Tue 08-09, 10:30-12:00 and 14-15: 4.5 h.
    assert sum(s["business_minutes"] for s in shown["timeline"]) == shown["elapsed_minutes"] == 270
    assert all(a["to"] == b["from"] for a, b in pairwise(shown["timeline"]))


# Properties.

PLANS = ("crm-experts/gold", "bpm/basic", "bpm/premium", "datacrm/standard", "sf-partner/platinum")
VERBS = ("Classified", "Responded", "Paused", "Resumed", "Resolved", "Reopened")


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, TicketFacts, datetime]:
    """A plan and a random (not always valid) ticket history over a few weeks of 2026."""
    plan = draw(st.sampled_from(PLANS))
    t = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 300 * 24 * 60)))
    facts = TicketFacts.opened(t, {"priority": draw(st.sampled_from([None, "P1", "P2", "P3", "P4"])),
                                   "category": draw(st.sampled_from([None, "incident", "system-down"]))})
    for verb in draw(st.lists(st.sampled_from(VERBS), max_size=8)):
        t += timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
        facts = apply(facts, f"Ticket.{verb}", t, {"priority": draw(st.sampled_from(["P1", "P3", "P4"]))})
    return plan, facts, t


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 30 * 24 * 60))
def test_due_instants_do_not_depend_on_now_and_statuses_follow_them(history: Any, later: int) -> None:
    plan, facts, last = history
    now = last + timedelta(minutes=later)
    first, second = clocks(plan, facts, last), clocks(plan, facts, now)
    for a, b in zip(first.clocks, second.clocks, strict=True):
        assert (a.due_at, a.stopped_at) == (b.due_at, b.stopped_at)
        if b.status == "breached":
            assert b.stopped_at is None and b.due_at is not None and b.due_at < now
        if b.status in ("met", "missed") and b.stopped_by != "cancelled":
            assert (b.status == "met") == (b.stopped_at <= b.due_at)


@settings(max_examples=150, deadline=None)
@given(histories())
def test_a_clock_on_is_due_when_its_business_time_reaches_the_target(history: Any) -> None:
    plan, facts, last = history
    for clock in clocks(plan, facts, last).clocks:
        if clock.on and clock.due_at is not None:
            due = clock.due_at
            counted = sum((clock.calendar.between(s, min(e or due, due)) for s, e in clock.segments),
                          timedelta(0))
            assert counted == clock.target_time


@settings(max_examples=100, deadline=None)
@given(histories())
def test_the_explanation_adds_up_to_the_elapsed_time_and_the_facts_round_trip(history: Any) -> None:
    plan, facts, last = history
    assert from_json(to_json(facts)) == facts
    shown = explain(rules(plan), facts, last + H)
    for name in ("response", "resolution"):
        timeline = shown[name]["timeline"]
        assert sum(s["business_minutes"] for s in timeline) == shown[name]["elapsed_minutes"]
        assert all(a["to"] == b["from"] for a, b in pairwise(timeline))


def test_a_pause_that_begins_as_the_ticket_is_reopened_stops_the_clock_until_it_ends() -> None:
    # bpm premium P1: 12 h around the clock. Resolved and reopened at 10:00, and paused at that
    # same instant until 11:00. The clock runs 09:00-10:00 and from 11:00: 2 h by 12:00.
    opened = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    facts = life(opened, ("Resolved", opened + H), ("Reopened", opened + H), ("Paused", opened + H),
                 ("Resumed", opened + 2 * H), priority="P1")
    resolution = clocks("bpm/premium", facts, now=opened + 3 * H).resolution
    assert resolution.elapsed == 2 * H
    timeline = explain(rules("bpm/premium"), facts, opened + 3 * H)["resolution"]["timeline"]
    assert all(a["to"] == b["from"] for a, b in pairwise(timeline))
