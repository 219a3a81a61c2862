"""How a ticket's business time accrued, for auditors: each clock's timeline from the opening.

For each clock, `explain` lays [opening, stop or now) out as consecutive stretches of four kinds:
`counted` (the clock ran and the calendar was open: business time), `outside_coverage` (the
clock ran but the calendar was closed), `paused` (waiting on the customer) and `resolved`
(between a resolution and the reopening). The counted minutes add up to the elapsed time the
SLA answer reports, and the rule that set the target (priority or category, calendar, nominal
day, reclassifications, a clock judged at its stop, a P1 lowered) is spelled out next to it.
Pure, like the clock math.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.sla.clock import ClockResult, SlaResult, SlaRules, evaluate, lowering
from domain.sla.facts import TicketFacts

ZERO = timedelta(0)


def minutes(value: timedelta | None) -> float | None:
    """Minutes with microsecond precision, rounded for display (4 places)."""
    return None if value is None else round(value / timedelta(minutes=1), 4)


def explain(rules: SlaRules, facts: TicketFacts, now: datetime) -> dict[str, Any]:
    """The SLA answer's reasoning: each clock's rule and timeline, as JSON-able data."""
    result = evaluate(rules, facts, now)
    return {
        "as_of": result.as_of.isoformat(),
        "time_zone": rules.time_zone,
        "extra_holidays": list(rules.holidays),
        "targets_by": rules.terms.targets_by,
        "group": result.group,
        "classifications": [
            {"at": c.at.isoformat(), "priority": c.priority, "category": c.category}
            for c in facts.classifications
        ],
        "notes": _notes(rules, facts, result),
        "response": _clock(result.response, facts, result.as_of),
        "resolution": _clock(result.resolution, facts, result.as_of),
    }


def _notes(rules: SlaRules, facts: TicketFacts, result: SlaResult) -> list[str]:
    notes = []
    if not facts.classifications:
        given = "the reporter's" if facts.reported_priority else "the default"
        notes.append(f"not classified: {given} priority {result.priority} applies")
    else:
        notes.append(f"reclassified: {result.priority}'s targets apply from the opening to the clocks "
                     "still on, the business time elapsed since then kept; a clock that had stopped "
                     "keeps the target and verdict it stopped with")
    current = (result.priority, result.category)
    for clock in result.clocks:
        if clock.stopped_at is not None and (clock.priority, clock.category) != current:
            notes.append(f"{clock.clock} judged under {_named(clock.priority, clock.category)}, "
                         f"in force when it stopped at {clock.stopped_at.isoformat()}")
    lowered = lowering(rules, facts)
    if lowered is not None:
        notes.append(f"P1 lowered to {lowered.priority} at {lowered.at.isoformat()}: "
                     "counted as the P1 resolution (plan rule)")
    if len(facts.resolutions) > 1 or (facts.resolutions and facts.resolved_at is None):
        notes.append("reopened: the resolution clock resumed with its elapsed time kept, under the "
                     "priority in force while it runs")
    return notes


def _named(priority: str, category: str | None) -> str:
    return priority if category is None else f"{priority} ({category})"


def _clock(clock: ClockResult, facts: TicketFacts, now: datetime) -> dict[str, Any]:
    end = clock.stopped_at or now
    cal = clock.calendar
    return {
        "priority": clock.priority,
        "category": clock.category,
        "group": clock.group,
        "calendar": clock.calendar_name,
        "calendar_spec": cal.to_spec(),
        "nominal_day_minutes": minutes(cal.nominal_day()),
        "target": None if clock.target is None else str(clock.target),
        "target_minutes": minutes(clock.target_time),
        "elapsed_minutes": minutes(clock.elapsed),
        "due_at": _iso(clock.due_at),
        "stopped_at": _iso(clock.stopped_at),
        "stopped_by": clock.stopped_by,
        "status": clock.status,
        "timeline": timeline(clock, facts, end),
    }


def timeline(clock: ClockResult, facts: TicketFacts, end: datetime) -> list[dict[str, Any]]:
    """[opening, end) as consecutive counted / outside_coverage / paused / resolved stretches."""
    found: list[dict[str, Any]] = []
    cursor = facts.opened_at
    for start, stop in clock.segments:
        stop = end if stop is None else stop
        if start > cursor:
            found.append(_stretch(_gap_kind(facts, cursor), cursor, start))
        found += _ran(clock, start, stop)
        cursor = max(cursor, stop)
    if end > cursor:  # a clock paused up to now
        found.append(_stretch(_gap_kind(facts, cursor), cursor, end))
    return found


def _ran(clock: ClockResult, start: datetime, stop: datetime) -> list[dict[str, Any]]:
    found, cursor = [], start
    for a, b in clock.calendar.open_intervals(start, stop):
        if a > cursor:
            found.append(_stretch("outside_coverage", cursor, a))
        found.append(_stretch("counted", a, b, b - a))
        cursor = b
    if stop > cursor:
        found.append(_stretch("outside_coverage", cursor, stop))
    return found


def _gap_kind(facts: TicketFacts, at: datetime) -> str:
    return "paused" if any(s <= at and (e is None or at < e) for s, e in facts.pauses) else "resolved"


def _stretch(kind: str, start: datetime, end: datetime, counted: timedelta = ZERO) -> dict[str, Any]:
    return {"kind": kind, "from": start.isoformat(), "to": end.isoformat(),
            "business_minutes": minutes(counted)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
