"""Sending to Kafka and knowing what was taken, shared by the relay and the outbox publisher.

Flushing is no acknowledgement: each send's future says whether its message was taken, and
only the run of sends from the first that all succeeded counts. Waits are bounded, so that a
caller's heartbeat keeps beating while the broker is away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

# Bounded waits, so that a caller's heartbeat (fresh for 10 s, see GET /health) keeps beating
# while the broker is away. Idempotence keeps each partition's batches in order across the
# producer's own retries, so an acknowledged message never stands behind one that failed.
PRODUCER = {"acks": "all", "enable_idempotence": True, "linger_ms": 2, "max_block_ms": 4000,
            "request_timeout_ms": 4000, "delivery_timeout_ms": 8000, "reconnect_backoff_max_ms": 1000}


@dataclass(frozen=True)
class Backoff:
    """Exponential waits between attempts: `first` seconds, doubling, at most `cap`."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * 2 ** max(0, attempt - 1))


def acknowledged(futures: Sequence[Any]) -> tuple[int, str | None]:
    """How many of the sends, from the first, the broker acknowledged; and why the next did not go."""
    for index, future in enumerate(futures):
        if not future.succeeded():
            return index, repr(future.exception) if future.is_done else "not acknowledged in time"
    return len(futures), None


def flush(producer: KafkaProducer, timeout: float, between: Callable[[], None] = lambda: None) -> None:
    """Wait up to `timeout` for every send to complete, calling `between` about every second."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            producer.flush(timeout=1.0)
            return
        except KafkaTimeoutError:
            if time.monotonic() >= deadline:
                return  # the futures left undone count as not acknowledged
            between()


def close_quietly(producer: KafkaProducer | None) -> None:
    """Drop a producer at once: what it still holds was not acknowledged and is sent again."""
    with suppress(KafkaError):
        if producer is not None:
            producer.close(timeout=0)


