"""The event store's recorder: the library's PostgreSQL recorder, plus one append that writes
several commands' events and their idempotency answers in one transaction, as one statement.

Appends go in store order: the events table is locked for the transaction (as the library
does), so notification ids are handed out in commit order and readers never pass a gap that
fills later. A command's kept answer (its `Idempotency-Key`) is inserted in the same
transaction as its events, so a crash leaves both or neither, and a key already kept makes
the whole append fail (KeyKept): the command then answers what was kept. What a command read
without writing is checked in the same transaction, under the same lock: if another writer
has changed it since, nothing is appended (StaleRead) and the command decides again. When the connection breaks
while committing, whether the commit happened is unknown: `committed` finds out by reading
the rows back, byte for byte, so a command is neither lost nor recorded twice.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

log = structlog.get_logger("store")

TOPIC = "infra.postgres.recorder:TicketingRecorder"


class KeyKept(Exception):
    """An answer is already kept under this command's idempotency key: nothing was appended."""


class StaleRead(IntegrityError):
    """A command decided on a cached aggregate that has changed since: nothing was appended;
    decide again (as after losing a race on a version)."""


@dataclass
class Claim:
    """A command's idempotency key, its request's hash, and the answer to keep on success."""

    scope: str
    key: str
    digest: bytes
    status: int = 200
    answer_key: str | None = None  # e.g. "ticket_id" for a creation

    def answer(self, aggregate_id: str) -> dict[str, Any]:
        """The kept answer but its position, which the store adds once it is known."""
        return {self.answer_key: aggregate_id} if self.answer_key else {}


@dataclass
class Append:
    """One command's new events, the contract of each (its hash chain), its claim if it
    carries an idempotency key, and what it read without writing: aggregates at the versions
    its decision saw, which must still be their latest when it is appended."""

    events: Sequence[StoredEvent]
    contracts: Sequence[UUID]
    claim: Claim | None = None
    read: dict[UUID, int] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)


def _resilient(func: Callable[..., Any]) -> Callable[..., Any]:
    """Three tries, and after a failure, first drop the pool's dead connections (after the
    store restarted they all are): an outage answers within seconds, a restart heals at once."""

    @wraps(func)
    def call(self: TicketingRecorder, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return func(self, *args, **kwargs)
            except (OperationalError, InterfaceError):
                if attempt == 2:
                    raise
                self.drop_stale_connections()
                time.sleep(0.2)
        return None

    return call


class TicketingRecorder(PostgresApplicationRecorder):
    """Adds `append` (several commands, one transaction) and `committed` (was it written?);
    reads retry less, but smarter, than the library's (which waits up to 10 times)."""

    select_events = _resilient(PostgresAggregateRecorder.select_events.__wrapped__)
    max_notification_id = _resilient(PostgresApplicationRecorder.max_notification_id.__wrapped__)

    def drop_stale_connections(self) -> None:
        """Check the pool's idle connections and drop the dead ones."""
        try:
            self.datastore.pool.check()
        except Exception as error:  # noqa: BLE001 - only an optimisation; the caller retries
            log.warning("could not check the pool's connections", error=str(error))

    def append(self, appends: Sequence[Append]) -> None:
        """Record every append's events (setting their `ids`) and complete their claims, in
        one statement (sql/append.sql): one round trip per batch, one transaction."""
        events = [e for a in appends for e in a.events]
        kept, last = [], 0
        for a in appends:
            last += len(a.events)
            if a.claim is not None:
                c = a.claim
                kept.append({"scope": c.scope, "key": c.key, "hash": c.digest.hex(), "status": c.status,
                             "answer": c.answer(str(a.events[0].originator_id)), "last": last})
        read = [(i, v) for a in appends for i, v in a.read.items()]
        columns = ([e.originator_id for e in events], [e.originator_version for e in events],
                   [e.topic for e in events], [e.state for e in events], [c for a in appends for c in a.contracts],
                   [i for i, _ in read], [v for _, v in read])
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(self._append_statement, (*columns, json.dumps(kept), self._lock_timeout), prepare=True)
            except psycopg.errors.UniqueViolation as error:
                if error.diag.table_name == "idempotency":
                    raise KeyKept("an answer is already kept under this idempotency key") from None
                raise  # another writer recorded this version first
            except psycopg.errors.SerializationFailure:
                raise StaleRead("decided on a cached state that another writer has since changed") from None
            row = curs.fetchone()
        ids: list[int] = list(row["ids"] or []) if row else []
        start = 0
        for a in appends:
            a.ids, start = ids[start:start + len(a.events)], start + len(a.events)

    @functools.cached_property
    def _append_statement(self) -> str:
        # Rendered once: psycopg would compose a `Composed` again on every execute.
        schema = Identifier(self.datastore.schema)
        return SQL("SELECT {schema}.ticketing_append(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[],"
                   " %s::uuid[], %s::uuid[], %s::bigint[], %s::jsonb, %s) AS ids").format(schema=schema).as_string()

    @property
    def _lock_timeout(self) -> str:
        return f"{self.datastore.lock_timeout}s"

    def committed(self, events: Sequence[StoredEvent]) -> list[int] | None:
        """The ids of these exact events if they are in the store (a commit whose answer was
        lost), None if none of them is. Stored bytes include the event's microsecond
        timestamp, so another writer's event never matches."""
        keys = [(e.originator_id, e.originator_version) for e in events]
        statement = SQL(
            "SELECT originator_id, originator_version, state, notification_id FROM {schema}.{table}"
            " WHERE (originator_id, originator_version) IN (SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, ([k[0] for k in keys], [k[1] for k in keys]))
            found = {(r["originator_id"], r["originator_version"]): r for r in curs.fetchall()}
        if not found:
            return None
        rows = [found.get(k) for k in keys]
        if all(r is not None and bytes(r["state"]) == e.state for r, e in zip(rows, events, strict=True)):
            return [r["notification_id"] for r in rows if r is not None]
        return None
