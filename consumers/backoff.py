"""Exponential waits between attempts, shared by the relay, the outbox publisher and the runner."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential waits between attempts: `first` seconds, doubling, at most `cap`."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * 2.0 ** max(0, attempt - 1))
