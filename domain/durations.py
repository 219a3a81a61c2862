"""Targets and their durations as plans write them: "30m", "2h", "1.5h", "2bd", "1bd 30m".

Minutes and hours count time inside a calendar's opening windows; a business day ("bd") is
the calendar's nominal day length (the opening time of a regular weekday), so the same
"1bd" is 12 h on a 08-20 calendar and 7 h on a split 08-12 + 14-17 one. Turning business
days into minutes is the calendar's job, which is why a Duration keeps the two apart. A
`Target` pairs the response and resolution durations of one priority or category.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from domain.values import CLOCKS

__all__ = ["NO_TARGET", "Duration", "Target"]

_TERM = re.compile(r"(\d+(?:\.\d+)?|\d+/[1-9]\d*)(m|h|bd)")
_UNIT_MINUTES = {"m": 1, "h": 60}


def _number(text: str) -> Fraction:
    # Fraction parses "1.5" and "1/3" exactly, where float would round.
    return Fraction(text)


def _plain(value: Fraction) -> Fraction | int:
    return value.numerator if value.denominator == 1 else value


def _format_days(days: Fraction | int) -> str:
    """Decimal when the value has a short one ("1.5"), else a ratio ("1/3") that parses back."""
    value = Fraction(days)
    for places in range(7):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, digits = divmod(scaled.numerator, 10**places)
            return f"{whole}.{digits:0{places}d}" if places else str(whole)
    return f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True)
class Duration:
    """A target length: business-time minutes plus a number of business days."""

    minutes: int = 0
    business_days: Fraction | int = 0

    def __post_init__(self) -> None:
        if isinstance(self.minutes, bool) or not isinstance(self.minutes, int) or self.minutes < 0:
            raise ValueError(f"minutes must be a whole number >= 0, got {self.minutes!r}")
        days = self.business_days
        if isinstance(days, bool) or not isinstance(days, (int, Fraction)) or days < 0:
            raise ValueError(f"business_days must be an int or Fraction >= 0, got {days!r}")
        # One representation per value, so equal durations print and hash alike.
        object.__setattr__(self, "business_days", _plain(Fraction(days)))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """ "30m", "2h", "1.5h", "2bd", "1bd 30m"; ValueError on anything else."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"not a duration: {text!r} (expected e.g. '30m', '2h', '1.5h', '2bd')")
        minutes, days, seen = Fraction(0), Fraction(0), set()
        for term in text.split():
            match = _TERM.fullmatch(term)
            if match is None or match.group(2) in seen:
                raise ValueError(
                    f"not a duration: {text!r} (expected e.g. '30m', '2h', '1.5h', '2bd')"
                )
            number, unit = _number(match.group(1)), match.group(2)
            seen.add(unit)
            if unit == "bd":
                days += number
            else:
                minutes += number * _UNIT_MINUTES[unit]
        if minutes.denominator != 1:
            raise ValueError(f"duration {text!r} is not a whole number of minutes")
        return cls(int(minutes), _plain(days))

    def __str__(self) -> str:
        parts = []
        if self.business_days:
            parts.append(f"{_format_days(self.business_days)}bd")
        if self.minutes or not parts:
            hours, rest = divmod(self.minutes, 60)
            parts.append(f"{hours}h" if hours and not rest else f"{self.minutes}m")
        return " ".join(parts)


@dataclass(frozen=True)
class Target:
    """Response and resolution durations; None where the plan sets no target."""

    response: Duration | None = None
    resolution: Duration | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "target") -> Target:
        """From {"response": "4h", "resolution": "1bd"}; a missing or null clock has no target."""
        if not isinstance(data, Mapping) or not set(data) <= set(CLOCKS):
            raise ValueError(f"{what}: expected a table with only {CLOCKS}, got {data!r}")
        try:
            return cls(*(None if data.get(c) is None else Duration.parse(data[c]) for c in CLOCKS))
        except ValueError as error:
            raise ValueError(f"{what}: {error}") from None

    def to_dict(self) -> dict[str, str | None]:
        durations = (self.response, self.resolution)
        return {c: None if d is None else str(d) for c, d in zip(CLOCKS, durations, strict=True)}


NO_TARGET = Target()
