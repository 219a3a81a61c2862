"""The SLA read model's routes: GET /tickets/{id}/sla (?explain=true) and
GET /contracts/{id}/sla?month=YYYY-MM (&known_at=). Statuses are computed when read, from the
stored facts and the real now, so a clock shows `breached` the instant it passes its due. With
`known_at`, the monthly report is replayed (projections/replay.py) from the events the store had
committed by then, as of that instant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter

from domain.errors import NotFound
from domain.periods import month_window
from domain.sla.clock import ClockResult, SlaRules, evaluate
from domain.sla.explain import explain, minutes
from domain.sla.facts import from_json
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, KnownAt, Month, Ticket, as_known, waited
from projections import replay
from projections.reports import sla_answer

NAME = "sla"
SCHEMA = f"proj_{NAME}"
def _clock_json(c: ClockResult) -> dict[str, Any]:
    return {
        "due_at": c.due_at and c.due_at.isoformat(), "stopped_at": c.stopped_at and c.stopped_at.isoformat(),
        "status": c.status, "stopped_by": c.stopped_by, "priority": c.priority,
        "target": None if c.target is None else str(c.target), "target_minutes": minutes(c.target_time),
        "elapsed_minutes": minutes(c.elapsed), "calendar": c.calendar_name,
    }


def ticket_answer(row: dict[str, Any], now: datetime, with_explain: bool = False) -> dict[str, Any]:
    """GET /tickets/{id}/sla from a stored ticket row joined with its contract's terms."""
    rules = SlaRules.from_signed(row["terms"], row["time_zone"], row["holidays"])
    facts = from_json(row["facts"])
    result = evaluate(rules, facts, now)
    body = {
        "ticket_id": row["ticket_id"], "contract_id": row["contract_id"], "plan_id": row["plan_id"],
        "priority": result.priority, "category": result.category, "as_of": result.as_of.isoformat(),
        "response": _clock_json(result.response), "resolution": _clock_json(result.resolution),
    }
    return body | {"explain": explain(rules, facts, now)} if with_explain else body


Waited = Annotated[None, waited(NAME)]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["sla"])
    joined = (f"SELECT t.ticket_id, t.contract_id, t.facts, c.plan_id, c.terms, c.time_zone, c.holidays"
              f" FROM {SCHEMA}.sla_tickets t JOIN {SCHEMA}.sla_contracts c USING (contract_id)")

    @r.get("/tickets/{ticket_id}/sla", response_model=models.TicketSla,
           response_model_exclude_unset=True)  # `explain` only when asked for
    def ticket_sla(ticket: Ticket, _: Waited, explain: bool = False) -> dict[str, Any]:
        ticket_id = str(ticket)  # canonical text, as stored
        row = backend.reads.one(f"{joined} WHERE t.ticket_id = %s", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        return ticket_answer(row, backend.clock.now(), explain)

    @r.get("/contracts/{contract_id}/sla", response_model=models.ContractSla)
    def contract_sla(contract: Contract, _: Waited, month: Month = None, known_at: KnownAt = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        now = backend.clock.now()
        if (known := as_known(known_at, now)) is not None:
            return replay.sla_report(backend.store.envelopes_of(contract_id, known), known, month)
        c = backend.reads.one(f"SELECT * FROM {SCHEMA}.sla_contracts WHERE contract_id = %s", (contract_id,))
        if c is None:
            raise NotFound(f"no contract {contract_id}")
        month, start, end = month_window(month, c["time_zone"], now)
        rows = backend.reads.all(
            f"SELECT facts FROM {SCHEMA}.sla_tickets WHERE contract_id = %s AND opened_at >= %s"
            " AND opened_at < %s ORDER BY opened_at, ticket_id", (contract_id, start, end))
        rules = SlaRules.from_signed(c["terms"], c["time_zone"], c["holidays"])
        facts = (from_json(row["facts"]) for row in rows)
        return sla_answer(contract_id, c["plan_id"], c["time_zone"], rules, month, facts, now)

    return r


