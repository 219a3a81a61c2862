"""The interfaces the consumers drive, declared as `typing.Protocol`s, so that their logic does
not depend on Kafka or PostgreSQL. What the runner and its batches need of a projection and of
the view it writes to (projections and views satisfy them structurally; the rules live in the
projections, the views only get and put rows and answer the indexed questions the projections
ask). What the relay and the outbox publisher need of the broker (`Publisher`,
infra/kafka/publisher.py), of their lease and position (`RelayLog`, infra/postgres/relay_log.py)
and of an outbox table (`OutboxRows`, infra/postgres/outbox.py): their logic is driven from
lists in unit tests. What the projection runner needs of the events topic (`MessageSource`,
infra/kafka/source.py) and of its bookkeeping in PostgreSQL (`RunnerSession`,
infra/postgres/checkpoints.py): its logic too is driven from lists in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
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

    def partition_of(self, key: bytes, partitions: int) -> int:
        """The partition the broker's own partitioner gives a key (for the relay's counts)."""

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


class Doorbell(Protocol):
    """Told when there may be something new to read (the store appended, the relay published),
    so that an idle relay or runner waits for it instead of asking again every few milliseconds."""

    def wait(self, seconds: float) -> bool:
        """Return once rung (True) or after `seconds` (False); news that came while the caller was
        busy rings at once. A bell that cannot hear (its connection is down) waits the seconds out:
        callers look anyway after each wait, so a lost ring costs at most that long."""

    def close(self) -> None: ...


class Notifications(Protocol):
    """The event store's notification log in its global order."""

    def select_notifications(self, start: int, limit: int) -> Sequence[Any]: ...


OutboxRow = tuple[int, str, str, str, bytes, dict[str, Any]]


class OutboxRows(Protocol):
    """A projection's outbox table: notices decided, in the order they were written."""

    def pending(self, limit: int) -> list[OutboxRow]:
        """(id, notice_id, topic, key, value, headers) of the oldest unpublished notices."""

    def mark(self, ids: list[int]) -> None: ...

    def close(self) -> None: ...


# -- projections and their views ---------------------------------------------------------------


class View(Protocol):
    """A read model's rows, bound to the open transaction of one batch (or one tick)."""

    def prefetch(self, contracts: Collection[str]) -> None:
        """Read now, in one query per table, the rows kept by contract of these contracts (the
        batch's), rather than a contract at a time when first got: a batch then costs a few
        round trips, not one per contract. (Rows kept by ticket need no reading ahead: a
        batch's folds run at flush, once one query has read the rows they need. A view that
        holds every row in memory has nothing to read.)"""
        ...

    def flush(self) -> int:
        """Write what the batch changed; how many of its changes were declined because the
        rows had already applied them (a view that applies at once declines none here)."""
        ...


class Projection(Protocol):
    """A read model's rules: what an event does to the view's rows, and what the passing of
    time does (`tick`, a no-op for a projection with nothing timed)."""

    name: str
    # The event types `apply` acts on (it answers False and changes nothing for any other);
    # None: it may act on any. A rebuild from the store decodes only these.
    reads: frozenset[str] | None

    def apply(self, env: Envelope, view: Any) -> bool:
        """Apply one event; False if it changes nothing (unrelated, or already applied)."""
        ...

    def tick(self, now: datetime, view: Any) -> None:
        """Act on what became due by `now` (breaches, spent budgets)."""
        ...


# -- the projection runner: its message source and its bookkeeping session ----------------------


class Record(Protocol):
    """One message read from a partition of the events topic (kafka-python's records fit)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes: ...

    @property
    def headers(self) -> Headers | None: ...


class MessageSource(Protocol):
    """The events topic as one runner reads it: partitions assigned by hand (`assign`) or by a
    consumer group (`subscribe`), each read from a position the runner sets (its checkpoints
    are kept in PostgreSQL, not by the broker)."""

    topic: str

    def wait_for_topic(self, timeout: float) -> list[int]:
        """The topic's partitions, once it exists; RuntimeError if it does not within `timeout` s."""

    def assign(self, partitions: list[int]) -> None: ...

    def subscribe(self) -> None:
        """Join the consumer group: the broker spreads the topic's partitions over its members
        and moves them when members come and go (during polls, or between them)."""

    def assignment(self) -> set[int]:
        """The partitions the group assigns this consumer now."""

    def rebalanced(self) -> set[int]:
        """The partitions the group revoked or assigned since the last call: where each is read
        from may have been reset by the broker's policy. A partition newly assigned comes
        paused."""

    def pause(self, partitions: list[int]) -> None:
        """Fetch nothing from these partitions until resumed."""

    def resume(self, partitions: list[int]) -> None: ...

    def commit(self, offsets: Mapping[int, int]) -> None:
        """Tell the group the next offset to read per partition, without waiting: for the
        broker's lag monitoring only (the runner goes on from its checkpoints, never these)."""

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[int, Sequence[Record]]:
        """The records that came, per partition, each partition's in offset order."""

    def seek(self, partition: int, offset: int) -> None:
        """Read the partition on from this offset."""

    def seek_to_beginning(self, partition: int) -> None: ...

    def record_at(self, partition: int, offset: int) -> Record | None:
        """The message the partition holds at this offset, if it holds one (a probe that
        fetches it: some brokers, Tansu, report end offsets short of what they hold)."""

    def close(self) -> None: ...


@dataclass
class Cursor:
    """Where the runner stands on one partition: the last offset read, and the last store
    position consumed there (applied, ignored, or parked with a position it could trust)."""

    offset: int = -1
    position: int = 0


class RunnerSession(Protocol):
    """A runner's session with the database of its read model: one connection that holds the
    runner's leases and through which everything the runner writes goes, in one open
    transaction at a time. The read-model rows of a batch, its checkpoints and the watermark
    commit together; a session that lost its connection lost its leases and writes nothing."""

    topic: str

    # leases: session-level, outliving transactions; each leaves no transaction open
    def acquire(self, lease: str, stop: Callable[[], bool]) -> bool:
        """Wait as a standby until the lease is ours (True), or until stopped (False)."""

    def try_lock(self, lease: str) -> bool: ...

    def unlock(self, lease: str) -> None: ...

    # in the open transaction
    def switch_lock(self, name: str) -> None:
        """Hold, until the transaction ends, the rebuild's switch lock of projection `name`
        shared: the switch waits for the batch in flight and the next batch for the switch."""

    def cursor(self, partition: int) -> Cursor:
        """The partition's checkpoint (a fresh cursor if it has none)."""

    def positions(self) -> dict[int, int]:
        """Every partition's checkpointed position (whichever runner applies it)."""

    def store(self, cursors: Mapping[int, Cursor]) -> None:
        """Checkpoint these partitions."""

    def watermark(self) -> int: ...

    def forget(self, contract_id: str) -> None:
        """Drop the values of the contract's parked messages: its personal data is erased."""

    def store_watermark(self, position: int) -> None: ...

    def tally(self, applied: int, ignored: int) -> None:
        """Count a batch's applied and ignored events, in its transaction."""

    def relayed(self) -> tuple[int, dict[int, int]] | None:
        """The relay's position on the topic, and the last position it published per partition."""

    def head(self) -> int:
        """The event store's last position."""

    def beat(self, runner: str, refused: str | None = None) -> None:
        """The runner's heartbeat, with why it refuses to write (or None)."""

    def rules_version(self) -> str | None:
        """The rules version the read model's tables were built with (None: set up, not rebuilt)."""

    def park(self, partition: int, record: Record, position: int | None, reason: str) -> None:
        """Keep a message the runner could not apply (a dead letter), with the reason."""

    def view(self) -> View:
        """The projection's view, bound to the open transaction."""

    def batch(self) -> AbstractContextManager[Any]:
        """Around a whole batch's statements (they may go out without waiting for each answer)."""

    def savepoint(self) -> AbstractContextManager[Any]:
        """A savepoint: what fails inside it is undone alone, the transaction goes on."""

    def commit(self) -> None: ...

    def rollback(self) -> None:
        """Undo the open transaction; nothing if the connection is gone."""

    def is_fault(self, exc: BaseException) -> bool:
        """Whether the exception is the database's fault (the connection gone, the server
        refusing, the schema not fitting) rather than the event's: a fault ends the session."""

    def close(self) -> None:
        """Drop the connection, and the leases with it."""
