"""Reads of the read-model tables, and `wait_for`: answer only once a projection has consumed
at least the asked store position (counting the events it ignores), or 504 after 10 s."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from domain.availability import month_bounds
from domain.errors import InvalidInput
from infra.http.errors import WaitTimeout

WAIT_LIMIT = 10.0


class ReadModels:
    """The query side: a pool on the read-model schemas."""

    def __init__(self, pool: ConnectionPool, topic: str) -> None:
        self.pool = pool
        self.topic = topic

    def consumed(self, projection: str) -> int:
        """The store position up to which the projection has consumed everything."""
        row = self.one(
            f"SELECT position AS p FROM proj_{projection}.watermark WHERE topic = %s",
            (self.topic,),
        )
        return int(row["p"]) if row and row["p"] is not None else 0

    def wait_for(self, projection: str, position: int | None) -> None:
        if not position:
            return
        deadline = time.monotonic() + WAIT_LIMIT
        delay = 0.002
        while (reached := self.consumed(projection)) < position:
            if time.monotonic() > deadline:
                raise WaitTimeout(projection, position, reached)
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def one(self, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchone()  # type: ignore[arg-type]

    def all(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()  # type: ignore[arg-type]


def month_window(month: str | None, time_zone: str, now: datetime) -> tuple[str, datetime, datetime]:
    """The asked month ("YYYY-MM", default: the one holding `now` in the zone) and its UTC bounds."""
    month = month or now.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m")
    try:
        start, end = month_bounds(month, time_zone)
    except ValueError as error:
        raise InvalidInput(str(error), {"month": month}) from None
    return month, start, end
