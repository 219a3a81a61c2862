"""The ticket list read model: its PostgreSQL view (bound to the runner's open transaction, in
the schema the read model lives in) and its query routes."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter
from psycopg import sql
from psycopg.rows import dict_row

from domain.errors import NotFound
from infra.http.readmodels import waited
from infra.readmodels import ProjectionSpec
from projections.tickets import InMemoryTicketsView, TicketsProjection


class PgTicketsView:
    """The ticket list in {schema}.tickets. A batch's commands are replayed at `flush` on the
    touched rows (read in one query) and written back in one upsert: per-event statements
    cost a round trip each."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.ops: list[tuple[str, Any, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.ops.append(("add", row["ticket_id"], row))

    def update(self, ticket_id: str, changes: dict[str, Any]) -> None:
        self.ops.append(("update", ticket_id, changes))

    def add_minutes(self, ticket_id: str, minutes: int, at: datetime, position: int) -> None:
        self.ops.append(("minutes", ticket_id, (minutes, at, position)))

    def flush(self) -> None:
        if not self.ops:
            return
        ids = list({ticket_id for _, ticket_id, _ in self.ops})
        with self.conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(_statements(self.schema)["load"], (ids,)).fetchall()
        memory = InMemoryTicketsView({row["ticket_id"]: row for row in found})
        for op, ticket_id, arg in self.ops:
            if op == "add":
                memory.rows.setdefault(ticket_id, dict(arg))  # a ticket is opened once
            elif ticket_id not in memory.rows:
                continue  # its opening was parked: nothing to change, as an UPDATE of no row
            elif op == "update":
                memory.update(ticket_id, arg)
            else:
                memory.add_minutes(ticket_id, *arg)
        rows = [{c: _json(row[c]) for c in COLUMNS} for row in memory.rows.values()]
        self.conn.execute(_statements(self.schema)["upsert"], (json.dumps(rows),))
        self.ops = []


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


COLUMNS = ("ticket_id", "contract_id", "title", "reporter", "channel", "priority", "category",
           "status", "opened_at", "updated_at", "minutes", "position")


@lru_cache(maxsize=64)
def _statements(schema: str) -> dict[str, Any]:
    table = sql.Identifier(schema, "tickets")
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    return {
        "load": sql.SQL("SELECT * FROM {} WHERE ticket_id = ANY(%s)").format(table),
        "upsert": sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
            " ON CONFLICT (ticket_id) DO UPDATE SET ({columns}) = ROW({excluded})"
        ).format(table=table, columns=columns,
                 excluded=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in COLUMNS)),
    }


Waited = Annotated[None, waited("tickets")]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(tags=["tickets"])

    @r.get("/tickets/{ticket_id}")
    def ticket(ticket_id: UUID, _: Waited) -> dict[str, Any]:
        ticket_id = str(ticket_id)  # type: ignore[assignment]  # canonical text, as stored
        row = backend.reads.one("SELECT * FROM proj_tickets.tickets WHERE ticket_id = %s", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        return row

    @r.get("/contracts/{contract_id}/tickets")
    def tickets(contract_id: UUID, _: Waited, status: str | None = None) -> dict[str, Any]:
        contract_id = str(contract_id)  # type: ignore[assignment]  # canonical text, as stored
        rows = backend.reads.all(
            "SELECT * FROM proj_tickets.tickets WHERE contract_id = %s"
            " AND (%s::text IS NULL OR status = %s) ORDER BY position",
            (contract_id, status, status),
        )
        return {"tickets": rows}

    return r


SPEC = ProjectionSpec("tickets", TicketsProjection, ("tickets",), PgTicketsView, routes)
