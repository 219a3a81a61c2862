"""Hypothesis strategies for the whole test suite, kept in one module (append new ones below).

Calendar strategies draw random weekly windows on a quarter-hour grid (split shifts, full
00:00-24:00 days, windows that straddle 02:00 and so meet DST changes), explicit and country
holidays, 24x7 calendars and the seed plans' calendars, in the zones the seeds use; instants
are whole-second UTC instants, spread over 2026 with extra weight on the DST-change weeks of
New York and Madrid (UTC, because same-zone aware datetimes compare and subtract by wall time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from domain.actors import BOOTSTRAP, OPEN, ROLES, SYSTEM, Actor
from domain.sla.calendar import Calendar

CALENDAR_ZONES = (
    "America/New_York",
    "Europe/Madrid",
    "Europe/Moscow",
    "America/Bogota",
    "America/Argentina/Buenos_Aires",
)
# The 2026 changes, as UTC instants: New York at 02:00 local, Madrid at 01:00 UTC.
DST_CHANGES = {
    "America/New_York": (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)),
    "Europe/Madrid": (datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)),
}
HOLIDAY_CALENDARS = ((None, None), ("CO", None), ("US", "NY"), ("ES", "MD"), ("RU", None))
_EPOCH = datetime(2025, 12, 1, tzinfo=UTC)
_SPAN_SECONDS = 400 * 86400

_WEEKDAYS_08_20 = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
_SPLIT_08_12_14_17 = {
    d: [["08:00", "12:00"], ["14:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
}
SEED_CALENDARS = (
    Calendar.from_spec({"windows": _WEEKDAYS_08_20}, "America/New_York"),
    Calendar.from_spec({"windows": _SPLIT_08_12_14_17, "holiday_country": "CO"}, "America/Bogota"),
    Calendar.from_spec({"always_open": True}, "Europe/Moscow"),
    Calendar.from_spec({"windows": _WEEKDAYS_08_20}, "America/Argentina/Buenos_Aires"),
)


def _quarter(n: int) -> time:
    """The n-th quarter hour of a day; 96 is 24:00, written time(0) like every window end."""
    return time(n // 4 % 24, n % 4 * 15)


def _pairs(points: list[int]) -> tuple[tuple[time, time], ...]:
    ordered = sorted(points)[: len(points) // 2 * 2]
    return tuple(
        (_quarter(a), _quarter(b)) for a, b in zip(ordered[::2], ordered[1::2], strict=True)
    )


def day_windows() -> st.SearchStrategy[tuple[tuple[time, time], ...]]:
    """One day's sorted, non-overlapping windows: none, a full day, or up to three shifts."""
    shifts = st.lists(st.integers(0, 96), unique=True, max_size=6).map(_pairs)
    return st.one_of(st.just(()), st.just(((time(0), time(0)),)), shifts)


def week_windows() -> st.SearchStrategy[tuple[tuple[tuple[time, time], ...], ...]]:
    """Seven days of windows, Monday first, open at least once a week."""
    return st.tuples(*[day_windows()] * 7).filter(any)


@st.composite
def random_calendars(draw: st.DrawFn, zones: tuple[str, ...] = CALENDAR_ZONES) -> Calendar:
    zone = draw(st.sampled_from(zones))
    if draw(st.integers(0, 9)) == 0:
        return Calendar(zone, always_open=True)
    country, subdiv = draw(st.sampled_from(HOLIDAY_CALENDARS))
    holidays = draw(st.frozensets(st.dates(date(2025, 12, 1), date(2027, 3, 1)), max_size=10))
    windows = draw(week_windows())
    return Calendar(zone, windows, holidays, holiday_country=country, holiday_subdiv=subdiv)


def calendars() -> st.SearchStrategy[Calendar]:
    return st.one_of(st.sampled_from(SEED_CALENDARS), random_calendars())


def near_dst(zone: str, days: int = 21) -> st.SearchStrategy[datetime]:
    """UTC instants within `days` of one of the zone's 2026 DST changes."""
    return st.builds(
        lambda change, s: change + timedelta(seconds=s),
        st.sampled_from(DST_CHANGES[zone]),
        st.integers(-days * 86400, days * 86400),
    )


def instants() -> st.SearchStrategy[datetime]:
    """Whole-second UTC instants, a third of them in the DST-change weeks."""
    anywhere = st.integers(0, _SPAN_SECONDS).map(lambda s: _EPOCH + timedelta(seconds=s))
    return st.one_of(near_dst("America/New_York", 4), near_dst("Europe/Madrid", 4), anywhere)


def zones() -> st.SearchStrategy[ZoneInfo]:
    """The calendar zones, to express instants in; aware datetimes in any zone are valid input."""
    return st.sampled_from(CALENDAR_ZONES).map(ZoneInfo)


@st.composite
def dst_scenarios(draw: st.DrawFn, count: int = 1) -> tuple[Calendar, list[datetime]]:
    """A New York or Madrid calendar and `count` sorted instants around one of its changes."""
    zone = draw(st.sampled_from(tuple(DST_CHANGES)))
    cal = draw(random_calendars(zones=(zone,)))
    return cal, sorted(draw(st.lists(near_dst(zone), min_size=count, max_size=count)))


def durations(min_seconds: int = 0) -> st.SearchStrategy[timedelta]:
    """Whole-second durations: mostly hours, sometimes weeks of business time."""
    short = st.integers(min_seconds, 12 * 3600)
    long = st.integers(min_seconds, 300 * 3600)
    return st.one_of(short, long).map(lambda s: timedelta(seconds=s))


# Event histories, as the projections read them.

HISTORY_PLANS = ("crm-experts/gold", "dolibarr/credits", "datacrm/standard", "bpm/premium")
_TICKET_VERBS = ("Classified", "Responded", "Paused", "Resumed", "Resolved", "Reopened", "Cancelled",
                 "Restored", "TimeConsumed", "TimeConsumed")
_CONTRACT_VERBS = ("CreditsAdded", "MaintenanceScheduled", "Renewed")


def _ticket_data(draw: st.DrawFn, verb: str, contract_id: str) -> dict[str, Any]:
    if verb == "Opened":
        return {"title": "down", "reporter": "ana", "channel": "portal", "contract_id": contract_id,
                "priority": draw(st.sampled_from([None, "P1", "P2", "P4"])),
                "category": draw(st.sampled_from([None, "system-down", "incident"])), "down_since": None}
    if verb == "Classified":
        return {"priority": draw(st.sampled_from(["P1", "P3"])),
                "category": draw(st.sampled_from([None, "system-down", "incident"]))}
    if verb == "TimeConsumed":
        return {"contract_id": contract_id, "minutes": draw(st.integers(1, 600)),
                "kind": draw(st.sampled_from(["query", "intervention", "update", "guidance", "work"])),
                "engineer": "eve"}
    return {"contract_id": contract_id, "reason": None}


def _contract_data(draw: st.DrawFn, verb: str, at: datetime, renewals: int) -> dict[str, Any]:
    if verb == "CreditsAdded":
        return {"credits": draw(st.integers(1, 3000))}
    if verb == "Renewed":
        return {"reason": None, "period_starts_on": f"{2027 + renewals}-01-01"}
    start = at + timedelta(hours=draw(st.integers(-48, 48)))
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(), "reason": None}


@st.composite
def contract_histories(draw: st.DrawFn, events: int = 40) -> list[Any]:
    """One contract's events in store order, with what every projection reads: its signing,
    credits, maintenance windows and renewals, and its tickets' lives interleaved (not always
    what the aggregates would accept: projections take what they are given)."""
    from infra.process.catalog import load_catalog
    from projections.envelope import Envelope

    plan = draw(st.sampled_from(HISTORY_PLANS))
    terms = load_catalog()[plan].to_dict()
    cid, at = f"c-{draw(st.integers(0, 10**6))}", datetime(2026, 3, 2, 9, tzinfo=UTC)
    envs = [Envelope(1, "Contract.Signed", cid, 1, cid, at, at, {
        "customer": "Acme", "plan_id": plan, "terms": terms, "starts_on": "2026-01-01",
        "time_zone": terms["time_zone"], "holidays": []})]
    tickets: list[str] = []
    for _ in range(draw(st.integers(1, events))):
        at += timedelta(minutes=draw(st.integers(0, 900)))
        aggregate, verb = cid, draw(st.sampled_from(_CONTRACT_VERBS))
        kind = draw(st.integers(0, 9))
        if kind < 2 or not tickets:
            tickets.append(aggregate := f"{cid}:t{len(tickets)}")
            verb, data = "Opened", _ticket_data(draw, "Opened", cid)
        elif kind < 9:
            aggregate, verb = draw(st.sampled_from(tickets)), draw(st.sampled_from(_TICKET_VERBS))
            data = _ticket_data(draw, verb, cid)
        else:
            renewals = sum(e.type == "Contract.Renewed" for e in envs)
            data = _contract_data(draw, verb, at, renewals)
        prefix = "Contract" if aggregate == cid else "Ticket"
        envs.append(Envelope(len(envs) + 1, f"{prefix}.{verb}", aggregate, 1, cid, at, at, data))
    return envs


def actors() -> st.SearchStrategy[Actor]:
    """Any actor an event may name: a token's holder (any id, any role) or one of the other kinds."""
    tokens = st.builds(Actor, st.just("token"), st.text(min_size=1, max_size=40), st.sampled_from(ROLES))
    return st.one_of(tokens, st.sampled_from((BOOTSTRAP, OPEN, SYSTEM)))
