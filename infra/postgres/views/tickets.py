"""The ticket list read model's PostgreSQL view, bound to the runner's open transaction, in the
schema the read model lives in (its routes are infra/http/routes/tickets.py)."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from infra.postgres.views.rows import Rows
from projections.envelope import Fold


class PgTicketsView:
    """The ticket list in {schema}.tickets: the projection's folds of a batch run at `flush` on
    the rows read in one query, and the rows they changed are written back in one upsert:
    per-event statements cost a round trip each."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.rows: Rows[str, dict[str, Any]] = Rows(self._load)
        self.erased: list[str] = []

    def _load(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return {r["ticket_id"]: r for r in cur.execute(_statements(self.schema)["load"], (ids,)).fetchall()}

    def prefetch(self, contracts: Collection[str]) -> None:
        """No row is kept by contract: the tickets' are read at flush, in one query."""

    def change(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        return self.rows.change(ticket_id, fold, args)

    def erase(self, contract_id: str) -> None:
        self.erased.append(contract_id)

    def flush(self) -> int:
        """Write the batch; how many of its changes were declined (events already applied)."""
        declined = self.rows.settle()
        changed = self.rows.take_changed()
        if changed:
            rows = [{c: _json(row[c]) for c in COLUMNS} for row in changed.values()]
            self.conn.execute(_statements(self.schema)["upsert"], (json.dumps(rows),))
        if self.erased:  # after the upsert: rows this batch wrote are blanked too
            self.conn.execute(_statements(self.schema)["erase"], (self.erased,))
            self.rows.loaded.clear()
            self.erased = []
        return declined


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


SQL_FILES = ("tickets",)
COLUMNS = ("ticket_id", "contract_id", "title", "reporter", "channel", "priority", "category",
           "status", "opened_at", "updated_at", "minutes", "position")


@lru_cache(maxsize=64)
def _statements(schema: str) -> dict[str, Any]:
    table = sql.Identifier(schema, "tickets")
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    return {
        "load": sql.SQL("SELECT * FROM {} WHERE ticket_id = ANY(%s)").format(table),
        "erase": sql.SQL("UPDATE {} SET title = NULL, reporter = NULL WHERE contract_id = ANY(%s)").format(table),
        "upsert": sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
            " ON CONFLICT (ticket_id) DO UPDATE SET ({columns}) = ROW({excluded})"
        ).format(table=table, columns=columns,
                 excluded=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in COLUMNS)),
    }


