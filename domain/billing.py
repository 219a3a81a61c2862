"""Charge rules and accounting periods for banks, credits and periodic allowances.

Pure functions only (stdlib and ``zoneinfo``): what a time entry costs on a credit plan
(``dolibarr/credits``: minimums, 15-credit rounding blocks, flat update charges), what it
debits from an hour bank (exact minutes), which 12-month bank period a date falls in
(anniversaries of the contract start, month ends clamped like ``dateutil.relativedelta``),
and which calendar quarter, month or year an instant falls in for a periodic allowance
(``datacrm``: 2 h of guidance per quarter, never carried over), in the contract's zone.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = [
    "DOLIBARR_RULES",
    "ChargeRule",
    "add_months",
    "allowance_period",
    "bank_period",
    "credit_charge",
    "hour_bank_charge",
    "split_allowance",
]


@dataclass(frozen=True)
class ChargeRule:
    """How one entry kind on a credit plan is charged, in credits (1 credit = 1 minute)."""

    minimum: int
    block: int
    flat: int | None = None

    def __post_init__(self) -> None:
        if self.minimum < 0:
            raise ValueError(f"minimum must be >= 0, got {self.minimum}")
        if self.block <= 0:
            raise ValueError(f"block must be > 0, got {self.block}")
        if self.flat is not None and self.flat < 0:
            raise ValueError(f"flat must be >= 0, got {self.flat}")


# The interpretation of the 2byte page; the plan catalog states the same defaults.
DOLIBARR_RULES: Mapping[str, ChargeRule] = MappingProxyType(
    {
        "query": ChargeRule(minimum=15, block=15),
        "intervention": ChargeRule(minimum=45, block=15),
        "update": ChargeRule(minimum=120, block=15, flat=120),
    }
)

_PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _require_positive_minutes(minutes: int) -> None:
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")


def credit_charge(rule: ChargeRule, minutes: int) -> int:
    """Credits for an entry of ``minutes``: the flat charge, else max(minimum, whole blocks)."""
    _require_positive_minutes(minutes)
    if rule.flat is not None:
        return rule.flat
    blocks = -(-minutes // rule.block)  # ceil without floats
    return max(rule.minimum, blocks * rule.block)


def hour_bank_charge(minutes: int) -> int:
    """Minutes debited from an hour bank: exactly the minutes worked."""
    _require_positive_minutes(minutes)
    return minutes


def add_months(d: date, months: int) -> date:
    """``d`` moved by ``months`` (may be negative), the day clamped to the month's last day."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last_day))


def bank_period(
    starts_on: date, instant_local_date: date, period_months: int = 12
) -> tuple[date, date, int]:
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


def _local_midnight(year: int, month: int, zone: ZoneInfo) -> datetime:
    # fold=0 on a midnight that falls in a DST gap maps to the transition instant itself.
    return datetime(year, month, 1, tzinfo=zone)


def _period_label(year: int, first_month: int, period: str) -> str:
    if period == "year":
        return f"{year:04d}"
    if period == "quarter":
        return f"{year:04d}-Q{(first_month - 1) // 3 + 1}"
    return f"{year:04d}-{first_month:02d}"


def allowance_period(
    instant: datetime, time_zone: str, period: str
) -> tuple[datetime, datetime, str]:
    """The calendar ``period`` ("quarter", "month" or "year") holding ``instant`` locally.

    Returns the aware ``[start, end)`` in the contract's zone and a label such as
    "2026-Q4", "2026-11" or "2026".
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    if period not in _PERIOD_MONTHS:
        raise ValueError(f"period must be one of {sorted(_PERIOD_MONTHS)}, got {period!r}")
    zone = ZoneInfo(time_zone)
    local = instant.astimezone(zone)
    length = _PERIOD_MONTHS[period]
    first_month = (local.month - 1) // length * length + 1
    start_date = date(local.year, first_month, 1)
    end_date = add_months(start_date, length)
    start = _local_midnight(start_date.year, start_date.month, zone)
    end = _local_midnight(end_date.year, end_date.month, zone)
    return start, end, _period_label(local.year, first_month, period)


def split_allowance(used_before: int, minutes: int, allowance: int) -> tuple[int, int]:
    """``(covered, billable)`` for a new entry when ``used_before`` of the allowance is used.

    Only this period's allowance counts: nothing carries over, so callers pass the minutes
    already used inside the same period.
    """
    if used_before < 0 or minutes < 0 or allowance < 0:
        raise ValueError("used_before, minutes and allowance must be >= 0")
    left = max(0, allowance - used_before)
    covered = min(minutes, left)
    return covered, minutes - covered
