"""Reads of the read-model tables, and `wait_for`: answer only once a projection has consumed
at least the asked store position (counting the events it ignores or parks), or 504 after
10 s; a position beyond the store's head can never be reached, so it is refused at once (422).

Waiting holds no thread: waiting requests sleep in the event loop while one poller per API
process reads every projection's watermark (one query, every few milliseconds, only while
somebody waits) and wakes them. So `/health` and commands still answer while many requests wait.

The query routes' shared parameters live here too: the path ids (parsed as UUIDs), `month`,
and the reports' `known_at` (`as_known`: the instant the report is computed as of, or None).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
import structlog
from fastapi import Depends, Path, Query, Request
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from domain import values
from domain.errors import InvalidInput
from infra import postgres
from infra.http import models
from infra.http.errors import WaitTimeout, answers

# A path id, parsed as a UUID (one that is no UUID answers 404), given to the route under its
# own name so that the route's canonical text of it may keep the path's name.
Contract = Annotated[UUID, Path(alias="contract_id", description="a contract id (UUID); any other text answers 404")]
Ticket = Annotated[UUID, Path(alias="ticket_id", description="a ticket id (UUID); any other text answers 404")]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: this month")]
KnownAt = Annotated[models.Instant | None, Query(description=(
    "commit time (ISO-8601 with offset, not in the future): the report computed by today's rules from the"
    " events the store had committed at or before it, as of that instant; default: the read model, now"))]

WAIT_LIMIT = 10.0
POLL = 0.003
log = structlog.get_logger("http")


class ReadModels:
    """The query side: a pool on the read-model schemas."""

    def __init__(self, pool: ConnectionPool, topic: str) -> None:
        self.pool = pool
        self.topic = topic

    def one(self, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        return postgres.run(self.pool, lambda conn: conn.cursor(row_factory=dict_row).execute(
            query, params).fetchone())

    def all(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return postgres.run(self.pool, lambda conn: conn.cursor(row_factory=dict_row).execute(
            query, params).fetchall())


class Watermarks:
    """How far each projection has consumed, watched on behalf of waiting requests."""

    def __init__(self, url: str, topic: str, projections: list[str], store_table: str) -> None:
        self.url, self.topic = url, topic
        self.read_marks = " UNION ALL ".join(
            [f"SELECT '' AS projection, coalesce(max(notification_id), 0) FROM {store_table}",
             *(f"SELECT '{p}', position FROM proj_{p}.watermark WHERE topic = %(topic)s" for p in projections)])
        self.reached: dict[str, int] = {}
        self.head = 0  # the last recorded position, as of the last read
        self.rounds = 0  # reads so far
        self.waiting = 0
        self.changed: asyncio.Condition | None = None
        self.poller: asyncio.Task[None] | None = None

    async def until(self, projection: str, position: int | None) -> None:
        if not position or self.reached.get(projection, 0) >= position:
            return
        self.waiting += 1
        try:
            changed = self._watch()
            async with asyncio.timeout(WAIT_LIMIT), changed:
                if position > self.head:  # maybe just recorded: look again before refusing
                    seen = self.rounds
                    await changed.wait_for(lambda: self.rounds > seen)
                    if position > self.head:
                        raise InvalidInput("wait_for lies beyond the last recorded position", {"head": self.head})
                await changed.wait_for(lambda: self.reached.get(projection, 0) >= position)
        except TimeoutError:
            raise WaitTimeout(projection, position, self.reached.get(projection, 0)) from None
        finally:
            self.waiting -= 1

    def _watch(self) -> asyncio.Condition:
        if self.changed is None:
            self.changed = asyncio.Condition()
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll(self.changed))
        return self.changed

    async def _poll(self, changed: asyncio.Condition) -> None:
        """Read the watermarks while anybody waits; wake the waiters after each read."""
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while self.waiting:
                try:
                    conn = conn or await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                    rows = dict(await (await conn.execute(self.read_marks, {"topic": self.topic})).fetchall())
                    self.head = int(rows.pop(""))
                    self.reached.update({p: max(self.reached.get(p, 0), int(v)) for p, v in rows.items()})
                    self.rounds += 1
                except psycopg.Error as error:
                    log.warning("cannot read the watermarks", error=str(error))
                    conn = None
                    await asyncio.sleep(0.5)
                async with changed:
                    changed.notify_all()
                await asyncio.sleep(POLL)
        finally:
            if conn is not None:
                await conn.close()


def as_known(known_at: datetime | None, now: datetime) -> datetime | None:
    """The instant a report asked `known_at` is computed as of: `known_at` itself, in UTC (not
    after now plus the allowed clock skew, as for the history; 422), never later than now."""
    if known_at is None:
        return None
    return min(values.instant(known_at, now + values.FUTURE_SKEW), now)


def waited(projection: str) -> Any:
    """A route dependency: `?wait_for=` for this projection (the API's Watermarks)."""

    @answers(422, 504)  # beyond the last recorded position; not reached in time
    async def wait(request: Request, wait_for: Annotated[int | None, Query(ge=0, le=2**63 - 1, description=(
            "answer once the read model consumed this store position (504 after 10 s)"))] = None) -> None:
        await request.app.state.backend.waits.until(projection, wait_for)

    return Depends(wait)
