"""The domain's vocabulary, defined once: priorities (and the default one), SLA clocks,
categories, entry kinds, channels, and the bounds on what a command may carry.

Events keep primitive fields only (strings, ints, lists), so these helpers turn the
caller's words into those primitives and refuse what is not in the vocabulary. Everything
else that names a priority, a clock or a default imports it from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from domain.errors import InvalidInput

Priority = Literal["P1", "P2", "P3", "P4"]
Category = Literal["system-down", "incident", "development", "improvement"]
EntryKind = Literal["query", "intervention", "update", "guidance", "work"]
SlaClock = Literal["response", "resolution"]  # the two SLA clocks of a ticket

PRIORITIES: tuple[Priority, ...] = get_args(Priority)
DEFAULT_PRIORITY: Priority = "P3"  # a ticket nobody classified yet, nor its reporter
CLOCKS: tuple[SlaClock, ...] = get_args(SlaClock)
CATEGORIES: tuple[Category, ...] = get_args(Category)
ENTRY_KINDS: tuple[EntryKind, ...] = get_args(EntryKind)
DEFAULT_CHANNEL = "portal"
EXPORT_FORMATS = ("jsonl", "avro", "mysql")  # a contract's export files (docs/audit.md)
# How far ahead of the server's clock an `at` may lie: client clocks drift a little.
FUTURE_SKEW = timedelta(seconds=5)

# Bounds on what a command may carry (docs/design.md, Bounds). They keep every recorded event
# publishable (Avro ints and longs, the broker's message size) and every date computable.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
SCHEDULE_AHEAD = timedelta(days=731)  # maintenance may be announced up to two years ahead
MAX_MINUTES = 43_200  # 30 days of work in one entry
MAX_CREDITS = 1_000_000
MAX_TITLE = 500
MAX_REASON = 2_000
MAX_NAME = 200  # customer, reporter, engineer, token name
MAX_HOLIDAYS = 400


def priority(value: str) -> Priority:
    if value not in PRIORITIES:
        raise InvalidInput(f"unknown priority {value!r}", {"allowed": list(PRIORITIES)})
    return value


def category(value: str) -> Category:
    if value not in CATEGORIES:
        raise InvalidInput(f"unknown category {value!r}", {"allowed": list(CATEGORIES)})
    return value


def entry_kind(value: str) -> EntryKind:
    if value not in ENTRY_KINDS:
        raise InvalidInput(f"unknown time entry kind {value!r}", {"allowed": list(ENTRY_KINDS)})
    return value


def whole(name: str, value: int, highest: int) -> int:
    """A whole number from 1 to `highest`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise InvalidInput(f"{name} must be a whole number from 1 to {highest}", {name: value})
    return value


def positive_minutes(value: int) -> int:
    return whole("minutes", value, MAX_MINUTES)


def text(name: str, value: str | None, longest: int, required: bool = False) -> str | None:
    """Free text within its length bound; a required one must not be blank."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{name} must not be empty")
    if len(value) > longest:
        raise InvalidInput(f"{name} is longer than {longest} characters", {"length": len(value)})
    if "\x00" in value:  # no text store (PostgreSQL among them) keeps a NUL character
        raise InvalidInput(f"{name} must not contain a NUL character")
    return value


def instant(value: datetime | str, latest: datetime | None = None) -> datetime:
    """An aware instant in UTC, not before 2000 (nor after `latest`); refuses text without an offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"not an ISO-8601 instant: {value!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"instant without a UTC offset: {value.isoformat()}")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"instant out of range: {value.isoformat()}") from None
    if value < EARLIEST:
        raise InvalidInput("instants before 2000-01-01 are not accepted", {"instant": value.isoformat()})
    if latest is not None and value > latest:
        raise InvalidInput("instant too far in the future", {"instant": value.isoformat(), "latest": latest.isoformat()})
    return value


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

