"""Wall clocks: the one way the backend learns what time it is (the SLA's response and
resolution clocks are another thing, in domain/sla/clock.py).

Commands carry `at` when the caller knows when a fact happened; otherwise the application
asks its clock. Every process of the backend takes its clock from its settings, so a shifted
clock (`TICKETING_CLOCK_OFFSET`, in seconds) reaches every part that decides something: the
API, the runners' ticks and the renewals. Tests inject a fixed or shifted clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current instant, timezone-aware, in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The server's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """The server's clock moved by a fixed offset: it runs at the real pace from another instant."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock:
    """A clock that stands still until moved; for tests and replays."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta
