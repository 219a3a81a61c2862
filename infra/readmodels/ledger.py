"""The ledger read model: its PostgreSQL view, the Avro codec of its notices, and its routes.

The view is bound to the runner's open transaction and caches what a batch touches: a book
or period is read once per batch, kept in memory while the batch's events change it, and
written back by `flush()` with the batch's entries (COPY), ticket totals and statements, so
a 5,000-event batch costs a few statements per contract instead of a few per event. Notices
go to the outbox in the same transaction, encoded with schemas/ticketing.v1.LowBalanceReached
and BalanceExhausted, on `ticketing.notices.ledger.v1`, keyed by contract id.
Routes: `GET /contracts/{id}/ledger[?period=]` and `GET /tickets/{id}/statement`.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import fastavro
import psycopg
from fastapi import APIRouter
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from psycopg import pq
from psycopg.types.json import Jsonb

from consumers.outbox import enqueue
from domain.billing import allowance_period
from domain.errors import NotFound
from infra.avro import H_FINGERPRINT, SCHEMA_DIR
from infra.readmodels import ProjectionSpec
from projections.ledger import (
    EXHAUSTED,
    LOW,
    Book,
    Entry,
    LedgerProjection,
    Notice,
    Period,
    Statement,
    local_midnight,
    next_period_start,
)

NOTICE_TOPIC = "ticketing.notices.ledger.v1"
H_NOTICE_TYPE = "ticketing-notice-type"
NOTICE_SCHEMAS = {LOW: "ticketing.v1.LowBalanceReached", EXHAUSTED: "ticketing.v1.BalanceExhausted"}
SQL_FILES = tuple(f"ledger_{t}" for t in ("contracts", "periods", "entries", "tickets", "statements"))
_SETTINGS = ("threshold", "grant", "period_months", "allowance_kind", "allowance_period", "charges")
_PERIOD_COLS = ("contract_id", "label", "starts_at", "granted", "used", "minutes", "entries", "low",
                "exhausted", "low_crossings", "exhausted_crossings")
_ENTRY_COLS = ("position", "contract_id", "period", "ticket_id", "kind", "minutes", "charge", "overage",
               "at", "engineer")


# -- notices ------------------------------------------------------------------------------

@cache
def _notice_schema(kind: str) -> tuple[Any, str]:
    parsed = load_schema(str(SCHEMA_DIR / f"{NOTICE_SCHEMAS[kind]}.avsc"), _write_hint=False)
    return parsed, fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")


def encode_notice(notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its schema."""
    parsed, print_ = _notice_schema(notice.kind)
    record = {
        "notice_id": notice.notice_id, "contract_id": notice.contract_id, "period": notice.period,
        "crossing": notice.crossing, "unit": notice.unit, "granted": notice.granted,
        "used": notice.used, "balance": notice.granted - notice.used, "ticket_id": notice.ticket_id,
        "position": notice.position, "occurred_at": notice.occurred_at,
    }
    if notice.kind == LOW:
        record["threshold"] = notice.threshold
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record, strict=True)
    return buffer.getvalue(), {H_NOTICE_TYPE: NOTICE_SCHEMAS[notice.kind], H_FINGERPRINT: print_}


def decode_notice(value: bytes, headers: list[tuple[str, bytes]]) -> tuple[str, dict[str, Any]]:
    """The schema name and record of a notice message (for consumers and tests)."""
    name = dict(headers)[H_NOTICE_TYPE].decode()
    kind = next(k for k, n in NOTICE_SCHEMAS.items() if n == name)
    record = fastavro.schemaless_reader(io.BytesIO(value), _notice_schema(kind)[0], None)
    assert isinstance(record, dict)
    return name, record


# -- the view -----------------------------------------------------------------------------

def book_from_row(row: dict[str, Any]) -> Book:
    settings = row["settings"]
    return Book(row["contract_id"], row["plan"], row["scheme"], row["time_zone"], row["starts_on"],
                periods=list(row["periods"]), status=row["status"], **{k: settings.get(k) for k in _SETTINGS})


class PgLedgerView:
    """The ledger in {schema}.contracts, periods, entries, tickets and statements."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.books: dict[str, Book | None] = {}
        self.periods: dict[tuple[str, str], Period | None] = {}
        self.dirty_books: set[str] = set()
        self.dirty_periods: set[tuple[str, str]] = set()
        self.entries: list[tuple[Any, ...]] = []
        self.tickets: dict[str, list[Any]] = {}
        self.statements: list[tuple[Any, ...]] = []

    def _rows(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(query.replace("{s}", self.schema), params).fetchall()  # type: ignore[arg-type]

    def book(self, contract_id: str) -> Book | None:
        if contract_id not in self.books:
            rows = self._rows("SELECT * FROM {s}.contracts WHERE contract_id = %s", (contract_id,))
            self.books[contract_id] = book_from_row(rows[0]) if rows else None
        return self.books[contract_id]

    def period(self, contract_id: str, label: str) -> Period | None:
        key = (contract_id, label)
        if key not in self.periods:
            rows = self._rows("SELECT * FROM {s}.periods WHERE contract_id = %s AND label = %s", key)
            self.periods[key] = Period(**rows[0]) if rows else None
        return self.periods[key]

    def put_book(self, book: Book) -> None:
        self.books[book.contract_id] = book
        self.dirty_books.add(book.contract_id)

    def put_period(self, period: Period) -> None:
        key = (period.contract_id, period.label)
        self.periods[key] = period
        self.dirty_periods.add(key)

    def add_entry(self, e: Entry) -> None:
        self.entries.append((e.position, e.contract_id, e.period, e.ticket_id, e.kind, e.minutes,
                             e.charge, e.overage, e.at, e.engineer))
        totals = self.tickets.setdefault(e.ticket_id, [e.contract_id, 0, 0, 0])
        totals[1] += e.minutes
        totals[2] += e.charge
        totals[3] += e.overage

    def ticket_totals(self, ticket_id: str) -> tuple[int, int, int]:
        rows = self._rows("SELECT minutes, charge, overage FROM {s}.tickets WHERE ticket_id = %s", (ticket_id,))
        stored = rows[0] if rows else {"minutes": 0, "charge": 0, "overage": 0}
        pending = self.tickets.get(ticket_id, [None, 0, 0, 0])
        return stored["minutes"] + pending[1], stored["charge"] + pending[2], stored["overage"] + pending[3]

    def add_statement(self, s: Statement) -> None:
        self.statements.append((s.ticket_id, s.position, s.contract_id, s.resolved_at, s.period, s.unit,
                                s.minutes, s.charge, s.overage, s.balance_after))

    def notify(self, notice: Notice) -> None:
        value, headers = encode_notice(notice)
        enqueue(self.conn, self.schema, notice.notice_id, NOTICE_TOPIC, notice.contract_id, value, headers)

    def flush(self) -> None:
        """Write what the batch changed; called by the runner before its checkpoint."""
        s = self.schema
        with self.conn.cursor() as cur:
            books = [b for c in self.dirty_books if (b := self.books[c]) is not None]
            cur.executemany(
                f"INSERT INTO {s}.contracts VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"  # type: ignore[arg-type]
                " ON CONFLICT (contract_id) DO UPDATE SET status = EXCLUDED.status,"
                " periods = EXCLUDED.periods, renews_at = EXCLUDED.renews_at",
                [(b.contract_id, b.plan, b.scheme, b.time_zone, b.starts_on, b.status, b.periods,
                  Jsonb({k: getattr(b, k) for k in _SETTINGS}), b.renews_at) for b in books],
            )
            periods = [p for k in self.dirty_periods if (p := self.periods[k]) is not None]
            cur.executemany(
                f"INSERT INTO {s}.periods ({', '.join(_PERIOD_COLS)}) VALUES ({', '.join(['%s'] * 11)})"  # type: ignore[arg-type]
                " ON CONFLICT (contract_id, label) DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in _PERIOD_COLS[3:]),
                [tuple(getattr(p, c) for c in _PERIOD_COLS) for p in periods],
            )
            if self.entries and self.conn.pgconn.pipeline_status == pq.PipelineStatus.OFF:
                with cur.copy(f"COPY {s}.entries ({', '.join(_ENTRY_COLS)}) FROM STDIN") as copy:  # type: ignore[arg-type]
                    for row in self.entries:
                        copy.write_row(row)
            else:  # COPY cannot run in pipeline mode, where a batch of inserts is next best
                cur.executemany(
                    f"INSERT INTO {s}.entries ({', '.join(_ENTRY_COLS)}) VALUES ({', '.join(['%s'] * 10)})",  # type: ignore[arg-type]
                    self.entries,
                )
            cur.executemany(
                f"INSERT INTO {s}.tickets VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ticket_id) DO UPDATE"  # type: ignore[arg-type]
                f" SET minutes = {s}.tickets.minutes + EXCLUDED.minutes,"
                f" charge = {s}.tickets.charge + EXCLUDED.charge, overage = {s}.tickets.overage + EXCLUDED.overage",
                [(t, *totals) for t, totals in self.tickets.items()],
            )
            cur.executemany(
                f"INSERT INTO {s}.statements VALUES ({', '.join(['%s'] * 10)}) ON CONFLICT DO NOTHING",  # type: ignore[arg-type]
                self.statements,
            )
        self.dirty_books.clear()
        self.dirty_periods.clear()
        self.entries, self.tickets, self.statements = [], {}, []


# -- queries ------------------------------------------------------------------------------

_LABELS = {"quarter": r"(\d{4})-Q([1-4])", "month": r"(\d{4})-(\d{2})", "year": r"(\d{4})"}


def allowance_start(label: str, period: str, zone: str) -> datetime | None:
    """The first instant of an allowance period named like "2026-Q1", or None if malformed."""
    found = re.fullmatch(_LABELS[period], label)
    if not found:
        return None
    year, part = int(found[1]), int(found[2]) if found.lastindex == 2 else 1
    month = (part - 1) * 3 + 1 if period == "quarter" else part
    if not 1 <= month <= 12:
        return None
    return local_midnight(date(year, month, 1), zone)


def period_bounds(book: Book, label: str, starts_at: datetime) -> tuple[datetime, datetime | None]:
    if book.scheme == "allowance":
        start, end, _ = allowance_period(starts_at, book.time_zone, book.allowance_period or "quarter")
        return start, end
    start = local_midnight(label, book.time_zone)
    later = [p for p in book.periods if p > label]
    if later:
        return start, local_midnight(later[0], book.time_zone)
    if book.scheme == "bank" and book.period_months:
        end = next_period_start(date.fromisoformat(book.starts_on), date.fromisoformat(label), book.period_months)
        return start, local_midnight(end, book.time_zone)
    return start, None


def ledger_answer(book: Book, period: Period, labels: list[str], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of one contract's ledger in one period (DESIGN §5, plus period fields)."""
    balance = period.balance
    start, end = period_bounds(book, period.label, period.starts_at)
    return {
        "contract_id": book.contract_id, "plan": book.plan, "scheme": book.scheme, "unit": book.unit,
        "status": book.status, "period": period.label, "periods": labels,
        "starts_at": start.isoformat(), "ends_at": end and end.isoformat(),
        "renews_at": book.renews_at and book.renews_at.isoformat(),
        "granted": period.granted, "used": period.used, "balance": balance, "minutes": period.minutes,
        "overage": max(0, -balance) if balance is not None else 0,
        "low_balance_threshold": book.threshold,
        "low_balance": balance is not None and book.threshold is not None and balance <= book.threshold,
        "exhausted": balance is not None and balance <= 0,
        "entries": [{**e, "at": e["at"].isoformat()} for e in entries],
    }


def routes(backend: Any) -> APIRouter:
    r = APIRouter(tags=["ledger"])
    reads = backend.reads
    entry_cols = "ticket_id, kind, minutes, charge, overage, at, engineer, position"

    @r.get("/contracts/{contract_id}/ledger")
    def ledger(contract_id: str, period: str | None = None, wait_for: int | None = None) -> dict[str, Any]:
        reads.wait_for("ledger", wait_for)
        row = reads.one("SELECT * FROM proj_ledger.contracts WHERE contract_id = %s", (contract_id,))
        if row is None:
            raise NotFound(f"no contract {contract_id} in the ledger")
        book = book_from_row(row)
        rows = reads.all("SELECT * FROM proj_ledger.periods WHERE contract_id = %s ORDER BY starts_at",
                         (contract_id,))
        periods = {p["label"]: Period(**p) for p in rows}
        if book.scheme == "allowance":
            kind = book.allowance_period or "quarter"
            current = allowance_period(datetime.now(UTC), book.time_zone, kind)
            label = period or current[2]
            start = allowance_start(label, kind, book.time_zone)
            if label not in periods and start is not None:
                periods[label] = Period(contract_id, label, start, book.grant)
            periods.setdefault(current[2], Period(contract_id, current[2], current[0], book.grant))
        else:
            label = period or book.periods[-1]
        if label not in periods:
            raise NotFound(f"no period {label!r} in the ledger of {contract_id}", {"periods": list(periods)})
        labels = [p.label for p in sorted(periods.values(), key=lambda p: p.starts_at)]
        entries = reads.all(f"SELECT {entry_cols} FROM proj_ledger.entries WHERE contract_id = %s"
                            " AND period = %s ORDER BY position", (contract_id, label))
        return ledger_answer(book, periods[label], labels, entries)

    @r.get("/tickets/{ticket_id}/statement")
    def statement(ticket_id: str, wait_for: int | None = None) -> dict[str, Any]:
        reads.wait_for("ledger", wait_for)
        rows = reads.all("SELECT * FROM proj_ledger.statements WHERE ticket_id = %s ORDER BY position",
                         (ticket_id,))
        if not rows:
            raise NotFound(f"no statement for ticket {ticket_id}: unknown, or not resolved yet")
        last = rows[-1]
        entries = reads.all(f"SELECT {entry_cols} FROM proj_ledger.entries WHERE ticket_id = %s"
                            " AND position < %s ORDER BY position", (ticket_id, last["position"]))
        iso = [{**s, "resolved_at": s["resolved_at"].isoformat()} for s in rows]
        return {**iso[-1], "entries": [{**e, "at": e["at"].isoformat()} for e in entries], "statements": iso}

    return r


SPEC = ProjectionSpec("ledger", LedgerProjection, SQL_FILES, PgLedgerView, routes,
                      notice_topics=(NOTICE_TOPIC,))
