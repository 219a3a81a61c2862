"""The relay's lease and position in PostgreSQL (`consumers.ports.RelayLog`): the lease
`relay:<topic>` is an advisory lock held by a connection of its own (infra/postgres/leases.py),
and the position, the per-partition counts and what blocks the relay are written through that
same connection, so a relay that lost its lease cannot write either. The process id in the
session's name lets status (and tests) find the active relay.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import suppress

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from consumers.ports import Blocked, RelayState
from infra.postgres import doorbell, leases


class PgRelayLog:
    """relay.position and relay.heartbeat rows of one topic, under its lease."""

    def __init__(self, db_url: str, topic: str) -> None:
        self.db_url = make_conninfo(db_url, application_name=f"ticketing-relay:{os.getpid()}")
        self.topic, self.role = topic, f"relay:{topic}"
        self.db: psycopg.Connection | None = None
        self.told = -1  # the last position stored (the runners were told of it)

    @property
    def held(self) -> bool:
        return self.db is not None

    def acquire(self, stop: Callable[[], bool]) -> bool:
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
        self.db = conn
        return True

    def _conn(self) -> psycopg.Connection:
        if self.db is None:
            raise RuntimeError(f"the lease {self.role} is not held")
        return self.db

    def load(self) -> tuple[RelayState, Blocked | None]:
        row = self._conn().execute(
            "SELECT position, published, partitions, blocked_position, blocked_reason FROM relay.position"
            " WHERE topic = %s", (self.topic,)).fetchone()
        state = RelayState(*row[:3]) if row else RelayState()
        self.told = state.position
        return state, Blocked(row[3], row[4]) if row and row[3] is not None else None

    def store(self, state: RelayState, blocked: Blocked | None) -> None:
        """Position and blocked columns in one write; `blocked_since` stays while the same event
        blocks. A position that moved rings the runners' doorbell (`ticketing_relayed`, payload:
        the topic) in the same statement, so it is heard once the position is stored."""
        where, why = (blocked.position, blocked.reason) if blocked else (None, None)
        upsert = (
            "INSERT INTO relay.position AS r (topic, position, published, partitions, blocked_position,"
            " blocked_reason, blocked_since) VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
            " ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position, published = EXCLUDED.published,"
            " partitions = EXCLUDED.partitions, blocked_position = EXCLUDED.blocked_position,"
            " blocked_reason = EXCLUDED.blocked_reason, updated_at = now(), blocked_since ="
            " CASE WHEN r.blocked_position = EXCLUDED.blocked_position THEN r.blocked_since"
            " ELSE EXCLUDED.blocked_since END")
        values = (self.topic, state.position, state.published, Jsonb(state.partitions), where, why, blocked is not None)
        if state.position != self.told:
            self._conn().execute(f"WITH stored AS ({upsert} RETURNING 1) SELECT pg_notify(%s, %s) FROM stored",
                                 (*values, doorbell.RELAYED, self.topic))
        else:
            self._conn().execute(upsert, values)
        self.told = state.position

    def confirm(self) -> None:
        self._conn().execute("SELECT 1")

    def beat(self) -> None:
        self._conn().execute(
            "INSERT INTO relay.heartbeat (topic, beat_at) VALUES (%s, now())"
            " ON CONFLICT (topic) DO UPDATE SET beat_at = now()", (self.topic,))

    def release(self) -> None:
        with suppress(psycopg.Error):
            if self.db is not None:
                self.db.close()
        self.db = None
