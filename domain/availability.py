"""Downtime interval arithmetic and monthly availability, as pure functions.

Intervals are half-open ``[start, end)`` pairs of timezone-aware datetimes. Every result is
normalised to UTC: Python subtracts two datetimes that share a ``ZoneInfo`` by wall clock,
which would miscount an hour across a DST change, whereas UTC arithmetic is exact. Months
are calendar months of the contract's IANA zone, so a March in Madrid is an hour shorter.
Availability follows docs/design.md: outages merged (never counted twice), clipped to
the month, planned maintenance excluded, ``100 * (1 - downtime / minutes_in_month)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "Interval",
    "MonthlyAvailability",
    "intersect",
    "merge",
    "minutes_in_month",
    "month_bounds",
    "monthly_availability",
    "split_by_month",
    "subtract",
    "total_seconds",
]

Interval = tuple[datetime, datetime]

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _normalised(interval: Interval) -> Interval:
    start, end = interval
    for moment in (start, end):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"interval bounds must be timezone-aware: {interval!r}")
    if end < start:
        raise ValueError(f"interval ends before it starts: {interval!r}")
    return start.astimezone(UTC), end.astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted UTC intervals with overlapping and touching ones merged and empty ones dropped."""
    ordered = sorted(_normalised(i) for i in intervals)
    merged: list[Interval] = []
    for start, end in ordered:
        if start == end:
            continue
        if merged and start <= merged[-1][1]:
            last_start, last_end = merged[-1]
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """The parts of ``intervals`` outside the union of ``removed`` (e.g. planned maintenance)."""
    cuts = merge(removed)
    result: list[Interval] = []
    for start, end in merge(intervals):
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                result.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            result.append((start, end))
    return result


def intersect(intervals: Iterable[Interval], other: Iterable[Interval]) -> list[Interval]:
    """The parts common to both unions."""
    left, right = merge(intervals), merge(other)
    result: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return result


def total_seconds(intervals: Iterable[Interval]) -> float:
    """Seconds covered by the union of ``intervals`` (overlaps counted once)."""
    return sum(((end - start).total_seconds() for start, end in merge(intervals)), 0.0)


def _parse_month(month: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ValueError(f"month must look like 'YYYY-MM', got {month!r}")
    return int(match.group(1)), int(match.group(2))


def _month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_bounds(month: str, time_zone: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of the calendar month "YYYY-MM" in ``time_zone``."""
    year, number = _parse_month(month)
    zone = ZoneInfo(time_zone)
    next_year, next_number = _next_month(year, number)
    # fold=0 on a midnight inside a DST gap maps to the transition instant itself.
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(next_year, next_number, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _local_months(interval: Interval, zone: ZoneInfo) -> Iterable[str]:
    start, end = interval
    first = start.astimezone(zone)
    # The end is exclusive: the last month touched is the one holding the last microsecond.
    last = (end - timedelta(microseconds=1)).astimezone(zone)
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield _month_key(year, month)
        year, month = _next_month(year, month)


def split_by_month(intervals: Iterable[Interval], time_zone: str) -> dict[str, list[Interval]]:
    """The merged intervals cut at local month boundaries, keyed "YYYY-MM" in date order."""
    zone = ZoneInfo(time_zone)
    parts: dict[str, list[Interval]] = {}
    for interval in merge(intervals):
        for key in _local_months(interval, zone):
            month_start, month_end = month_bounds(key, time_zone)
            start, end = max(interval[0], month_start), min(interval[1], month_end)
            if start < end:
                parts.setdefault(key, []).append((start, end))
    return parts


def minutes_in_month(month: str, time_zone: str) -> float:
    """Real elapsed minutes of the local month (a DST month is an hour shorter or longer)."""
    start, end = month_bounds(month, time_zone)
    return (end - start).total_seconds() / 60


@dataclass(frozen=True)
class MonthlyAvailability:
    """One month's availability figures for a contract; the target fields are None without one."""

    month: str
    minutes_in_month: float
    downtime_minutes: float
    maintenance_minutes: float
    availability_pct: float
    target_pct: float | None
    met: bool | None
    allowed_downtime_minutes: float | None
    budget_left_minutes: float | None


def _target_figures(
    length: float, downtime: float, availability: float, target_pct: float | None
) -> tuple[bool | None, float | None, float | None]:
    """``(met, allowed, budget_left)``, all None when the plan sets no target."""
    if target_pct is None:
        return None, None, None
    # Rounded like the percentage, so 99.96 % of 43,200 minutes reads 17.28, not 17.2799...
    allowed = round(length * (100 - target_pct) / 100, 4)
    return availability >= target_pct, allowed, round(allowed - downtime, 4)


def monthly_availability(
    month: str,
    time_zone: str,
    outages: Iterable[Interval],
    maintenance: Iterable[Interval],
    target_pct: float | None,
) -> MonthlyAvailability:
    """Availability of ``month``: merged outages inside the month, minus planned maintenance.

    ``budget_left_minutes`` goes negative once the allowed downtime is overspent, so the
    overrun stays visible rather than being clamped to zero.
    """
    if target_pct is not None and not 0 <= target_pct <= 100:
        raise ValueError(f"target_pct must be within 0..100, got {target_pct}")
    bounds = month_bounds(month, time_zone)
    in_month = intersect(outages, [bounds])
    windows = list(maintenance)
    downtime = total_seconds(subtract(in_month, windows)) / 60
    excluded = total_seconds(intersect(in_month, windows)) / 60
    length = minutes_in_month(month, time_zone)
    availability = round(100 * (1 - downtime / length), 4)
    met, allowed, left = _target_figures(length, downtime, availability, target_pct)
    return MonthlyAvailability(
        month=month,
        minutes_in_month=length,
        downtime_minutes=downtime,
        maintenance_minutes=excluded,
        availability_pct=availability,
        target_pct=target_pct,
        met=met,
        allowed_downtime_minutes=allowed,
        budget_left_minutes=left,
    )
