"""A projection's outbox table (`consumers.ports.OutboxRows`): notices are written in the
transaction of the batch that decided them (`enqueue`), and read and marked by the outbox
publisher on a connection of its own, opened again once if it broke (a restarted server).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from infra.postgres import leases


def enqueue(conn: psycopg.Connection, schema: str, notice_id: str, topic: str, key: str,
            value: bytes, headers: dict[str, Any]) -> None:
    """Write a notice in the caller's open transaction; a notice decided twice is kept once."""
    conn.execute(
        f"INSERT INTO {schema}.outbox (notice_id, topic, key, value, headers)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (notice_id) DO NOTHING",
        (notice_id, topic, key, value, Jsonb(headers)),
    )


class PgOutboxRows:
    """The rows of {schema}.outbox not yet published."""

    def __init__(self, db_url: str, schema: str) -> None:
        self.db_url, self.schema = db_url, schema
        self.db: psycopg.Connection | None = None

    def _query(self, query: str, params: tuple[Any, ...], again: bool = True) -> list[tuple[Any, ...]]:
        try:
            if self.db is None or self.db.closed:
                self.db = leases.connect(self.db_url, autocommit=True)
            cursor = self.db.execute(query.format(schema=self.schema), params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            self.close()
            if not again:
                raise
            return self._query(query, params, again=False)

    def pending(self, limit: int) -> list[tuple[Any, ...]]:
        return self._query("SELECT id, notice_id, topic, key, value, headers FROM {schema}.outbox"
                           " WHERE published_at IS NULL ORDER BY id LIMIT %s", (limit,))

    def mark(self, ids: list[int]) -> None:
        self._query("UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY(%s)", (ids,))

    def close(self) -> None:
        with suppress(psycopg.Error):
            if self.db is not None:
                self.db.close()
        self.db = None
