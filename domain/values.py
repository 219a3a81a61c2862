"""Value vocabulary shared by the aggregates: priorities, categories, entry kinds, instants.

Events keep primitive fields only (strings, ints, lists), so these helpers turn the
caller's words into those primitives and refuse what is not in the vocabulary.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput

PRIORITIES = ("P1", "P2", "P3", "P4")
DEFAULT_PRIORITY = "P3"
CATEGORIES = ("system-down", "incident", "development", "improvement")
ENTRY_KINDS = ("query", "intervention", "update", "guidance", "work")
DEFAULT_CHANNEL = "portal"
# How far ahead of the server's clock an `at` may lie: client clocks drift a little.
FUTURE_SKEW = timedelta(seconds=5)


def priority(value: str) -> str:
    if value not in PRIORITIES:
        raise InvalidInput(f"unknown priority {value!r}", {"allowed": list(PRIORITIES)})
    return value


def category(value: str) -> str:
    if value not in CATEGORIES:
        raise InvalidInput(f"unknown category {value!r}", {"allowed": list(CATEGORIES)})
    return value


def entry_kind(value: str) -> str:
    if value not in ENTRY_KINDS:
        raise InvalidInput(f"unknown time entry kind {value!r}", {"allowed": list(ENTRY_KINDS)})
    return value


def positive_minutes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput("minutes must be a whole number above zero", {"minutes": value})
    return value


def instant(value: datetime | str) -> datetime:
    """An aware instant in UTC; refuses text without an offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"not an ISO-8601 instant: {value!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"instant without a UTC offset: {value.isoformat()}")
    return value.astimezone(timezone.utc)


def iso_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not an ISO-8601 date: {value!r}") from None


def effective_at(at: datetime | str | None, previous: datetime | None, now: datetime) -> datetime:
    """When a fact happened: `at` if given, else now; never before `previous`, never ahead."""
    when = now if at is None else instant(at)
    if when > now + FUTURE_SKEW:
        raise InvalidInput("`at` lies in the future", {"at": when.isoformat(), "now": now.isoformat()})
    if previous is not None and when < previous:
        raise InvalidInput(
            "`at` precedes the previous event of this aggregate",
            {"at": when.isoformat(), "previous": previous.isoformat()},
        )
    return when


def local_date(when: datetime, time_zone: str) -> date:
    """The calendar date of an instant in a zone."""
    return when.astimezone(ZoneInfo(time_zone)).date()
