"""Publishes the notices a projection wrote to its outbox table, in order, after the batch
that decided them committed; marks a row only once the broker acknowledged its send.

A crash between the acknowledgement and the mark publishes that row again on restart, so
every notice carries a stable `notice_id` (header) for consumers to drop the rare repeat;
nothing decided is ever lost, since the row outlives the process. The runner calls
`publish()` only while it holds the projection's tick lease, so one process publishes.
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import psycopg
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.future import Future

from consumers import leases
from consumers.sending import PRODUCER, Backoff, acknowledged, close_quietly, flush

log = structlog.get_logger("outbox")

class OutboxPublisher:
    """Drains one projection's outbox table to Kafka."""

    def __init__(self, db_url: str, schema: str, bootstrap: str, batch: int = 500,
                 ack_timeout: float = 10.0, backoff: Backoff | None = None) -> None:
        self.db_url, self.schema, self.bootstrap, self.batch = db_url, schema, bootstrap, batch
        self.ack_timeout, self.backoff = ack_timeout, backoff or Backoff()
        self.db: psycopg.Connection | None = None
        self.producer: KafkaProducer | None = None
        self.failures, self.retry_at = 0, 0.0

    def _query(self, query: str, params: tuple[Any, ...], again: bool = True) -> list[tuple[Any, ...]]:
        """Run on our connection, opening it again once if it broke (a restarted server)."""
        try:
            if self.db is None or self.db.closed:
                self.db = leases.connect(self.db_url, autocommit=True)
            cursor = self.db.execute(query.format(schema=self.schema), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            with suppress(psycopg.Error):
                self.db and self.db.close()
            self.db = None
            if not again:
                raise
            return self._query(query, params, again=False)

    def publish(self) -> int:
        """Send the oldest unpublished notices; mark those the broker acknowledged; return how many.
        After a failure it waits (exponential backoff) before trying again, answering 0."""
        if time.monotonic() < self.retry_at:
            return 0
        rows = self._query("SELECT id, notice_id, topic, key, value, headers FROM {schema}.outbox"
                           " WHERE published_at IS NULL ORDER BY id LIMIT %s", (self.batch,))
        if not rows:
            return 0
        done = self._send(rows)
        if done:
            self._query("UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY(%s)", (done,))
            log.info("notices published", schema=self.schema, count=len(done))
        return len(done)

    def _send(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """The ids of the rows whose sends the broker acknowledged; sending stops at the first refused."""
        futures: list[Any] = []
        try:
            self.producer = self.producer or KafkaProducer(bootstrap_servers=self.bootstrap, **PRODUCER)
            for _, notice_id, topic, key, value, headers in rows:
                pairs = [(k, str(v).encode()) for k, v in headers.items()] + [("ticketing-notice-id", notice_id.encode())]
                futures.append(self.producer.send(topic, key=key.encode(), value=bytes(value), headers=pairs))
                if futures[-1].failed():
                    break
        except KafkaError as exc:  # the broker is away, or the notice is too large
            futures.append(Future().failure(exc))
        if self.producer is not None:
            flush(self.producer, self.ack_timeout)
        done, reason = acknowledged(futures)
        self._outcome(rows[done][1] if reason else None, reason)
        return [row[0] for row, future in zip(rows, futures, strict=False) if future.succeeded()]

    def _outcome(self, notice_id: str | None, reason: str | None) -> None:
        if reason is None:
            self.failures = 0
            return
        self.failures += 1
        wait = self.backoff.delay(self.failures)
        self.retry_at = time.monotonic() + wait
        log.warning("notice not published; retrying", schema=self.schema, notice_id=notice_id,
                    reason=reason, attempt=self.failures, retry_in=wait)
        close_quietly(self.producer)  # a restarted broker does not know the old producer's id
        self.producer = None

    def close(self) -> None:
        close_quietly(self.producer)
        if self.db is not None:
            self.db.close()


def enqueue(conn: psycopg.Connection, schema: str, notice_id: str, topic: str, key: str,
            value: bytes, headers: dict[str, Any]) -> None:
    """Write a notice in the caller's open transaction; a notice decided twice is kept once."""
    from psycopg.types.json import Jsonb

    conn.execute(
        f"INSERT INTO {schema}.outbox (notice_id, topic, key, value, headers)"  # type: ignore[arg-type]
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (notice_id) DO NOTHING",
        (notice_id, topic, key, value, Jsonb(headers)),
    )
