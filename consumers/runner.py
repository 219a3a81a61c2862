"""The projection runner: poll the events topic, decode, apply, and store the position.

Exactly-once effect: the read-model rows a batch produced and the consumer's position
(topic, partition, offset, and the last store position consumed) are written in one
PostgreSQL transaction. Redelivery will happen (the relay is at-least-once, a crash loses an
uncommitted batch), so a message whose store position is not above the partition's is
dropped and counted as ignored; and every read-model row knows the last position applied to
it, so an overlap the partition's position cannot tell (a rebuild that ran ahead of the
runner) is ignored by the projection.

Poison and faults (consumers/batch.py). A batch that fails anywhere (decoding, applying, the
view's write at flush) is retried event by event, each in a savepoint of its own, so only the
event that fails is parked with the reason; a message whose position lies beyond the store's
head is parked too. A database fault is not poison: the runner ends its session, reconnects
with backoff, takes its leases again, reloads its checkpoints and reads on from there.

Leases (consumers/leases.py). The runner's connection holds `apply:<projection>:<partition>`
for each partition before applying it (`take`, and `release` for a consumer group's
revocation): a second runner of the projection waits as a hot standby. The tick and the
outbox publisher run only while it holds `tick:<projection>` too, tried on each heartbeat.
Every transaction takes the rebuild's switch lock shared (consumers/checkpoints.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from kafka import KafkaConsumer, TopicPartition

from consumers import leases
from consumers.batch import Applier, BatchResult, Decoder, PositionOf, ViewFactory, is_fault
from consumers.checkpoints import Checkpoints, Cursor, switch_lock
from consumers.ports import Projection
from projections.envelope import Envelope

log = structlog.get_logger("runner")
BACKOFF = (0.2, 5.0)  # seconds before reconnecting: first, and at most


class Runner:
    """One consumer for one projection, on all (or the given) partitions of the topic."""

    def __init__(
        self,
        projection: Projection,
        view_factory: ViewFactory,
        db_url: str,
        schema: str,
        bootstrap: str,
        topic: str,
        decode: Decoder,
        position_of: PositionOf,
        partitions: list[int] | None = None,
        poll_ms: int = 50,
        max_records: int = 5000,
        after_commit: Callable[[list[Envelope]], None] | None = None,
        outbox: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: str | None = None,
        store_table: str = "es.ticketing_events",
    ) -> None:
        self.projection, self.view_factory = projection, view_factory
        self.db_url, self.schema, self.topic = db_url, schema, topic
        self.position_of = position_of
        self.applier = Applier(projection, view_factory, decode, position_of, store_table)
        self.poll_ms, self.max_records = poll_ms, max_records
        self.after_commit, self.clock, self.outbox = after_commit, clock, outbox
        self.bootstrap, self.partitions = bootstrap, partitions
        self.lease = lease or projection.name
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20,
            max_poll_records=max_records, max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.db: psycopg.Connection | None = None
        self.checkpoints: Checkpoints | None = None
        self.cursors: dict[int, Cursor] = {}
        self.watermark = 0
        self.ticking = False
        self.last_beat = 0.0

    # -- a session: connection, leases, checkpoints ----------------------------------------

    def resume(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Start a session: connect, take each partition's lease (waiting as a standby while
        another runner holds it) and seek it after its checkpoint. False if stopped waiting."""
        self.db = leases.connect(self.db_url)
        self.checkpoints = Checkpoints(self.db, self.schema, self.topic)
        tps = [TopicPartition(self.topic, p) for p in self._wait_for_topic()]
        self.consumer.assign(tps)
        if not all(self.take(tp.partition, stop) for tp in tps):
            return False
        self.watermark = self.checkpoints.watermark()  # read once the leases are ours: it is current
        self.db.commit()
        log.info("runner resumed", projection=self.projection.name, lease=self.lease,
                 cursors={p: vars(c) for p, c in self.cursors.items()})
        return True

    def take(self, partition: int, stop: Callable[[], bool] = lambda: False) -> bool:
        """Hold the partition's lease, then go on after its checkpoint (with a consumer group:
        what to do when the partition is assigned)."""
        assert self.db is not None and self.checkpoints is not None
        if not leases.acquire(self.db, f"apply:{self.lease}:{partition}", stop):
            return False
        self.cursors[partition] = cursor = self.checkpoints.cursor(partition)
        self.db.commit()
        self._seek_checkpoint(TopicPartition(self.topic, partition), cursor)
        return True

    def release(self, partition: int) -> None:
        """Stop applying the partition and free its lease (with a consumer group: what to do
        when the partition is revoked)."""
        assert self.db is not None
        self.cursors.pop(partition, None)
        leases.unlock(self.db, f"apply:{self.lease}:{partition}")

    def _wait_for_topic(self, timeout: float = 60) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.consumer.partitions_for_topic(self.topic)
            if found:
                return sorted(found) if self.partitions is None else self.partitions
            time.sleep(0.2)
        raise RuntimeError(f"topic {self.topic} did not appear within {timeout}s")

    def _seek_checkpoint(self, tp: TopicPartition, cursor: Cursor) -> None:
        """After the checkpoint if the topic still holds it, else from the topic's start (the
        broker lost its history): every row knows what it applied, so nothing applies twice.
        The message at the checkpoint's offset may be one the runner dropped or parked, whose
        position is at most the checkpoint's; a republished topic holds another one there."""
        found = self._position_at(tp, cursor.offset) if cursor.offset >= 0 else None
        if found is not None and found <= cursor.position:
            self.consumer.seek(tp, cursor.offset + 1)
            return
        self.consumer.seek_to_beginning(tp)
        if cursor.offset >= 0:
            log.warning("topic does not hold our checkpoint; reading it again from its start",
                        topic=self.topic, partition=tp.partition, offset=cursor.offset, position=cursor.position)

    def _position_at(self, tp: TopicPartition, offset: int) -> int | None:
        probe = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
        try:
            probe.assign([tp])
            probe.seek(tp, offset)
            for _ in range(20):
                for record in probe.poll(timeout_ms=100, max_records=1).get(tp, []):
                    return self.position_of(record.headers) if record.offset == offset else None
            return None
        finally:
            probe.close()

    def _end_session(self) -> None:
        """Forget the connection (and with it the leases) and the cursors: a new session
        reloads them from the checkpoints."""
        if self.db is not None:
            self.db.close()
        self.db, self.checkpoints, self.cursors, self.ticking = None, None, {}, False

    # -- batches ----------------------------------------------------------------------------

    def step(self) -> BatchResult | None:
        """Poll once and apply what came, in one transaction; None if nothing came."""
        polled = self.consumer.poll(timeout_ms=self.poll_ms, max_records=self.max_records)
        records = {tp: batch for tp, batch in polled.items() if tp.partition in self.cursors}
        if not records:
            self._idle()
            return None
        started = time.perf_counter()
        saved = {p: replace(c) for p, c in self.cursors.items()}
        try:
            result = self._commit(records, saved)
        except BaseException:
            self._rewind(saved)
            raise
        log.info("batch", projection=self.projection.name, applied=result.applied,
                 ignored=result.ignored, parked=result.parked,
                 position=max(c.position for c in self.cursors.values()),
                 ms=round((time.perf_counter() - started) * 1000, 1))
        if self.after_commit is not None and result.envelopes:
            self.after_commit(result.envelopes)
        self._publish()
        self._beat()
        return result

    def _commit(self, records: dict[TopicPartition, list[Any]], saved: dict[int, Cursor]) -> BatchResult:
        try:
            return self._write(records, isolate=False)
        except Exception as exc:
            if is_fault(exc, self.db):
                raise
            assert self.db is not None
            self.db.rollback()
            self.cursors = {p: replace(c) for p, c in saved.items()}
            log.warning("batch failed; applying it event by event", error=repr(exc))
            return self._write(records, isolate=True)

    def _write(self, records: dict[TopicPartition, list[Any]], isolate: bool) -> BatchResult:
        assert self.db is not None and self.checkpoints is not None
        result = BatchResult()
        # Pipeline mode: the view's statements go out without waiting for each answer; one
        # event at a time, each savepoint waits for its answer anyway.
        with self.db.pipeline() if not isolate else nullcontext():
            switch_lock(self.db, self.lease)
            book, sort = self.checkpoints, self.applier.sort
            messages = [m for tp, batch in records.items() for r in batch
                        if (m := sort(book, self.cursors[tp.partition], tp.partition, r, result)) is not None]
            if isolate:
                self.applier.apply_each(book, messages, result)
            else:
                self.applier.apply(self.db, messages, result)
            self.checkpoints.store({tp.partition: self.cursors[tp.partition] for tp in records})
            watermark = self._raise_watermark(min(c.position for c in self.cursors.values()))
        self.db.commit()
        self.watermark = watermark
        return result

    def _rewind(self, saved: dict[int, Cursor]) -> None:
        """Undo a failed batch: the cursors as they were, the consumer back after them."""
        if self.db is not None and not (self.db.closed or self.db.broken):
            self.db.rollback()
        self.cursors = saved
        for p, cursor in saved.items():
            tp = TopicPartition(self.topic, p)
            if cursor.offset >= 0:
                self.consumer.seek(tp, cursor.offset + 1)
            else:
                self.consumer.seek_to_beginning(tp)

    # -- watermark, heartbeat, tick ---------------------------------------------------------

    def _raise_watermark(self, candidate: int) -> int:
        """Raise the watermark (every partition has consumed all positions up to it) in the
        open transaction; the caller keeps the value once that commits."""
        if candidate <= self.watermark:
            return self.watermark
        assert self.checkpoints is not None
        self.checkpoints.store_watermark(candidate)
        return candidate

    def _idle(self) -> None:
        """Nothing came: if every partition is past the last position the relay published
        into it, everything up to the relay's position is consumed. (Read from the relay's
        table, not from the broker's end offsets, which some brokers report short.)"""
        assert self.db is not None and self.checkpoints is not None
        switch_lock(self.db, self.lease)
        relayed, watermark = self.checkpoints.relayed(), self.watermark
        if relayed is not None:
            published, last = relayed
            if all(self.cursors.get(p, Cursor()).position >= position for p, position in last.items()):
                watermark = self._raise_watermark(published)
        self.db.commit()
        self.watermark = watermark
        self._beat()

    def _beat(self) -> None:
        """Once a second: the heartbeat, and the tick if this runner holds the tick's lease."""
        now = time.monotonic()
        if now - self.last_beat < 1.0:
            return
        assert self.db is not None and self.checkpoints is not None
        self.last_beat = now
        self.ticking = self.ticking or leases.try_lock(self.db, f"tick:{self.lease}")
        switch_lock(self.db, self.lease)
        if self.ticking:
            self.projection.tick(self.clock(), self.view_factory(self.db))
        self.checkpoints.beat(self.projection.name)
        self.db.commit()
        self._publish()

    def _publish(self) -> None:
        if self.outbox is not None and self.ticking:
            self.outbox.publish()

    # -- the process ------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Apply until stopped; a fault ends the session, never the runner."""
        delay = BACKOFF[0]
        while not stop():
            try:
                if self.db is None and not self.resume(stop):
                    continue
                self.step()
                delay = BACKOFF[0]
            except Exception as exc:  # noqa: BLE001 - the process's top-level loop
                log.warning("runner fault; reconnecting", projection=self.projection.name,
                            error=repr(exc), retry_in=delay)
                self._end_session()
                _sleep(delay, stop)
                delay = min(delay * 2, BACKOFF[1])

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        self.consumer.close()
        self._end_session()


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.1, seconds))
