"""The relay: the event store's notification log, in order, to the events topic.

It encodes each event with its own Avro schema and publishes it with key = contract id (so a
contract's own and its tickets' events stay in order on one partition). It stores its new
position only over the events whose sends the broker acknowledged, up to the first that
failed; after a crash or a failed send it publishes again (at-least-once), and consumers
drop repeats by position. It never skips an event and never exits because of one: an event
it cannot encode, too large, refused, or a broker that is away blocks it there; it retries
with exponential backoff, keeps beating, and records why in `relay.position` (`blocked_*`,
read by GET /health). One relay per topic: it holds the lease `relay:<topic>` and writes
only through the connection that holds it; a second relay is a standby. A broken connection
is reopened, the lease taken again, the position reloaded. A topic holding fewer messages
than were acknowledged lost its history (the embedded broker keeps nothing across
restarts): the relay then publishes again from the start of the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from consumers import leases
from consumers.sending import PRODUCER, Backoff, acknowledged, close_quietly, flush
from projections.envelope import Envelope, from_domain_event

Encoder = Callable[[Envelope], tuple[bytes, list[tuple[str, bytes]]]]
log = structlog.get_logger("relay")

# What a lost or restarted PostgreSQL looks like, through psycopg or through the store.
DATABASE_FAULTS = (psycopg.OperationalError, psycopg.InterfaceError, StoreOperationalError, StoreInterfaceError)

PRODUCER_OPTIONS = PRODUCER | {"batch_size": 256 * 1024}  # the relay sends thousands at a time


@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed message (murmur2), remembered per contract:
    computing it in pure Python for every message costs more than encoding the message."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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


class Relay:
    """Moves events from the store to Kafka; one active instance per topic."""

    def __init__(
        self, recorder: Any, mapper: Any, encode: Encoder, db_url: str, bootstrap: str, topic: str,
        partitions: int = 1, batch_size: int = 2000, idle_sleep: float = 0.02,
        backoff: Backoff | None = None, ack_timeout: float = 15.0, producer_options: dict[str, Any] | None = None,
    ) -> None:
        self.recorder, self.mapper, self.encode = recorder, mapper, encode
        self.topic, self.batch_size, self.idle_sleep = topic, batch_size, idle_sleep
        self.bootstrap, self.partitions = bootstrap, partitions
        self.backoff, self.ack_timeout = backoff or Backoff(), ack_timeout
        self.producer_options = PRODUCER_OPTIONS | (producer_options or {})
        # The process id in the session's name lets status (and tests) find the active relay.
        self.db_url = make_conninfo(db_url, application_name=f"ticketing-relay:{os.getpid()}")
        self.role = f"relay:{topic}"
        self.db: psycopg.Connection | None = None
        self.producer: KafkaProducer | None = None
        self.state, self.blocked = RelayState(), None
        self.topic_checked, self.retry_at, self.last_beat, self.faults = False, 0.0, 0.0, 0

    # -- lease and position -----------------------------------------------------------------

    def take_lease(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Hold the topic's lease (waiting as a standby while another relay does), then load the
        position it stored: False only if stopped while waiting."""
        if self.db is not None:
            return True
        conn = leases.connect(self.db_url, autocommit=True)
        try:
            if not leases.acquire(conn, self.role, stop):
                conn.close()
                return False
        except psycopg.Error:
            conn.close()
            raise
        self.db, self.topic_checked = conn, False
        self._load_state()
        log.info("relay holds the topic", topic=self.topic, position=self.state.position)
        return True

    def _lease(self) -> psycopg.Connection:
        self.take_lease()
        assert self.db is not None
        return self.db

    def _load_state(self) -> None:
        """The stored position, and what blocked the previous holder (tried again at once)."""
        row = self._lease().execute(
            "SELECT position, published, partitions, blocked_position, blocked_reason FROM relay.position"
            " WHERE topic = %s", (self.topic,)).fetchone()
        self.state = RelayState(*row[:3]) if row else RelayState()
        self.blocked = Blocked(row[3], row[4]) if row and row[3] is not None else None
        self.retry_at = 0.0

    def _store(self, state: RelayState, blocked: Blocked | None) -> None:
        """Position and blocked columns in one write; `blocked_since` stays while the same event blocks."""
        where, why = (blocked.position, blocked.reason) if blocked else (None, None)
        self._lease().execute(
            "INSERT INTO relay.position AS r (topic, position, published, partitions, blocked_position,"
            " blocked_reason, blocked_since) VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
            " ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position, published = EXCLUDED.published,"
            " partitions = EXCLUDED.partitions, blocked_position = EXCLUDED.blocked_position,"
            " blocked_reason = EXCLUDED.blocked_reason, updated_at = now(), blocked_since ="
            " CASE WHEN r.blocked_position = EXCLUDED.blocked_position THEN r.blocked_since"
            " ELSE EXCLUDED.blocked_since END",
            (self.topic, state.position, state.published, Jsonb(state.partitions), where, why, blocked is not None),
        )
        self.state, self.blocked = state, blocked

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last_beat >= 1.0:
            self.last_beat = now
            self._lease().execute(
                "INSERT INTO relay.heartbeat (topic, beat_at) VALUES (%s, now())"
                " ON CONFLICT (topic) DO UPDATE SET beat_at = now()", (self.topic,),
            )

    # -- topic ------------------------------------------------------------------------------

    def _holds(self, partition: int, offset: int) -> bool:
        """Whether the topic still has a message at this offset. Asked by fetching it: some
        Kafka-compatible brokers (Tansu) report end offsets short of what they hold."""
        probe = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
        try:
            tp = TopicPartition(self.topic, partition)
            probe.assign([tp])
            probe.seek(tp, offset)
            for _ in range(20):
                if probe.poll(timeout_ms=100, max_records=1).get(tp):
                    return True
            return False
        finally:
            probe.close()

    def ensure_topic(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(self.topic, self.partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def check_topic(self) -> None:
        """Start again from the store's beginning if the topic lost what we published."""
        self.take_lease()
        self.ensure_topic()
        lost = [p for p, (count, _) in self.state.partitions.items() if not self._holds(int(p), count - 1)]
        if lost:
            log.warning(
                "topic lost its history; republishing from the start of the store",
                topic=self.topic, partitions=lost, published=self.state.published,
                position=self.state.position,
            )
            self._store(RelayState(), self.blocked)
        self.topic_checked = True

    def _ready(self) -> str | None:
        """A producer and a checked topic; or why the broker cannot take messages now."""
        try:
            if self.producer is None:
                self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, **self.producer_options)
            if not self.topic_checked:
                self.check_topic()
            return None
        except KafkaError as exc:
            return f"broker: {exc!r}"

    # -- work -------------------------------------------------------------------------------

    def step(self) -> int:
        """Publish the next batch up to the first event that cannot go out; return how many went out."""
        problem = self._ready()
        if problem is not None:
            return self._advance([], Blocked(self.state.position + 1, problem))
        notifications = self.recorder.select_notifications(start=self.state.position + 1, limit=self.batch_size)
        if not notifications:
            return self._advance([], None) if self.blocked else 0
        # Still ours? A relay whose lease connection died may have a successor by now: it
        # must not publish beside it (one round trip per batch).
        self._lease().execute("SELECT 1")
        started = time.perf_counter()
        sent, failure = self._send(notifications)
        assert self.producer is not None
        flush(self.producer, self.ack_timeout, self.beat)
        done, reason = acknowledged([future for _, _, future in sent])
        if reason is not None:
            failure = Blocked(sent[done][0].id, f"broker: {reason}")
        moved = self._advance(sent[:done], failure)
        if moved:
            log.info("relayed", topic=self.topic, events=moved, position=self.state.position,
                     ms=round((time.perf_counter() - started) * 1000, 1))
        return moved

    def _send(self, notifications: Sequence[Any]) -> tuple[list[tuple[Any, int, Any]], Blocked | None]:
        """Hand the events to the producer, stopping at the first it cannot take."""
        assert self.producer is not None
        try:
            count = len(self.producer.partitions_for(self.topic))
        except KafkaError as exc:  # no metadata within max_block_ms: the broker is away
            return [], Blocked(notifications[0].id, f"broker: {exc!r}")
        sent: list[tuple[Any, int, Any]] = []
        for n in notifications:
            try:
                key, value, headers = self._message(n)
            except Exception as exc:  # noqa: BLE001 - whatever the store holds that we cannot encode blocks here
                return sent, Blocked(n.id, f"cannot encode: {exc!r}", broker=False)
            partition = partition_for(key, count)
            try:
                future = self.producer.send(self.topic, key=key, value=value, headers=headers, partition=partition)
            except KafkaError as exc:  # too large for the producer, or no metadata (broker down)
                return sent, Blocked(n.id, f"refused: {exc!r}")
            if future.failed():
                return sent, Blocked(n.id, f"refused: {future.exception!r}")
            sent.append((n, partition, future))
        return sent, None

    def _message(self, notification: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        env = from_domain_event(self.mapper.to_domain_event(notification), notification.id)
        value, headers = self.encode(env)
        return env.contract_id.encode(), value, headers

    def _advance(self, acked: Sequence[tuple[Any, int, Any]], failure: Blocked | None) -> int:
        """Store the position over the acknowledged events and what blocks the next one, if anything."""
        partitions = {p: list(v) for p, v in self.state.partitions.items()}
        for n, partition, _ in acked:
            sent = partitions.setdefault(str(partition), [0, 0])
            sent[0], sent[1] = sent[0] + 1, n.id
        state = RelayState(acked[-1][0].id, self.state.published + len(acked), partitions) if acked else self.state
        if failure is not None and self.blocked is not None and self.blocked.position == failure.position:
            failure.attempts = self.blocked.attempts + 1
        self._store(state, failure)
        if failure is not None:
            self._blocked(failure)
        return len(acked)

    def _blocked(self, failure: Blocked) -> None:
        """Schedule the next attempt; a broker-side failure gets a new producer and a topic check."""
        wait = self.backoff.delay(failure.attempts)
        self.retry_at = time.monotonic() + wait
        log.warning("relay blocked on an event; retrying", topic=self.topic, position=failure.position,
                    reason=failure.reason, attempt=failure.attempts, retry_in=wait)
        if failure.broker:
            self._drop_producer()
            self.topic_checked = False

    # -- process ----------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Relay until stopped; no fault of the database, the broker or an event ends it."""
        while not stop():
            try:
                self._turn(stop)
                self.faults = 0
            except Exception as exc:  # noqa: BLE001 - the process's top-level loop: nothing may end it
                self.faults += 1
                self._pause(exc, stop)

    def _turn(self, stop: Callable[[], bool]) -> None:
        if not self.take_lease(stop):
            return
        if self.blocked is None or time.monotonic() >= self.retry_at:
            if self.step() == 0 and self.blocked is None:
                time.sleep(self.idle_sleep)
        else:
            time.sleep(min(0.2, max(0.0, self.retry_at - time.monotonic())))
        self.beat()

    def _pause(self, exc: Exception, stop: Callable[[], bool]) -> None:
        """Drop the connection (and the lease with it) and the producer, then wait before starting over."""
        wait, database = self.backoff.delay(self.faults), isinstance(exc, DATABASE_FAULTS)
        log.warning("database fault; reconnecting" if database else "unexpected fault; starting over",
                    topic=self.topic, error=repr(exc), retry_in=wait, exc_info=not database)
        self._drop_db()
        self._drop_producer()
        deadline = time.monotonic() + wait
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _drop_db(self) -> None:
        with suppress(psycopg.Error):
            self.db and self.db.close()
        self.db = None

    def _drop_producer(self) -> None:
        close_quietly(self.producer)
        self.producer = None

    def close(self) -> None:
        self._drop_producer()
        self._drop_db()
