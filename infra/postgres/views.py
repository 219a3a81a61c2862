"""PostgreSQL implementations of the projections' view ports, bound to the runner's open
transaction; a `schema` names where the read model lives (rebuilds use a fresh one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql


class PgTicketsView:
    """The ticket list in {schema}.tickets."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.table = sql.Identifier(schema, "tickets")

    def add(self, row: dict[str, Any]) -> None:
        cols = list(row)
        self.conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (ticket_id) DO NOTHING").format(
                self.table, sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            ),
            list(row.values()),
        )

    def update(self, ticket_id: str, changes: dict[str, Any]) -> None:
        self.conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE ticket_id = %s").format(
                self.table,
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes),
            ),
            [*changes.values(), ticket_id],
        )

    def add_minutes(self, ticket_id: str, minutes: int, at: datetime, position: int) -> None:
        self.conn.execute(
            sql.SQL("UPDATE {} SET minutes = minutes + %s, updated_at = %s, position = %s"
                    " WHERE ticket_id = %s").format(self.table),
            (minutes, at, position, ticket_id),
        )
