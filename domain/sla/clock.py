"""The SLA clocks of one ticket: due instants and statuses from its facts and its contract's terms.

`evaluate(rules, facts, now)` is pure (`now` is a parameter) and gives, for the response and the
resolution clock, the priority (and category) that judges it, the target, the due instant, the
stop, the business time elapsed and a status among running, paused, breached, met, missed, none;
its docstring lists the interpretations of docs/design.md. `SlaRules` holds a contract's terms,
its calendars and targets worked out once. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple

from domain.durations import Duration
from domain.plans import PlanTerms
from domain.sla.calendar import Calendar
from domain.sla.facts import Classification, Span, TicketFacts

ZERO = timedelta(0)
_MICRO = timedelta(microseconds=1)
LOWERED = ("P3", "P4")


@lru_cache(maxsize=256)
def _calendar(spec_json: str, time_zone: str, holidays: tuple[str, ...]) -> Calendar:
    return Calendar.from_spec(json.loads(spec_json), time_zone, holidays)


class ClockTerms(NamedTuple):
    """What one clock runs on: a named calendar, and its target (None: no target)."""

    calendar_name: str
    calendar: Calendar
    target: Duration | None
    target_time: timedelta | None
    label: str | None  # the target as the plan writes it ("2bd")
    target_minutes: float | None  # the target in business minutes of the calendar


@dataclass
class SlaRules:
    """A contract's SLA terms: its plan terms, time zone and extra closed dates; calendars cached."""

    terms: PlanTerms
    time_zone: str
    holidays: tuple[str, ...] = ()
    _calendars: dict[str, Calendar] = field(default_factory=dict, repr=False, compare=False)
    _clock_terms: dict[tuple[str, str | None, str], ClockTerms] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def from_signed(cls, terms: Mapping[str, Any], time_zone: str, holidays: Iterable[str] = ()) -> SlaRules:
        """From a `Contract.Signed` event's terms, zone and holidays; ValueError if they are bad.

        Equal inputs give the same (shared, effectively immutable) instance, so its calendars
        and targets are worked out once per process rather than once per batch or request.
        """
        return _rules(json.dumps(terms, sort_keys=True), time_zone, tuple(sorted(holidays)))

    def named_calendar(self, name: str) -> Calendar:
        if name not in self._calendars:
            spec = json.dumps(dict(self.terms.calendars[name]), sort_keys=True)
            self._calendars[name] = _calendar(spec, self.time_zone, self.holidays)
        return self._calendars[name]

    def clock_terms(self, priority: str, category: str | None, clock: str) -> ClockTerms:
        """The calendar and target of one clock for a priority and category (cached)."""
        key = (priority, category, clock)
        if key not in self._clock_terms:
            name = self.terms.calendar_name_for(priority, clock)
            cal = self.named_calendar(name)
            found = self.terms.target_for(priority, category)
            target = found.response if clock == "response" else found.resolution
            if target is None:
                self._clock_terms[key] = ClockTerms(name, cal, None, None, None, None)
            else:
                time = business_time(target, cal)
                minutes = time / timedelta(minutes=1)
                self._clock_terms[key] = ClockTerms(name, cal, target, time, str(target), minutes)
        return self._clock_terms[key]

    def group_of(self, priority: str, category: str | None) -> str:
        """The key the plan's targets use for this ticket: its priority, or its category."""
        if self.terms.targets_by == "priority":
            return priority
        if category is not None and category in self.terms.targets:
            return category
        return self.terms.default_category or ""


@lru_cache(maxsize=1024)
def _rules(terms_json: str, time_zone: str, holidays: tuple[str, ...]) -> SlaRules:
    rules = SlaRules(PlanTerms.from_dict(json.loads(terms_json)), time_zone, holidays)
    for name in rules.terms.calendars:  # a bad zone or holiday fails here, not at evaluation
        rules.named_calendar(name)
    return rules


def business_time(target: Duration, calendar: Calendar) -> timedelta:
    """A target as business time on a calendar: its minutes plus N x the nominal day."""
    days = Fraction(calendar.nominal_day() // _MICRO) * Fraction(target.business_days)
    return timedelta(minutes=target.minutes) + round(days) * _MICRO


@dataclass(frozen=True)
class ClockResult:
    """One clock of one ticket, as of an instant."""

    clock: str
    # Whose target judges the clock: the current classification while it is on, the one in
    # force at its stop once it stopped (P1 for a lowered bpm premium P1's resolution).
    priority: str
    category: str | None
    group: str  # the plan's target key for them: the priority, or the category
    status: str
    due_at: datetime | None
    stopped_at: datetime | None
    stopped_by: str | None  # responded, resolved, cancelled or lowered
    elapsed: timedelta | None  # None when not asked for
    terms: ClockTerms = field(repr=False)
    segments: tuple[Span, ...] = ()  # the stretches the clock ran (an end of None: running)

    @property
    def on(self) -> bool:
        """Still counting or waiting (running, paused or breached): a breach may be noticed."""
        return self.terms.target is not None and self.stopped_at is None

    @property
    def target(self) -> Duration | None:
        return self.terms.target

    @property
    def target_time(self) -> timedelta | None:
        return self.terms.target_time

    @property
    def calendar(self) -> Calendar:
        return self.terms.calendar

    @property
    def calendar_name(self) -> str:
        return self.terms.calendar_name


@dataclass(frozen=True)
class SlaResult:
    """A ticket's SLA as of `as_of`."""

    priority: str
    category: str | None
    group: str
    as_of: datetime
    response: ClockResult
    resolution: ClockResult

    @property
    def clocks(self) -> tuple[ClockResult, ClockResult]:
        return self.response, self.resolution


def evaluate(rules: SlaRules, facts: TicketFacts, now: datetime, *, elapsed: bool = True) -> SlaResult:
    """The ticket's clocks as of `now` (never before the facts' latest instant).

    Due instants and stops do not depend on `now`; only statuses and elapsed times do. The
    business time elapsed costs calendar walks, so `elapsed=False` leaves it out (None).
    Interpretations (docs/design.md says them in brief; here in full):
    - A clock runs on the calendar the terms give its priority and clock ("P2.resolution", "P2",
      "default"), in the contract's zone plus its extra holidays; N business days are N times that
      calendar's nominal day. A target of 0 is due at the opening, or the next opening after it.
    - Reclassification is retroactive to the clocks still on (running or paused): the current
      priority's (and category's) target and calendar apply to them from the opening, the business
      time elapsed since then kept (never restarted); where the calendar changes with the priority,
      the elapsed time is recounted on the new calendar.
    - A clock that stopped is judged under the priority and category in force when it stopped (set
      by the classifications before its stop: one stamped with the very instant may have been
      recorded after it, and the facts keep no order within an instant) and keeps that target, due
      instant and verdict whatever later reclassifications say; the monthly report counts it under
      that priority (`ClockResult.priority`, `.group`). The response clock, once stopped, never restarts. The
      resolution clock restarts on a reopening: running again, it follows the current priority,
      from the opening, like any clock on, and is judged afresh when it stops again.
    - Response: from the opening to the first response; a resolution (or cancellation) before any
      response stops it too, since resolving answers the customer. It does not pause.
    - Resolution: business time over [opening, resolution) minus pauses, across reopenings: a
      reopening resumes the clock with the elapsed time kept, so the due instant is then
      add(reopened_at, target - elapsed so far) (future pauses are not guessed). A reopened ticket
      whose target was used up is breached at once. While paused before its due instant, a clock's
      due is unknown (None): it depends on when the wait ends.
    - `p1_downgrade_meets_resolution` (bpm premium): lowering a P1 to P3/P4 is its P1 resolution:
      the resolution clock stops at the first such lowering under P1's target (met if not after
      P1's due, missed if later), and, being stopped, keeps that verdict: a later raise, or a
      reopening, does not restart it. A response clock that stopped before the lowering keeps its
      P1 verdict; one still running then follows P3/P4 from the opening.
    - Cancellation stops both clocks: one already past due is `missed` (the breach happened),
      any other unstopped clock is `none` (a withdrawn request owes nothing more).
    - The due instant is the earliest at which the clock's business time reaches the target.
      Verdicts compare instants: `met` = stopped at or before due, `missed` = after it (so an
      answer at 21:00 to a question due at 20:00, when the desk closed, is missed although no
      business time passed); `breached` = on (running or paused) and now > due; `none` = no
      target.
    """
    now = max(now.astimezone(UTC), facts.last_at)
    priority, category = facts.priority, facts.category
    return SlaResult(
        priority, category, rules.group_of(priority, category), now,
        _response(rules, facts, now, elapsed), _resolution(rules, facts, now, elapsed),
    )


def _first(stops: list[tuple[datetime | None, str]]) -> tuple[datetime | None, str | None]:
    found = [(at, kind) for at, kind in stops if at is not None]
    return min(found, key=lambda s: s[0]) if found else (None, None)  # ties: the first listed


def _response(rules: SlaRules, facts: TicketFacts, now: datetime, elapsed: bool) -> ClockResult:
    stop, kind = _first([(facts.responded_at, "responded"), (facts.first_resolved_at, "resolved"),
                         (facts.cancelled_at, "cancelled")])
    segments = ((facts.opened_at, stop),)
    priority, category = facts.in_force(stop)  # stopped: judged as classified then
    return _clock(rules, "response", priority, category, segments, stop, kind, False, now, elapsed)


def lowering(rules: SlaRules, facts: TicketFacts) -> Classification | None:
    """The classification that first lowered a P1 to P3/P4, if the plan counts that as its P1
    resolution.

    The first lowering, whatever followed: it stopped the P1 resolution clock, and a stopped
    clock keeps its verdict, so raising the ticket again later does not undo it.
    """
    if not rules.terms.p1_downgrade_meets_resolution:
        return None
    previous = facts.initial_priority
    for c in facts.classifications:
        if previous == "P1" and c.priority in LOWERED:
            return c
        previous = c.priority
    return None


def _resolution(rules: SlaRules, facts: TicketFacts, now: datetime, elapsed: bool) -> ClockResult:
    found = lowering(rules, facts)
    lowered = None if found is None else found.at
    stop, kind = _first([(facts.resolved_at, "resolved"), (facts.cancelled_at, "cancelled"),
                         (lowered, "lowered")])
    reopened = [(s, e) for s, e in facts.resolutions if e is not None]
    gaps = sorted((*facts.pauses, *reopened), key=lambda g: g[0])
    segments, paused = _running(facts.opened_at, gaps, stop)
    # Stopped (a reopening undoes a resolution's stop, so this is the latest one): judged as
    # classified then; lowered: P1's, whose resolution the lowering is.
    priority, category = facts.in_force(stop)
    if lowered is not None:
        priority = "P1"
    return _clock(rules, "resolution", priority, category, segments, stop, kind, paused, now, elapsed)


def _running(start: datetime, gaps: list[Span], stop: datetime | None) -> tuple[tuple[Span, ...], bool]:
    """[start, stop) minus the gaps (sorted by start); True if it ends in an open gap (paused).

    Gaps may overlap (a pause and a resolution that begin at one instant): a gap that starts
    inside the previous one only extends it. A stop inside a gap leaves an empty last stretch
    at the stop, so the due instant in force when it stopped is counted from there.
    """
    found: list[Span] = []
    cursor = start
    for s, e in gaps:
        if stop is not None and s >= stop:
            break
        if s >= cursor:
            found.append((cursor, s))
        if e is None and stop is None:
            return tuple(found), True
        if e is None:
            assert stop is not None  # an open gap without a stop returned above
            cursor = stop
        else:
            cursor = max(cursor, e if stop is None else min(e, stop))
    found.append((cursor, stop))
    return tuple(found), False


def _clock(rules: SlaRules, clock: str, priority: str, category: str | None, segments: tuple[Span, ...],
           stop: datetime | None, kind: str | None, paused: bool, now: datetime,
           elapsed: bool) -> ClockResult:
    terms = rules.clock_terms(priority, category, clock)
    due, spent = _measure(terms.calendar, terms.target_time, segments, stop is not None, now, elapsed)
    status = _status(terms.target_time, due, stop, kind, paused, now)
    return ClockResult(clock, priority, category, rules.group_of(priority, category), status, due, stop,
                       kind, spent, terms, segments)


@lru_cache(maxsize=1 << 16)
def _add(cal: Calendar, start: datetime, left: timedelta) -> datetime:
    """`Calendar.add`, remembered: a ticket is re-evaluated on each of its events, mostly with
    the same stretches, so most due instants were worked out before."""
    return cal.add(start, left)


def _measure(cal: Calendar, target: timedelta | None, segments: tuple[Span, ...], stopped: bool,
             now: datetime, with_elapsed: bool) -> tuple[datetime | None, timedelta | None]:
    """The due instant (None while paused short of it) and the business time elapsed.

    The target is reached inside a stretch when adding what is left lands at or before its end
    (`add` is cheaper than `between`); stopped short of it, the due instant is the one in force
    at the stop: what is left added from the start of the last stretch.
    """
    elapsed, due, candidate = ZERO, None, None
    for n, (start, end) in enumerate(segments, start=1):
        if due is None and target is not None:
            left = target - elapsed
            candidate = _add(cal, start, left)
            if end is None or left == ZERO or candidate <= end:
                due = candidate
        if not with_elapsed and (due is not None or target is None or n == len(segments)):
            break
        elapsed += cal.between(start, end if end is not None else max(now, start))
    if due is None and stopped:
        due = candidate
    return due, elapsed if with_elapsed else None


def _status(target: timedelta | None, due: datetime | None, stop: datetime | None,
            kind: str | None, paused: bool, now: datetime) -> str:
    if target is None:
        return "none"
    if stop is not None:
        assert due is not None
        if kind == "cancelled":
            return "missed" if stop > due else "none"
        return "met" if stop <= due else "missed"
    if due is not None and now > due:
        return "breached"
    return "paused" if paused else "running"
