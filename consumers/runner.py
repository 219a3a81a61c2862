"""The projection runner: poll the events topic, decode, apply, and store the position.

Exactly-once effect: the read-model rows a batch produced and the consumer's position
(topic, partition, offset, and the last store position applied) are written in one
PostgreSQL transaction. Redelivery will happen (the relay is at-least-once, a crash loses
an uncommitted batch), so a message whose store position is not above the partition's last
applied one is dropped and counted as ignored. A message that cannot be decoded or applied
is parked in the dead-letter table with the reason, and the runner goes on; a database or
broker fault rolls the batch back and the runner reads it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import psycopg
import structlog
from kafka import KafkaConsumer, TopicPartition

from projections.envelope import Envelope

log = structlog.get_logger("runner")


class Projection(Protocol):
    """What the runner drives: `apply` one envelope to a view bound to the open transaction."""

    name: str

    def apply(self, env: Envelope, view: Any) -> bool: ...


Decoder = Callable[[bytes, list[tuple[str, bytes]] | None], Envelope]
PositionOf = Callable[[list[tuple[str, bytes]] | None], int | None]
ViewFactory = Callable[[psycopg.Connection], Any]


@dataclass
class Cursor:
    """Where the runner stands on one partition."""

    offset: int = -1
    position: int = 0


@dataclass
class BatchResult:
    applied: int = 0
    ignored: int = 0
    parked: int = 0
    envelopes: list[Envelope] = field(default_factory=list)


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
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.projection, self.view_factory = projection, view_factory
        self.schema, self.topic = schema, topic
        self.decode, self.position_of = decode, position_of
        self.poll_ms, self.max_records = poll_ms, max_records
        self.after_commit, self.clock = after_commit, clock
        self.outbox = outbox
        self.bootstrap = bootstrap
        self.db = psycopg.connect(db_url)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20,
            max_poll_records=max_records, max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.partitions = partitions
        self.cursors: dict[int, Cursor] = {}
        self.watermark = 0
        self.last_beat = 0.0

    # -- start ------------------------------------------------------------------------------

    def _wait_for_topic(self, timeout: float = 60) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.consumer.partitions_for_topic(self.topic)
            if found:
                return sorted(found) if self.partitions is None else self.partitions
            time.sleep(0.2)
        raise RuntimeError(f"topic {self.topic} did not appear within {timeout}s")

    def _stored_cursors(self) -> dict[int, Cursor]:
        rows = self.db.execute(
            f"SELECT partition, kafka_offset, position FROM {self.schema}.checkpoint WHERE topic = %s",  # type: ignore[arg-type]
            (self.topic,),
        ).fetchall()
        self.db.commit()
        return {p: Cursor(o, pos) for p, o, pos in rows}

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

    def resume(self) -> None:
        """Seek each partition after its checkpoint, or to the start if the topic was rebuilt."""
        tps = [TopicPartition(self.topic, p) for p in self._wait_for_topic()]
        self.consumer.assign(tps)
        stored = self._stored_cursors()
        row = self.db.execute(
            f"SELECT position FROM {self.schema}.watermark WHERE topic = %s", (self.topic,)  # type: ignore[arg-type]
        ).fetchone()
        self.db.commit()
        self.watermark = int(row[0]) if row else 0
        for tp in tps:
            cursor = stored.get(tp.partition, Cursor())
            self.cursors[tp.partition] = cursor
            same = cursor.offset >= 0 and self._position_at(tp, cursor.offset) == cursor.position
            if same:
                self.consumer.seek(tp, cursor.offset + 1)
            else:
                self.consumer.seek_to_beginning(tp)
                if cursor.offset >= 0:
                    log.warning(
                        "topic does not hold our checkpoint; reading from its start and dropping"
                        " what was applied", topic=self.topic, partition=tp.partition,
                        offset=cursor.offset, position=cursor.position,
                    )
        log.info("runner resumed", projection=self.projection.name,
                 cursors={p: vars(c) for p, c in self.cursors.items()})

    # -- batches ----------------------------------------------------------------------------

    def _apply_batch(self, records: dict[TopicPartition, list[Any]], isolate: bool) -> BatchResult:
        # A rebuild's switch holds this lock while it swaps the tables under us.
        self.db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                        (f"ticketing-projection-{self.projection.name}",))
        # Pipeline mode: the view's statements go out without waiting for each answer.
        with self.db.pipeline():
            return self._apply_records(records, isolate)

    def _apply_records(self, records: dict[TopicPartition, list[Any]], isolate: bool) -> BatchResult:
        result = BatchResult()
        view = self.view_factory(self.db)
        for tp, batch in records.items():
            cursor = self.cursors[tp.partition]
            for record in batch:
                position = self.position_of(record.headers)
                cursor.offset = record.offset
                if position is not None and position <= cursor.position:
                    result.ignored += 1
                    continue
                env = self._apply_one(tp, record, position, view, result, isolate)
                if env is not None:  # a parked message's header may lie: it moves no position
                    cursor.position = env.position
        flush = getattr(view, "flush", None)
        if flush is not None:
            flush()
        return result

    def _apply_one(self, tp: TopicPartition, record: Any, position: int | None, view: Any,
                   result: BatchResult, isolate: bool) -> Envelope | None:
        try:
            env = self.decode(record.value, record.headers)
        except Exception as exc:  # noqa: BLE001 - any undecodable message is parked
            self._park(tp, record, position, f"undecodable: {exc}")
            result.parked += 1
            return None
        if not isolate:
            used = self.projection.apply(env, view)
        else:
            try:
                with self.db.transaction():
                    used = self.projection.apply(env, view)
            except psycopg.OperationalError:
                raise
            except Exception as exc:  # noqa: BLE001 - a poison event is parked, not retried forever
                self._park(tp, record, position, f"apply failed: {exc!r}")
                result.parked += 1
                return env
        result.applied += int(bool(used))
        result.ignored += int(not used)
        result.envelopes.append(env)
        return env

    def _park(self, tp: TopicPartition, record: Any, position: int | None, reason: str) -> None:
        log.error("parked message", topic=tp.topic, partition=tp.partition, offset=record.offset,
                  position=position, reason=reason)
        self.db.execute(
            f"INSERT INTO {self.schema}.dead_letter (topic, partition, kafka_offset, position, reason, value)"  # type: ignore[arg-type]
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (tp.topic, tp.partition, record.offset, position, reason, record.value),
        )

    def _store_cursors(self, partitions: list[int]) -> None:
        with self.db.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.schema}.checkpoint (topic, partition, kafka_offset, position)"  # type: ignore[arg-type]
                " VALUES (%s, %s, %s, %s) ON CONFLICT (topic, partition) DO UPDATE SET"
                " kafka_offset = EXCLUDED.kafka_offset, position = EXCLUDED.position, updated_at = now()",
                [(self.topic, p, self.cursors[p].offset, self.cursors[p].position) for p in partitions],
            )

    def step(self) -> BatchResult | None:
        records = self.consumer.poll(timeout_ms=self.poll_ms, max_records=self.max_records)
        if not records:
            self._idle_watermark()
            self._beat()
            return None
        started = time.perf_counter()
        saved = {p: Cursor(c.offset, c.position) for p, c in self.cursors.items()}
        for isolate in (False, True):
            try:
                result = self._apply_batch(records, isolate)
                with self.db.pipeline():
                    self._store_cursors([tp.partition for tp in records])
                    self._store_watermark(min(c.position for c in self.cursors.values()))
                self.db.commit()
                break
            except psycopg.OperationalError:
                self._rewind(saved)
                raise
            except Exception:  # noqa: BLE001 - retried once event by event to find the poison
                self.db.rollback()
                self.cursors = {p: Cursor(c.offset, c.position) for p, c in saved.items()}
                if isolate:
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

    def _publish(self) -> None:
        if self.outbox is not None:
            self.outbox.publish()

    def _store_watermark(self, candidate: int) -> None:
        """Raise the watermark: every partition has consumed all positions up to it."""
        if candidate <= self.watermark:
            return
        self.watermark = candidate
        self.db.execute(
            f"INSERT INTO {self.schema}.watermark (topic, position) VALUES (%s, %s)"  # type: ignore[arg-type]
            " ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
            (self.topic, candidate),
        )

    def _idle_watermark(self) -> None:
        """Nothing came: if every partition is past the last position the relay acknowledged
        into it, everything up to the relay's position is consumed. (Read from the relay's
        table, not from the broker's end offsets, which some brokers report short.)"""
        row = self.db.execute(
            "SELECT position, partitions FROM relay.position WHERE topic = %s", (self.topic,)
        ).fetchone()
        if row is not None:
            published, partitions = row
            if all(self.cursors.get(int(p), Cursor()).position >= last for p, (_, last) in partitions.items()):
                self._store_watermark(int(published))
        self.db.commit()

    def _rewind(self, saved: dict[int, Cursor]) -> None:
        self.db.rollback()
        self.cursors = saved
        for p, cursor in saved.items():
            tp = TopicPartition(self.topic, p)
            if cursor.offset >= 0:
                self.consumer.seek(tp, cursor.offset + 1)
            else:
                self.consumer.seek_to_beginning(tp)

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self.last_beat < 1.0:
            return
        self.last_beat = now
        tick = getattr(self.projection, "tick", None)
        if tick is not None:
            tick(self.clock(), self.view_factory(self.db))
            self.db.commit()
            self._publish()
        self.db.execute(
            f"INSERT INTO {self.schema}.heartbeat (runner, beat_at) VALUES (%s, now())"  # type: ignore[arg-type]
            " ON CONFLICT (runner) DO UPDATE SET beat_at = now()",
            (self.projection.name,),
        )
        self.db.commit()

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        self.resume()
        while not stop():
            try:
                self.step()
            except psycopg.OperationalError as exc:
                log.warning("database fault; batch will be read again", error=str(exc))
                time.sleep(1)

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        self.consumer.close()
        self.db.close()
