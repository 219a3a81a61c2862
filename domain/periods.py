"""Time in a contract's zone, computed in one place: zones, UTC instants, local days and
midnights, calendar months ("2026-03"), allowance periods ("2026-Q1", "2026-03", "2026") and
the anniversary periods of an hour bank.

A contract's months, quarters and years are those of its IANA zone, so their bounds are local
midnights: a March in Madrid is an hour shorter than 31 days. A local midnight that falls in
a DST gap is built with fold=0, which maps it to the transition instant itself. Bank periods
count whole months from the contract's start, clamped to the month's last day like
``dateutil.relativedelta`` (a Jan 31 start renews on the 31st whenever the month has one).
Pure functions only (stdlib and ``zoneinfo``).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidInput

__all__ = [
    "PERIODS",
    "add_months",
    "allowance_period",
    "allowance_start",
    "bank_period",
    "from_iso",
    "local_date",
    "local_midnight",
    "month_bounds",
    "month_of",
    "month_window",
    "months_between",
    "months_touched",
    "next_period_start",
    "parse_month",
    "utc",
    "utc_or_none",
    "zone",
]

PERIODS = ("quarter", "month", "year")  # the calendar periods an allowance may run over
_PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_LABELS = {"quarter": r"(\d{4})-Q([1-4])", "month": r"(\d{4})-(\d{2})", "year": r"(\d{4})"}
_MONTH = re.compile(_LABELS["month"])
MAX_ZONE_NAME = 64


# -- zones and instants ---------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; ValueError on any other text (the one zone validator)."""
    if not isinstance(name, str):
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name")
    if len(name) > MAX_ZONE_NAME:
        raise ValueError(f"time zone name longer than {MAX_ZONE_NAME} characters")
    return _zone(name)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name") from None


def utc(value: datetime, name: str = "instant") -> datetime:
    """An aware instant in UTC; ValueError on a naive one (it names no instant)."""
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    """`utc` for a value that may be missing (an open end, a nullable column)."""
    return None if value is None else utc(value)


def from_iso(text: str) -> datetime:
    """An ISO-8601 instant with offset, as events store them, in UTC."""
    return utc(datetime.fromisoformat(text))


def local_date(when: datetime, time_zone: str) -> date:
    """The calendar date of an instant in a zone."""
    return when.astimezone(zone(time_zone)).date()


def local_midnight(day: str | date, time_zone: str) -> datetime:
    """The first instant of a local day, as an aware datetime of the zone."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, tzinfo=zone(time_zone))


# -- months ---------------------------------------------------------------------------------


def parse_month(month: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM"; ValueError on anything else."""
    match = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ValueError(f"month must look like 'YYYY-MM', got {month!r}")
    return int(match.group(1)), int(match.group(2))


def _month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_of(instant: datetime, time_zone: str) -> str:
    """The local month "YYYY-MM" holding an instant."""
    local = instant.astimezone(zone(time_zone))
    return _month_key(local.year, local.month)


def month_bounds(month: str, time_zone: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of the calendar month "YYYY-MM" in ``time_zone``."""
    year, number = parse_month(month)
    tz = zone(time_zone)
    next_year, next_number = _next_month(year, number)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(next_year, next_number, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def months_between(since: datetime, until: datetime, time_zone: str) -> list[str]:
    """The local months "YYYY-MM" from the one holding `since` to the one holding `until`."""
    tz = zone(time_zone)
    first, last = since.astimezone(tz), until.astimezone(tz)
    year, month, months = first.year, first.month, []
    while (year, month) <= (last.year, last.month):
        months.append(_month_key(year, month))
        year, month = _next_month(year, month)
    return months


def months_touched(start: datetime, end: datetime, time_zone: str) -> list[str]:
    """The local months a half-open ``[start, end)`` interval touches (the end is exclusive:
    the last month is the one holding its last microsecond)."""
    return months_between(start, end - timedelta(microseconds=1), time_zone)


def month_window(month: str | None, time_zone: str, now: datetime) -> tuple[str, datetime, datetime]:
    """The asked month ("YYYY-MM", default: the one holding `now` in the zone) and its UTC
    bounds; a malformed month is the caller's mistake (InvalidInput)."""
    month = month or month_of(now, time_zone)
    try:
        start, end = month_bounds(month, time_zone)
    except ValueError as error:
        raise InvalidInput(str(error), {"month": month}) from None
    return month, start, end


# -- allowance periods ----------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    """``d`` moved by ``months`` (may be negative), the day clamped to the month's last day."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last_day))


def _period_label(year: int, first_month: int, period: str) -> str:
    if period == "year":
        return f"{year:04d}"
    if period == "quarter":
        return f"{year:04d}-Q{(first_month - 1) // 3 + 1}"
    return _month_key(year, first_month)


def allowance_period(instant: datetime, time_zone: str, period: str) -> tuple[datetime, datetime, str]:
    """The calendar ``period`` ("quarter", "month" or "year") holding ``instant`` locally.

    Returns the aware ``[start, end)`` in the contract's zone and a label such as
    "2026-Q4", "2026-11" or "2026".
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    if period not in _PERIOD_MONTHS:
        raise ValueError(f"period must be one of {sorted(_PERIOD_MONTHS)}, got {period!r}")
    local = instant.astimezone(zone(time_zone))
    length = _PERIOD_MONTHS[period]
    first_month = (local.month - 1) // length * length + 1
    start_date = date(local.year, first_month, 1)
    end_date = add_months(start_date, length)
    start, end = local_midnight(start_date, time_zone), local_midnight(end_date, time_zone)
    return start, end, _period_label(local.year, first_month, period)


def allowance_start(label: str, period: str, time_zone: str) -> datetime | None:
    """The first instant of an allowance period named like "2026-Q1", or None if malformed."""
    found = re.fullmatch(_LABELS[period], label)
    if not found:
        return None
    year, part = int(found[1]), int(found[2]) if found.lastindex == 2 else 1
    month = (part - 1) * 3 + 1 if period == "quarter" else part
    if not 1 <= month <= 12:
        return None
    return local_midnight(date(year, month, 1), time_zone)


# -- hour-bank periods ----------------------------------------------------------------------


def bank_period(starts_on: date, instant_local_date: date, period_months: int = 12) -> tuple[date, date, int]:
    """The ``[start, end)`` dates and 0-based index of the contract period holding the date.

    Every boundary is computed from ``starts_on`` itself (not from the previous boundary), so
    a contract starting on Jan 31 renews on the 31st whenever the month has one.
    """
    if period_months <= 0:
        raise ValueError(f"period_months must be > 0, got {period_months}")
    if instant_local_date < starts_on:
        raise ValueError(f"{instant_local_date} precedes the contract start {starts_on}")
    elapsed = (instant_local_date.year - starts_on.year) * 12
    elapsed += instant_local_date.month - starts_on.month
    index = max(0, elapsed // period_months)
    # The month estimate can be one period too far when the day has not come round yet.
    while add_months(starts_on, index * period_months) > instant_local_date:
        index -= 1
    while add_months(starts_on, (index + 1) * period_months) <= instant_local_date:
        index += 1
    start = add_months(starts_on, index * period_months)
    end = add_months(starts_on, (index + 1) * period_months)
    return start, end, index


def next_period_start(starts_on: date, current: date, months: int) -> date:
    """When a bank period that began on `current` ends: on the contract's anniversary (counted
    from `starts_on`, so a Jan 31 start keeps the 31st), or `months` after a period that a
    renewal started off the anniversaries."""
    start, end, _ = bank_period(starts_on, current, months)
    return end if start == current else add_months(current, months)
