"""The ledger read model's routes: GET /contracts/{id}/ledger (?period=) and
GET /tickets/{id}/statement, shaped from the stored periods and entries; the ledger with
`known_at` is replayed (projections/replay.py) from the events the store had committed by then,
as of that instant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from domain.errors import NotFound
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, KnownAt, Ticket, as_known, waited
from infra.postgres.keys import shown_columns
from infra.postgres.views.ledger import book_from_row
from projections import replay
from projections.ledger_rows import Period
from projections.reports import ledger_answer, ledger_period

Waited = Annotated[None, waited("ledger")]
Label = Annotated[str | None, Query(pattern=models.NO_NUL, description=(
    "the period: its start date (YYYY-MM-DD), or for an allowance 2026-Q1, 2026-03 or 2026; default: the current"))]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["ledger"])
    reads = backend.reads
    # What the answer declares, no more; the engineer reads as null once the contract is erased.
    entry_cols = shown_columns(models.LedgerEntry.model_fields, ("engineer",))
    statement_cols = ", ".join(models.TicketStatement.model_fields)

    @r.get("/contracts/{contract_id}/ledger", response_model=models.Ledger)
    def ledger(contract: Contract, _: Waited, period: Label = None, known_at: KnownAt = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        now = backend.clock.now()
        if (known := as_known(known_at, now)) is not None:
            return replay.ledger_report(backend.store.envelopes_of(contract_id, known), known, period)
        row = reads.one("SELECT * FROM proj_ledger.contracts WHERE contract_id = %s", (contract_id,))
        if row is None:
            raise NotFound(f"no contract {contract_id} in the ledger")
        book = book_from_row(row)
        rows = reads.all("SELECT * FROM proj_ledger.periods WHERE contract_id = %s ORDER BY starts_at",
                         (contract_id,))
        shown, labels = ledger_period(book, {p["label"]: Period(**p) for p in rows}, now, period)
        entries = reads.all(f"SELECT {entry_cols} FROM proj_ledger.entries WHERE contract_id = %s"
                            " AND period = %s ORDER BY position", (contract_id, shown.label))
        return ledger_answer(book, shown, labels, entries)

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


