"""Publishes the notices a projection wrote to its outbox table, in order, after the batch
that decided them committed; marks each row once the broker acknowledged it.

A crash between the acknowledgement and the mark publishes that row again on restart, so
every notice carries a stable `notice_id` (header and Kafka key suffix) for consumers to
drop the rare repeat; nothing decided is ever lost, since the row outlives the process.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from kafka import KafkaProducer

log = structlog.get_logger("outbox")


class OutboxPublisher:
    """Drains one projection's outbox table to Kafka."""

    def __init__(self, db_url: str, schema: str, bootstrap: str, batch: int = 500) -> None:
        self.db_url, self.schema, self.bootstrap, self.batch = db_url, schema, bootstrap, batch
        self.db: psycopg.Connection | None = None
        self.producer: KafkaProducer | None = None

    def _connect(self) -> psycopg.Connection:
        if self.db is None or self.db.closed:
            self.db = psycopg.connect(self.db_url, autocommit=True)
        return self.db

    def publish(self) -> int:
        db = self._connect()
        rows = db.execute(
            f"SELECT id, notice_id, topic, key, value, headers FROM {self.schema}.outbox"  # type: ignore[arg-type]
            " WHERE published_at IS NULL ORDER BY id LIMIT %s", (self.batch,),
        ).fetchall()
        if not rows:
            return 0
        if self.producer is None:
            self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                          enable_idempotence=True, linger_ms=2)
        for _, notice_id, topic, key, value, headers in rows:
            pairs = [(k, str(v).encode()) for k, v in headers.items()] + [("ticketing-notice-id", notice_id.encode())]
            self.producer.send(topic, key=key.encode(), value=bytes(value), headers=pairs)
        self.producer.flush()
        db.execute(
            f"UPDATE {self.schema}.outbox SET published_at = now() WHERE id = ANY(%s)",  # type: ignore[arg-type]
            ([r[0] for r in rows],),
        )
        log.info("notices published", schema=self.schema, count=len(rows))
        return len(rows)

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close()
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
