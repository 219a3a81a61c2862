"""The ledger read model's PostgreSQL view (its notices are encoded by infra/kafka/notices.py,
its routes are infra/http/routes/ledger.py).

The view is bound to the runner's open transaction and caches what a batch touches: a book or
a contract's periods are read once per batch and kept in memory while the batch's events
change them; the projection's folds of the tickets' costs run at `flush()` on the costs read
in one query; then everything is written back with the batch's entries and statements, each
table in one statement, so a 5,000-event batch costs a few statements per contract, not per
event. Notices go to the outbox in the same transaction, keyed by contract id.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import psycopg

from infra.kafka.notices import LEDGER_TOPIC, encode_balance
from infra.postgres.outbox import enqueue
from infra.postgres.views.rows import Rows
from projections.envelope import Fold
from projections.ledger_rows import (
    Book,
    Entry,
    Notice,
    Period,
    Statement,
    TicketCost,
)

SQL_FILES = tuple(f"ledger_{t}" for t in ("contracts", "periods", "entries", "tickets", "statements"))
_SETTINGS = ("threshold", "grant", "period_months", "allowance_kind", "allowance_period", "charges")
# Each table's columns in the order the view writes them, with their SQL types.
_COLUMNS = {
    "contracts": (("contract_id", "text"), ("plan", "text"), ("scheme", "text"), ("time_zone", "text"),
                  ("starts_on", "text"), ("status", "text"), ("periods", "text[]"), ("settings", "jsonb"),
                  ("renews_at", "timestamptz"), ("position", "bigint")),
    "periods": (("contract_id", "text"), ("label", "text"), ("starts_at", "timestamptz"), ("granted", "bigint"),
                ("used", "bigint"), ("minutes", "bigint"), ("entries", "int"), ("low", "boolean"),
                ("exhausted", "boolean"), ("low_crossings", "int"), ("exhausted_crossings", "int"),
                ("position", "bigint")),
    "entries": (("position", "bigint"), ("contract_id", "text"), ("period", "text"), ("ticket_id", "text"),
                ("kind", "text"), ("minutes", "int"), ("charge", "int"), ("overage", "int"),
                ("at", "timestamptz"), ("engineer", "text")),
    "tickets": (("ticket_id", "text"), ("contract_id", "text"), ("minutes", "bigint"), ("charge", "bigint"),
                ("overage", "bigint"), ("position", "bigint")),
    "statements": (("ticket_id", "text"), ("position", "bigint"), ("contract_id", "text"),
                   ("resolved_at", "timestamptz"), ("period", "text"), ("unit", "text"), ("minutes", "bigint"),
                   ("charge", "bigint"), ("overage", "bigint"), ("balance_after", "bigint")),
}


# -- the view -----------------------------------------------------------------------------

def book_from_row(row: dict[str, Any]) -> Book:
    settings = row["settings"]
    return Book(row["contract_id"], row["plan"], row["scheme"], row["time_zone"], row["starts_on"],
                periods=list(row["periods"]), status=row["status"], position=row["position"],
                **{k: settings.get(k) for k in _SETTINGS})


class PgLedgerView:
    """The ledger in {schema}.contracts, periods, entries, tickets and statements."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.books: Rows[str, Book] = Rows(self._books)
        self.periods: Rows[str, dict[str, Period]] = Rows(self._periods)  # a contract's, by label
        self.tickets: Rows[str, TicketCost] = Rows(self._tickets)
        self.dirty_periods: set[tuple[str, str]] = set()
        self.entries: list[tuple[Any, ...]] = []
        self.statements: list[tuple[Any, ...]] = []
        self.erased: list[str] = []

    def _rows(self, query: str, keys: list[str]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(query.replace("{s}", self.schema), (keys,)).fetchall()

    def _books(self, ids: list[str]) -> dict[str, Book]:
        rows = self._rows("SELECT * FROM {s}.contracts WHERE contract_id = ANY(%s)", ids)
        return {r["contract_id"]: book_from_row(r) for r in rows}

    def _periods(self, ids: list[str]) -> dict[str, dict[str, Period]]:
        found: dict[str, dict[str, Period]] = {c: {} for c in ids}
        for r in self._rows("SELECT * FROM {s}.periods WHERE contract_id = ANY(%s)", ids):
            found[r["contract_id"]][r["label"]] = Period(**r)
        return found

    def _tickets(self, ids: list[str]) -> dict[str, TicketCost]:
        with self.conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:  # a batch reads thousands
            rows = cur.execute(
                f"SELECT ticket_id, contract_id, minutes, charge, overage, position FROM {self.schema}.tickets"
                " WHERE ticket_id = ANY(%s)", (ids,)).fetchall()
        return {r[0]: TicketCost(*r) for r in rows}

    # -- the rows the projection gets and puts ----------------------------------------------

    def prefetch(self, contracts: Collection[str]) -> None:
        self.books.prefetch(contracts)
        self.periods.prefetch(contracts)

    def book(self, contract_id: str) -> Book | None:
        return self.books.get(contract_id)

    def period(self, contract_id: str, label: str) -> Period | None:
        return (self.periods.get(contract_id) or {}).get(label)

    def put_book(self, book: Book) -> None:
        self.books.put(book.contract_id, book)

    def put_period(self, period: Period) -> None:
        labels = self.periods.get(period.contract_id)
        if labels is None:  # a contract signed in this batch
            self.periods.put(period.contract_id, labels := {})
        labels[period.label] = period
        self.dirty_periods.add((period.contract_id, period.label))

    def add_entry(self, e: Entry) -> None:
        self.entries.append((e.position, e.contract_id, e.period, e.ticket_id, e.kind, e.minutes,
                             e.charge, e.overage, e.at, e.engineer))

    def change_ticket(self, ticket_id: str, fold: Fold, *args: Any) -> bool:
        return self.tickets.change(ticket_id, fold, args)

    def add_statement(self, s: Statement) -> None:
        self.statements.append((s.ticket_id, s.position, s.contract_id, s.resolved_at, s.period, s.unit,
                                s.minutes, s.charge, s.overage, s.balance_after))

    def erase(self, contract_id: str) -> None:
        self.erased.append(contract_id)

    def notify(self, notice: Notice) -> None:
        value, headers = encode_balance(notice)
        enqueue(self.conn, self.schema, notice.notice_id, LEDGER_TOPIC, notice.contract_id, value, headers)

    # -- the writes -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what the batch changed; called by the runner before its checkpoint. How many
        of its changes were declined (events a ticket's cost had already applied)."""
        declined = self.tickets.settle()  # first: a resolution's fold adds its statement
        books = self.books.take_changed().values()
        periods = [p for c, label in self.dirty_periods if (p := (self.periods.get(c) or {}).get(label))]
        with self.conn.cursor() as cur:
            self._insert(cur, "contracts", [
                (b.contract_id, b.plan, b.scheme, b.time_zone, b.starts_on, b.status, b.periods,
                 {k: getattr(b, k) for k in _SETTINGS}, b.renews_at, b.position) for b in books],
                "ON CONFLICT (contract_id) DO UPDATE SET status = EXCLUDED.status,"
                " periods = EXCLUDED.periods, renews_at = EXCLUDED.renews_at, position = EXCLUDED.position")
            self._insert(cur, "periods", [tuple(getattr(p, c) for c, _ in _COLUMNS["periods"]) for p in periods],
                         _update("(contract_id, label)", _COLUMNS["periods"][3:]))
            self._insert(cur, "entries", self.entries)
            self._insert(cur, "tickets", [tuple(getattr(t, c) for c, _ in _COLUMNS["tickets"])
                                          for t in self.tickets.take_changed().values()],
                         _update("(ticket_id)", _COLUMNS["tickets"][2:]))
            self._insert(cur, "statements", self.statements)
            if self.erased:  # after the inserts: entries this batch wrote are blanked too
                cur.execute(f"UPDATE {self.schema}.entries SET engineer = NULL WHERE contract_id = ANY(%s)",
                            (self.erased,))
                self.erased = []
        self.periods.take_changed()
        self.dirty_periods.clear()
        self.entries, self.statements = [], []
        return declined

    def _insert(self, cur: psycopg.Cursor[Any], table: str, rows: list[Any], conflict: str = "") -> None:
        """All rows in one statement, as one JSON parameter: close to COPY's speed, and unlike
        COPY or one INSERT per row, as fast inside the runner's pipeline mode as outside it."""
        if not rows:
            return
        columns = _COLUMNS[table]
        select = ", ".join(_from_json(i, t) for i, (_, t) in enumerate(columns))
        cur.execute(
            f"INSERT INTO {self.schema}.{table} ({', '.join(c for c, _ in columns)}) SELECT {select}"
            f" FROM jsonb_array_elements(%s::jsonb) AS r {conflict}",
            [json.dumps(rows, default=_iso)],
        )


def _update(key: str, columns: tuple[tuple[str, str], ...]) -> str:
    """Put rows by key: a row already there takes the new values of `columns`."""
    return f"ON CONFLICT {key} DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in columns)


def _from_json(i: int, sql_type: str) -> str:
    if sql_type == "text[]":
        return f"ARRAY(SELECT jsonb_array_elements_text(r->{i}))"
    return f"r->{i}" if sql_type == "jsonb" else f"(r->>{i})::{sql_type}"


def _iso(value: Any) -> str:
    return value.isoformat()  # type: ignore[no-any-return]  # json.dumps hands any value to `default`


