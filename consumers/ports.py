"""The interfaces the consumers drive, declared as `typing.Protocol`s, so that their logic does
not depend on Kafka or PostgreSQL. What the runner and its batches need of a projection and of
the view it writes to (projections and views satisfy them structurally; the rules live in the
projections, the views only get and put rows and answer the indexed questions the projections
ask). What the relay and the outbox publisher need of the broker (`Publisher`,
infra/kafka/publisher.py), of their lease and position (`RelayLog`, infra/postgres/relay_log.py)
and of an outbox table (`OutboxRows`, infra/postgres/outbox.py): their logic is driven from
lists in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from projections.envelope import Envelope

Headers = list[tuple[str, bytes]]

# -- the broker, the relay's log, outboxes -------------------------------------------------------


class Message(NamedTuple):
    """One message for the broker; `partition` None lets the broker's partitioner choose."""

    key: bytes
    value: bytes
    headers: Headers
    partition: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How many messages, from the first, the broker acknowledged; and why the next was not."""

    acknowledged: int
    reason: str | None = None


class BrokerUnavailable(Exception):
    """The broker cannot take messages now (no connection, no metadata for the topic)."""


class Publisher(Protocol):
    """A Kafka-compatible broker, as publishers use it."""

    def partitions(self, topic: str) -> int:
        """How many partitions the topic has; BrokerUnavailable if the broker cannot say."""

    def publish(self, topic: str, messages: Sequence[Message], between: Callable[[], None]) -> Outcome:
        """Send in order and wait (calling `between` about every second) for acknowledgements;
        sending stops at the first message the broker refuses outright."""

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the partition still has a message at this offset."""

    def ensure_topic(self, topic: str, partitions: int) -> None:
        """Create the topic if it does not exist."""

    def reset(self) -> None:
        """Forget the connection: what was not acknowledged is sent again by the caller."""

    def close(self) -> None: ...


@dataclass
class RelayState:
    """The last store position acknowledged, how many messages were acknowledged in all, and
    per partition how many and the last store position it holds (what runners compare with)."""

    position: int = 0
    published: int = 0
    partitions: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Blocked:
    """The event the relay stays on, why, and how many attempts failed on it."""

    position: int
    reason: str
    attempts: int = 1
    broker: bool = True  # a broker-side failure: recreate the producer, check the topic again


class RelayLog(Protocol):
    """Where a relay holds its topic's lease and keeps its position (one writer per topic)."""

    def acquire(self, stop: Callable[[], bool]) -> bool:
        """Hold the lease, waiting as a standby; False only if stopped while waiting."""

    @property
    def held(self) -> bool: ...

    def load(self) -> tuple[RelayState, Blocked | None]: ...

    def store(self, state: RelayState, blocked: Blocked | None) -> None: ...

    def confirm(self) -> None:
        """Raise if the lease was lost (a round trip on the connection that holds it)."""

    def beat(self) -> None: ...

    def release(self) -> None:
        """Drop the connection, and the lease with it."""


class Notifications(Protocol):
    """The event store's notification log in its global order."""

    def select_notifications(self, start: int, limit: int) -> Sequence[Any]: ...


class OutboxRows(Protocol):
    """A projection's outbox table: notices decided, in the order they were written."""

    def pending(self, limit: int) -> list[tuple[int, str, str, str, bytes, dict[str, Any]]]:
        """(id, notice_id, topic, key, value, headers) of the oldest unpublished notices."""

    def mark(self, ids: list[int]) -> None: ...

    def close(self) -> None: ...


# -- projections and their views ---------------------------------------------------------------


class View(Protocol):
    """A read model's rows, bound to the open transaction of one batch (or one tick)."""

    def flush(self) -> int:
        """Write what the batch changed; how many of its changes were declined because the
        rows had already applied them (a view that applies at once declines none here)."""
        ...


class Projection(Protocol):
    """A read model's rules: what an event does to the view's rows, and what the passing of
    time does (`tick`, a no-op for a projection with nothing timed)."""

    name: str

    def apply(self, env: Envelope, view: Any) -> bool:
        """Apply one event; False if it changes nothing (unrelated, or already applied)."""
        ...

    def tick(self, now: datetime, view: Any) -> None:
        """Act on what became due by `now` (breaches, spent budgets)."""
        ...
