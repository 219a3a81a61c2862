"""The ledger read model's routes: GET /contracts/{id}/ledger (?period=) and
GET /tickets/{id}/statement, shaped from the stored periods and entries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from domain.errors import NotFound
from domain.periods import allowance_period, allowance_start
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, Ticket, waited
from infra.postgres.views.ledger import book_from_row
from projections.ledger_rows import Book, Period


def ledger_answer(book: Book, period: Period, labels: list[str], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of one contract's ledger in one period (docs/design.md, with its period fields)."""
    balance = period.balance
    start, end = book.bounds(period.label, period.starts_at)
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


Waited = Annotated[None, waited("ledger")]
Label = Annotated[str | None, Query(pattern=models.NO_NUL, description=(
    "the period: its start date (YYYY-MM-DD), or for an allowance 2026-Q1, 2026-03 or 2026; default: the current"))]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["ledger"])
    reads = backend.reads
    entry_cols = ", ".join(models.LedgerEntry.model_fields)  # what the answer declares, no more
    statement_cols = ", ".join(models.TicketStatement.model_fields)

    @r.get("/contracts/{contract_id}/ledger", response_model=models.Ledger)
    def ledger(contract: Contract, _: Waited, period: Label = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        row = reads.one("SELECT * FROM proj_ledger.contracts WHERE contract_id = %s", (contract_id,))
        if row is None:
            raise NotFound(f"no contract {contract_id} in the ledger")
        book = book_from_row(row)
        rows = reads.all("SELECT * FROM proj_ledger.periods WHERE contract_id = %s ORDER BY starts_at",
                         (contract_id,))
        periods = {p["label"]: Period(**p) for p in rows}
        if book.scheme == "allowance":
            kind = book.allowance_period or "quarter"
            current = allowance_period(backend.clock.now(), book.time_zone, kind)
            periods.setdefault(current[2], Period(contract_id, current[2], current[0], book.grant))
            label = period or current[2]
            start = allowance_start(label, kind, book.time_zone)
        else:
            label, start = period or book.periods[-1], None
        labels = [p.label for p in sorted(periods.values(), key=lambda p: p.starts_at)]
        if label not in periods:
            if start is None:
                raise NotFound(f"no period {label!r} in the ledger of {contract_id}", {"periods": labels})
            periods[label] = Period(contract_id, label, start, book.grant)  # an allowance period without activity
        entries = reads.all(f"SELECT {entry_cols} FROM proj_ledger.entries WHERE contract_id = %s"
                            " AND period = %s ORDER BY position", (contract_id, label))
        return ledger_answer(book, periods[label], labels, entries)

    @r.get("/tickets/{ticket_id}/statement", response_model=models.Statements)
    def statement(ticket: Ticket, _: Waited) -> dict[str, Any]:
        ticket_id = str(ticket)  # canonical text, as stored
        rows = reads.all(f"SELECT {statement_cols} FROM proj_ledger.statements WHERE ticket_id = %s"
                         " ORDER BY position",
                         (ticket_id,))
        if not rows:
            raise NotFound(f"no statement for ticket {ticket_id}: unknown, or not resolved yet")
        last = rows[-1]
        entries = reads.all(f"SELECT {entry_cols} FROM proj_ledger.entries WHERE ticket_id = %s"
                            " AND position < %s ORDER BY position", (ticket_id, last["position"]))
        iso = [{**s, "resolved_at": s["resolved_at"].isoformat()} for s in rows]
        return {**iso[-1], "entries": [{**e, "at": e["at"].isoformat()} for e in entries], "statements": iso}

    return r


