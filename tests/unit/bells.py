"""A doorbell for the relay's and the runner's logic tests."""

from __future__ import annotations


class RecordingBell:
    """A doorbell that never rings: it notes each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def close(self) -> None:
        pass
