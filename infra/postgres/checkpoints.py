"""A projection runner's session with PostgreSQL (`consumers.ports.RunnerSession`): its
bookkeeping, kept in the schema of the read model it writes (where it stands on each partition,
its checkpoint; the watermark that `?wait_for=` reads; its heartbeat; the messages it parked,
dead letters), its leases, and the view it writes to.

All of it goes through one connection, the one holding the runner's leases, in the transaction
of the batch that moved it: rows, checkpoint and watermark commit together, and a runner that
lost its connection (and so its leases) can write none of it. Also here: the lock a rebuild's
switch takes exclusively and each of the runner's transactions takes shared.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from consumers.ports import Cursor, Headers, Record, View
from infra.postgres import leases

ViewFactory = Callable[[psycopg.Connection], View]


def headers_json(headers: Headers | None) -> list[list[str]] | None:
    """A message's headers as a dead letter keeps them (values in base64), to decode it again."""
    return None if headers is None else [[key, base64.b64encode(value).decode()] for key, value in headers]


def switch_lock(conn: psycopg.Connection, name: str, shared: bool = True) -> None:
    """Hold, until the transaction ends, the lock of the rebuild's switch of projection `name`.
    The runner takes it shared in each transaction and the switch exclusively, so the switch
    waits for the batch in flight and the next batch waits for the switch."""
    take = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.execute(f"SELECT {take}(hashtext(%s), hashtext(%s))", (leases.NAMESPACE, f"switch:{name}"))


def is_fault(exc: BaseException, conn: psycopg.Connection | None) -> bool:
    """A fault rather than poison: the connection is gone, the server refused for a reason of
    its own (shutdown, cancel, conflict), or the statement does not fit the schema (a table
    or column missing: a deployment's fault, which would otherwise park every event). The
    same batch may well pass later; poison is what the event's own values break."""
    if conn is None or conn.closed or conn.broken:
        return True
    aborted = isinstance(exc, psycopg.errors.PipelineAborted)  # the poison is the statement before
    faults = (psycopg.OperationalError, psycopg.InterfaceError, psycopg.ProgrammingError)
    return isinstance(exc, faults) and not aborted


class PgRunnerSession:
    """One runner's connection (with keepalives both ways, see infra/postgres/leases.py) and
    its bookkeeping rows for one topic in `schema`; `store_table` is the event store's table."""

    def __init__(self, db_url: str, schema: str, topic: str, view: ViewFactory,
                 store_table: str = "es.ticketing_events") -> None:
        self.db = leases.connect(db_url)
        self.schema, self.topic, self.view_factory, self.store_table = schema, topic, view, store_table

    def _sql(self, text: str) -> Any:
        return text.replace("{s}", self.schema)

    # -- leases --------------------------------------------------------------------------------

    def acquire(self, lease: str, stop: Callable[[], bool]) -> bool:
        return leases.acquire(self.db, lease, stop)

    def try_lock(self, lease: str) -> bool:
        return leases.try_lock(self.db, lease)

    def unlock(self, lease: str) -> None:
        leases.unlock(self.db, lease)

    # -- in the open transaction -----------------------------------------------------------------

    def switch_lock(self, name: str) -> None:
        switch_lock(self.db, name)

    def cursor(self, partition: int) -> Cursor:
        row = self.db.execute(self._sql(
            "SELECT kafka_offset, position FROM {s}.checkpoint WHERE topic = %s AND partition = %s"),
            (self.topic, partition)).fetchone()
        return Cursor(*row) if row else Cursor()

    def positions(self) -> dict[int, int]:
        rows = self.db.execute(self._sql("SELECT partition, position FROM {s}.checkpoint WHERE topic = %s"),
                               (self.topic,)).fetchall()
        return {int(p): int(position) for p, position in rows}

    def store(self, cursors: Mapping[int, Cursor]) -> None:
        with self.db.cursor() as cur:
            cur.executemany(self._sql(
                "INSERT INTO {s}.checkpoint (topic, partition, kafka_offset, position) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (topic, partition) DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset,"
                " position = EXCLUDED.position, updated_at = now()"),
                [(self.topic, p, c.offset, c.position) for p, c in cursors.items()])

    def watermark(self) -> int:
        row = self.db.execute(self._sql("SELECT position FROM {s}.watermark WHERE topic = %s"),
                              (self.topic,)).fetchone()
        return int(row[0]) if row else 0

    def store_watermark(self, position: int) -> None:
        self.db.execute(self._sql(
            "INSERT INTO {s}.watermark (topic, position) VALUES (%s, %s)"
            " ON CONFLICT (topic) DO UPDATE SET position = greatest({s}.watermark.position, EXCLUDED.position),"
            " updated_at = now()"), (self.topic, position))  # runners of a group raise it side by side

    def tally(self, applied: int, ignored: int) -> None:
        self.db.execute(self._sql(
            "INSERT INTO {s}.tally (topic, applied, ignored) VALUES (%s, %s, %s) ON CONFLICT (topic) DO UPDATE"
            " SET applied = {s}.tally.applied + EXCLUDED.applied, ignored = {s}.tally.ignored + EXCLUDED.ignored"),
            (self.topic, applied, ignored))

    def relayed(self) -> tuple[int, dict[int, int]] | None:
        row = self.db.execute("SELECT position, partitions FROM relay.position WHERE topic = %s",
                              (self.topic,)).fetchone()
        if row is None:
            return None
        return int(row[0]), {int(p): int(last) for p, (_, last) in row[1].items()}

    def head(self) -> int:
        row = self.db.execute(f"SELECT coalesce(max(notification_id), 0) FROM {self.store_table}").fetchone()
        return int(row[0]) if row else 0

    def beat(self, runner: str, refused: str | None = None) -> None:
        self.db.execute(self._sql(
            "INSERT INTO {s}.heartbeat (runner, beat_at, refused) VALUES (%s, now(), %s)"
            " ON CONFLICT (runner) DO UPDATE SET beat_at = now(), refused = EXCLUDED.refused"), (runner, refused))

    def rules_version(self) -> str | None:
        row = self.db.execute(self._sql("SELECT rules_version FROM {s}.built")).fetchone()
        return str(row[0]) if row else None

    def park(self, partition: int, record: Record, position: int | None, reason: str) -> None:
        """Keep the message with the reason; an erased contract's message without its value."""
        key = getattr(record, "key", None)
        contract_id = key.decode(errors="replace") if isinstance(key, bytes) else None
        store = self.store_table.rsplit(".", 1)[0]
        self.db.execute(self._sql(
            "INSERT INTO {s}.dead_letter (topic, partition, kafka_offset, position, reason, value, headers, contract_id)"
            f" VALUES (%s, %s, %s, %s, %s, CASE WHEN {store}.erased(%s) THEN NULL ELSE %s END, %s, %s)"),
            (self.topic, partition, record.offset, position, reason, _uuid_or_none(contract_id), record.value,
             Jsonb(headers_json(record.headers)), contract_id))

    def forget(self, contract_id: str) -> None:
        """Drop the values of the erased contract's parked messages (they hold its personal fields)."""
        self.db.execute(self._sql("UPDATE {s}.dead_letter SET value = NULL WHERE contract_id = %s"), (contract_id,))

    def view(self) -> View:
        return self.view_factory(self.db)

    def batch(self) -> AbstractContextManager[Any]:
        """Pipeline mode: the view's statements go out without waiting for each answer."""
        return self.db.pipeline()

    def savepoint(self) -> AbstractContextManager[Any]:
        return self.db.transaction()

    def commit(self) -> None:
        self.db.commit()

    def rollback(self) -> None:
        if not (self.db.closed or self.db.broken):
            self.db.rollback()

    def is_fault(self, exc: BaseException) -> bool:
        return is_fault(exc, self.db)

    def close(self) -> None:
        with suppress(psycopg.Error):
            self.db.close()


def _uuid_or_none(text: str | None) -> str | None:
    """The key as the erasure check reads it: a contract id, or nothing (a key that is no id)."""
    try:
        return str(UUID(text)) if text else None
    except ValueError:
        return None
