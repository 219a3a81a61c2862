"""The ticket list's routes: GET /tickets/{id} and GET /contracts/{id}/tickets (?status=)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from domain.errors import NotFound
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, Ticket, waited
from infra.postgres.keys import shown_columns

Waited = Annotated[None, waited("tickets")]
# The columns the answer declares, no more: a column added to the table is not published by accident.
# Title and reporter read as null once the contract is erased.
COLUMNS = shown_columns(models.TicketSummary.model_fields, ("title", "reporter"))


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["tickets"])

    @r.get("/tickets/{ticket_id}", response_model=models.TicketSummary)
    def ticket(ticket: Ticket, _: Waited) -> dict[str, Any]:
        ticket_id = str(ticket)  # canonical text, as stored
        row = backend.reads.one(f"SELECT {COLUMNS} FROM proj_tickets.tickets WHERE ticket_id = %s", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        return dict(row)

    @r.get("/contracts/{contract_id}/tickets", response_model=models.Tickets)
    def tickets(contract: Contract, _: Waited, status: models.TicketStatus | None = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        rows = backend.reads.all(
            f"SELECT {COLUMNS} FROM proj_tickets.tickets WHERE contract_id = %s"
            " AND (%s::text IS NULL OR status = %s) ORDER BY position",
            (contract_id, status, status),
        )
        return {"tickets": rows}

    return r


