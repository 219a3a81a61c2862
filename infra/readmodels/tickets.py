"""The ticket list read model: its PostgreSQL view (bound to the runner's open transaction, in
the schema the read model lives in) and its query routes."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from fastapi import APIRouter
from psycopg import sql

from domain.errors import NotFound
from infra.readmodels import ProjectionSpec
from projections.tickets import TicketsProjection


class PgTicketsView:
    """The ticket list in {schema}.tickets; statements composed once per schema."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.sql = _statements(schema)

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(self.sql["add"], [row[c] for c in COLUMNS])

    def update(self, ticket_id: str, changes: dict[str, Any]) -> None:
        self.conn.execute(_update(self.schema, tuple(changes)), [*changes.values(), ticket_id])

    def add_minutes(self, ticket_id: str, minutes: int, at: datetime, position: int) -> None:
        self.conn.execute(self.sql["minutes"], (minutes, at, position, ticket_id))


COLUMNS = ("ticket_id", "contract_id", "title", "reporter", "channel", "priority", "category",
           "status", "opened_at", "updated_at", "minutes", "position")


@lru_cache(maxsize=64)
def _statements(schema: str) -> dict[str, Any]:
    table = sql.Identifier(schema, "tickets")
    return {
        "add": sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (ticket_id) DO NOTHING").format(
            table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
        ),
        "minutes": sql.SQL("UPDATE {} SET minutes = minutes + %s, updated_at = %s, position = %s"
                           " WHERE ticket_id = %s").format(table),
    }


@lru_cache(maxsize=256)
def _update(schema: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("UPDATE {} SET {} WHERE ticket_id = %s").format(
        sql.Identifier(schema, "tickets"), sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns),
    )


def routes(backend: Any) -> APIRouter:
    r = APIRouter(tags=["tickets"])

    @r.get("/tickets/{ticket_id}")
    def ticket(ticket_id: str, wait_for: int | None = None) -> dict[str, Any]:
        backend.reads.wait_for("tickets", wait_for)
        row = backend.reads.one("SELECT * FROM proj_tickets.tickets WHERE ticket_id = %s", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        return row

    @r.get("/contracts/{contract_id}/tickets")
    def tickets(contract_id: str, wait_for: int | None = None, status: str | None = None) -> dict[str, Any]:
        backend.reads.wait_for("tickets", wait_for)
        rows = backend.reads.all(
            "SELECT * FROM proj_tickets.tickets WHERE contract_id = %s"
            " AND (%s::text IS NULL OR status = %s) ORDER BY position",
            (contract_id, status, status),
        )
        return {"tickets": rows}

    return r


SPEC = ProjectionSpec("tickets", TicketsProjection, ("tickets",), PgTicketsView, routes)
