"""Business-time calendars: opening windows in a contract's time zone, and the clock math on them.

A `Calendar` is an IANA zone plus seven days of local windows (several a day for split shifts;
an end of 00:00 means 24:00) minus closed dates (explicit, or a country's public holidays from
the `holidays` package, cached per year), or plain 24x7. Each local date's windows become UTC
intervals, so every count is real elapsed time, exact across DST (a 00:00-24:00 window lasts
23 h or 25 h on change days). Wall times are read with zoneinfo: an ambiguous (repeated) time
is its first occurrence (fold=0); a skipped one maps forward to the instant of the change,
which keeps local-to-UTC monotonic (a window inside the gap is empty, one straddling it
shorter). `add` and `between` skip "plain" weeks (no closed date, one UTC offset)
arithmetically and walk day by day elsewhere. Pure: no I/O, no logging, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as public_holidays

from domain.periods import local_date, utc, zone

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEC_KEYS = frozenset({"always_open", "windows", "holidays", "holiday_country", "holiday_subdiv"})
MIDNIGHT = time(0)
ZERO = timedelta(0)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
_TICK = timedelta(microseconds=1)
_TIME_RE = re.compile(r"\d\d:\d\d(:\d\d)?")

Window = tuple[time, time]
Interval = tuple[datetime, datetime]
_Spent = tuple[datetime | None, timedelta]


@dataclass(frozen=True)
class Calendar:
    """Opening windows in a time zone, minus closed dates; or 24x7."""

    time_zone: str
    windows: tuple[tuple[Window, ...], ...] = ()
    holidays: frozenset[date] = frozenset()
    holiday_country: str | None = None
    holiday_subdiv: str | None = None
    always_open: bool = False

    def __post_init__(self) -> None:
        # Coercing lists and sets keeps the frozen value hashable (the day cache needs it).
        object.__setattr__(self, "windows", tuple(tuple(map(tuple, d)) for d in self.windows))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        zone(self.time_zone)
        _check_windows(self.windows)
        _check_country(self.holiday_country, self.holiday_subdiv)
        if self.always_open and self.windows:
            raise ValueError("an always_open calendar takes no windows")

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], time_zone: str, extra_holidays: Iterable[date | str] = ()
    ) -> Calendar:
        """Build from a JSON/TOML-shaped spec; raise ValueError saying what is wrong."""
        if not isinstance(spec, Mapping):
            raise _spec_error(f"calendar spec must be a mapping, got {type(spec).__name__}")
        if unknown := set(spec) - SPEC_KEYS:
            raise ValueError(f"unknown calendar keys {sorted(unknown)}; known: {sorted(SPEC_KEYS)}")
        always_open = spec.get("always_open", False)
        if not isinstance(always_open, bool):
            raise _spec_error(f"always_open must be true or false, got {always_open!r}")
        raw_dates = [*spec.get("holidays", ()), *extra_holidays]
        return cls(
            time_zone=time_zone,
            windows=_parse_week(spec["windows"]) if "windows" in spec else (),
            holidays=frozenset(_parse_date(d) for d in raw_dates),
            holiday_country=spec.get("holiday_country"),
            holiday_subdiv=spec.get("holiday_subdiv"),
            always_open=always_open,
        )

    def to_spec(self) -> dict[str, Any]:
        """The spec `from_spec` reads back into an equal calendar (given the same zone)."""
        spec: dict[str, Any] = {"always_open": True} if self.always_open else {}
        if self.windows:
            spec["windows"] = {
                key: [[_format(s), _format(e, end=True)] for s, e in day]
                for key, day in zip(DAY_KEYS, self.windows, strict=True)
                if day
            }
        if self.holidays:
            spec["holidays"] = [d.isoformat() for d in sorted(self.holidays)]
        country = {"holiday_country": self.holiday_country, "holiday_subdiv": self.holiday_subdiv}
        return spec | {key: value for key, value in country.items() if value is not None}

    def nominal_day(self) -> timedelta:
        """Length of a regular weekday: the largest Mon-Fri total (any day if Mon-Fri is shut)."""
        if self.always_open:
            return DAY
        totals = [_day_total(day) for day in self.windows]
        return max(totals[:5], default=ZERO) or max(totals, default=ZERO)

    def is_open(self, instant: datetime) -> bool:
        at = utc(instant, "instant")
        if self.always_open:
            return True
        return any(a <= at < b for a, b in _day_intervals(self, self._local_date(at)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """When `duration` of business time has elapsed from `start` (UTC)."""
        at = utc(start, "start")
        if duration < ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if self.always_open:
            return at + duration
        if not any(self.windows):
            raise ValueError("calendar has no opening windows: no business time ever elapses")
        day, left = self._local_date(at), duration
        while True:
            found, left = _consume(_day_intervals(self, day), at, left)
            if found is not None:
                return found
            day, left = self._skip_weeks(day + DAY, left)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); zero when end <= start."""
        lo, hi = utc(start, "start"), utc(end, "end")
        if hi <= lo:
            return ZERO
        if self.always_open:
            return hi - lo
        day = self._local_date(lo)
        total = _overlap(_day_intervals(self, day), lo, hi)
        day += DAY
        while self._midnight(day) < hi:
            if self._midnight(day + WEEK) <= hi and _plain_week(self, day):
                total, day = total + _week_total(self.windows), day + WEEK
            else:
                total, day = total + _overlap(_day_intervals(self, day), lo, hi), day + DAY
        return total

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The UTC stretches of coverage within [start, end), touching ones merged."""
        lo, hi = utc(start, "start"), utc(end, "end")
        if hi <= lo:
            return []
        if self.always_open:
            return [(lo, hi)]
        merged: list[Interval] = []
        day = self._local_date(lo)
        while self._midnight(day) < hi:
            for a, b in _day_intervals(self, day):
                a, b = max(a, lo), min(b, hi)
                if b <= a:
                    continue
                if merged and merged[-1][1] == a:
                    merged[-1] = (merged[-1][0], b)
                else:
                    merged.append((a, b))
            day += DAY
        return merged

    def _local_date(self, at: datetime) -> date:
        return local_date(at, self.time_zone)

    def _midnight(self, day: date) -> datetime:
        return _wall(day, MIDNIGHT, ZoneInfo(self.time_zone))

    def _skip_weeks(self, day: date, left: timedelta) -> tuple[date, timedelta]:
        # Strictly more than a week left: the target lies beyond the week, never at its end.
        week = _week_total(self.windows)
        while left > week and _plain_week(self, day):
            day, left = day + WEEK, left - week
        return day, left


def _consume(spans: Iterable[Interval], start: datetime, left: timedelta) -> _Spent:
    """Spend `left` over the intervals from `start` on: the instant it runs out, or what is left."""
    for a, b in spans:
        a = max(a, start)
        if b > a:
            if left <= b - a:
                return a + left, ZERO
            left -= b - a
    return None, left


def _overlap(intervals: Iterable[Interval], lo: datetime, hi: datetime) -> timedelta:
    return sum((max(ZERO, min(b, hi) - max(a, lo)) for a, b in intervals), ZERO)


@lru_cache(maxsize=1 << 14)
def _plain_week(cal: Calendar, day: date) -> bool:
    """No closed date and one UTC offset over the seven days from `day` 00:00."""
    # Comparing midnights assumes no zone changes its offset and back within one day.
    days = [day + i * DAY for i in range(8)]
    zone = ZoneInfo(cal.time_zone)
    offsets = {datetime.combine(d, MIDNIGHT, zone).utcoffset() for d in days}
    return len(offsets) == 1 and not any(_closed(cal, d) for d in days[:7])


@lru_cache(maxsize=1 << 16)
def _day_intervals(cal: Calendar, day: date) -> tuple[Interval, ...]:
    """A local date's open UTC intervals, in order; empty on closed dates."""
    if not cal.windows or _closed(cal, day):
        return ()
    zone = ZoneInfo(cal.time_zone)
    spans = [
        (_wall(day, s, zone), _wall(day, e, zone, end=True)) for s, e in cal.windows[day.weekday()]
    ]
    return tuple((a, b) for a, b in spans if b > a)


def _wall(day: date, t: time, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """The UTC instant of wall time `t` on `day` (an end at 00:00 is 24:00)."""
    return _wall_to_utc(datetime.combine(day + DAY if end and t == MIDNIGHT else day, t), zone)


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """First occurrence of an ambiguous wall time; a wall time in a gap maps to the gap's end."""
    found = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if found.astimezone(zone).replace(tzinfo=None) == wall.replace(fold=0):
        return found
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the change that skipped `wall`, found by bisection (gaps are rare)."""
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # read with the later offset
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # read with the earlier offset
    late_offset = after.astimezone(zone).utcoffset()
    while after - before > _TICK:
        mid = before + (after - before) // 2
        if mid.astimezone(zone).utcoffset() == late_offset:
            after = mid
        else:
            before = mid
    return after


def _closed(cal: Calendar, day: date) -> bool:
    if day in cal.holidays:
        return True
    country = cal.holiday_country
    return country is not None and day in _country_closed(country, cal.holiday_subdiv, day.year)


@lru_cache(maxsize=1024)
def _country_closed(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    return frozenset(public_holidays.country_holidays(country, subdiv=subdiv, years=year))


def _seconds(t: time, *, end: bool = False) -> int:
    return 86400 if end and t == MIDNIGHT else t.hour * 3600 + t.minute * 60 + t.second


def _day_total(day: tuple[Window, ...]) -> timedelta:
    return timedelta(seconds=sum(_seconds(e, end=True) - _seconds(s) for s, e in day))


@lru_cache(maxsize=1024)
def _week_total(windows: tuple[tuple[Window, ...], ...]) -> timedelta:
    return sum((_day_total(day) for day in windows), ZERO)


def _check_windows(windows: tuple[tuple[Window, ...], ...]) -> None:
    if len(windows) not in (0, 7):
        raise ValueError(f"windows needs 7 days (Monday first) or none, got {len(windows)}")
    for key, day in zip(DAY_KEYS, windows, strict=False):
        previous_end = 0
        for window in day:
            if len(window) != 2 or not all(isinstance(t, time) for t in window):
                raise ValueError(f"{key}: a window is a (start, end) pair of times: {window!r}")
            if any(t.tzinfo is not None or t.microsecond for t in window):
                raise ValueError(f"{key}: windows are whole-second wall times: {window!r}")
            start, end = _seconds(window[0]), _seconds(window[1], end=True)
            if start >= end:
                raise ValueError(f"{key}: window {_text(window)} must start before it ends")
            if start < previous_end:
                raise ValueError(f"{key}: window {_text(window)} overlaps or is out of order")
            previous_end = end


def _check_country(country: str | None, subdiv: str | None) -> None:
    if country is None and subdiv is not None:
        raise ValueError("holiday_subdiv needs a holiday_country")
    try:
        if country is not None:
            public_holidays.country_holidays(country, subdiv=subdiv, years=())
    except NotImplementedError as error:
        raise ValueError(f"unsupported holiday calendar {country!r}/{subdiv!r}: {error}") from None


def _parse_week(raw: Any) -> tuple[tuple[Window, ...], ...]:
    if not isinstance(raw, Mapping):
        raise _spec_error(f"windows must map day keys {', '.join(DAY_KEYS)} to [start, end] lists")
    if unknown := set(raw) - set(DAY_KEYS):
        raise ValueError(f"unknown day keys {sorted(unknown)}: use {', '.join(DAY_KEYS)}")
    return tuple(tuple(sorted(_parse_window(key, w) for w in raw.get(key, ()))) for key in DAY_KEYS)


def _parse_window(key: str, raw: Any) -> Window:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ValueError(f"{key}: a window is [start, end], got {raw!r}")
    return _parse_time(key, raw[0], end=False), _parse_time(key, raw[1], end=True)


def _parse_time(key: str, raw: Any, *, end: bool) -> time:
    if isinstance(raw, time):
        return raw
    if end and raw == "24:00":
        return MIDNIGHT
    try:
        if isinstance(raw, str) and _TIME_RE.fullmatch(raw):
            return time.fromisoformat(raw)
    except ValueError:
        pass
    raise ValueError(f"{key}: bad time {raw!r}, expected HH:MM or HH:MM:SS (24:00 as an end)")


def _parse_date(raw: Any) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise ValueError(f"bad holiday {raw!r}: expected a YYYY-MM-DD date") from None


def _spec_error(message: str) -> ValueError:
    # A spec is data from a file or a request: a wrongly typed value is bad input, not a bug.
    return ValueError(message)


def _format(t: time, *, end: bool = False) -> str:
    if end and t == MIDNIGHT:
        return "24:00"
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _text(window: Window) -> str:
    return f"{_format(window[0])}-{_format(window[1], end=True)}"
