"""The runner's bookkeeping, kept in the schema of the read model it writes: where it stands on
each partition (its checkpoint), the watermark that `?wait_for=` reads, its heartbeat, and the
messages it parked (dead letters).

All of it goes through the runner's own connection, the one holding its leases, in the
transaction of the batch that moved it: rows, checkpoint and watermark commit together, and a
runner that lost its connection (and so its leases) can write none of it. Also here: the lock
a rebuild's switch takes exclusively and each of the runner's transactions takes shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from consumers import leases


@dataclass
class Cursor:
    """Where the runner stands on one partition: the last offset read, and the last store
    position consumed there (applied, ignored, or parked with a position it could trust)."""

    offset: int = -1
    position: int = 0


def switch_lock(conn: psycopg.Connection, name: str, shared: bool = True) -> None:
    """Hold, until the transaction ends, the lock of the rebuild's switch of projection `name`.
    The runner takes it shared in each transaction and the switch exclusively, so the switch
    waits for the batch in flight and the next batch waits for the switch."""
    take = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.execute(f"SELECT {take}(hashtext(%s), hashtext(%s))", (leases.NAMESPACE, f"switch:{name}"))  # type: ignore[arg-type]


class Checkpoints:
    """One runner's bookkeeping rows, on its connection, for one topic."""

    def __init__(self, conn: psycopg.Connection, schema: str, topic: str) -> None:
        self.conn, self.schema, self.topic = conn, schema, topic

    def _sql(self, text: str) -> Any:
        return text.replace("{s}", self.schema)

    def cursor(self, partition: int) -> Cursor:
        row = self.conn.execute(self._sql(
            "SELECT kafka_offset, position FROM {s}.checkpoint WHERE topic = %s AND partition = %s"),
            (self.topic, partition)).fetchone()
        return Cursor(*row) if row else Cursor()

    def store(self, cursors: dict[int, Cursor]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(
                "INSERT INTO {s}.checkpoint (topic, partition, kafka_offset, position) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (topic, partition) DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset,"
                " position = EXCLUDED.position, updated_at = now()"),
                [(self.topic, p, c.offset, c.position) for p, c in cursors.items()])

    def watermark(self) -> int:
        row = self.conn.execute(self._sql("SELECT position FROM {s}.watermark WHERE topic = %s"),
                                (self.topic,)).fetchone()
        return int(row[0]) if row else 0

    def store_watermark(self, position: int) -> None:
        self.conn.execute(self._sql(
            "INSERT INTO {s}.watermark (topic, position) VALUES (%s, %s)"
            " ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position, updated_at = now()"),
            (self.topic, position))

    def relayed(self) -> tuple[int, dict[int, int]] | None:
        """The relay's position on the topic, and the last position it published per partition."""
        row = self.conn.execute("SELECT position, partitions FROM relay.position WHERE topic = %s",
                                (self.topic,)).fetchone()
        if row is None:
            return None
        return int(row[0]), {int(p): int(last) for p, (_, last) in row[1].items()}

    def head(self, table: str) -> int:
        """The event store's last position (its table named `schema.table`)."""
        row = self.conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {table}").fetchone()  # type: ignore[arg-type]
        return int(row[0]) if row else 0

    def beat(self, runner: str) -> None:
        self.conn.execute(self._sql(
            "INSERT INTO {s}.heartbeat (runner, beat_at) VALUES (%s, now())"
            " ON CONFLICT (runner) DO UPDATE SET beat_at = now()"), (runner,))

    def park(self, partition: int, record: Any, position: int | None, reason: str) -> None:
        self.conn.execute(self._sql(
            "INSERT INTO {s}.dead_letter (topic, partition, kafka_offset, position, reason, value)"
            " VALUES (%s, %s, %s, %s, %s, %s)"),
            (self.topic, partition, record.offset, position, reason, record.value))
