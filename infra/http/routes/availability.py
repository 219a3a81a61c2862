"""The availability read model's route: GET /contracts/{id}/availability?month=YYYY-MM,
the month's figures computed when read from the stored outages and maintenance windows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter

from domain.errors import NotFound
from domain.periods import month_bounds, month_window
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, Month, waited
from infra.postgres.views.availability import load
from projections.availability_rows import ContractOutages

NAME = "availability"
SCHEMA = f"proj_{NAME}"


def answer(contract: ContractOutages, month: str, now: datetime) -> dict[str, Any]:
    """The availability answer of docs/design.md, plus maintenance and the error budget."""
    f = contract.month(month, now)
    start, end = month_bounds(month, contract.time_zone)
    left = f.budget_left_minutes
    return {
        "contract_id": contract.contract_id, "month": month, "time_zone": contract.time_zone,
        "minutes_in_month": f.minutes_in_month, "downtime_minutes": round(f.downtime_minutes, 4),
        "availability_pct": f.availability_pct, "target_pct": f.target_pct, "met": f.met,
        "maintenance_minutes": round(f.maintenance_minutes, 4),
        "allowed_downtime_minutes": f.allowed_downtime_minutes, "budget_left_minutes": left,
        "budget_exhausted": None if left is None else f.downtime_minutes > 0 and left <= 0,
        "as_of": now.isoformat(),
        "outages": [
            {"ticket_id": o.ticket_id, "starts_at": o.start.isoformat(),
             "ends_at": o.end and o.end.isoformat(), "open": o.end is None}
            for o in contract.outages if o.start < end and (o.end is None or o.end > start)
        ],
        "maintenance": [
            {"starts_at": s.isoformat(), "ends_at": e.isoformat()}
            for s, e in contract.maintenance if s < end and e > start
        ],
    }


Waited = Annotated[None, waited(NAME)]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["availability"])

    @r.get("/contracts/{contract_id}/availability", response_model=models.Availability)
    def availability(contract: Contract, _: Waited, month: Month = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        terms = backend.reads.one(f"SELECT time_zone FROM {SCHEMA}.availability_contracts"
                                  " WHERE contract_id = %s", (contract_id,))
        if terms is None:
            raise NotFound(f"no contract {contract_id}")
        now = backend.clock.now()
        month, start, end = month_window(month, terms["time_zone"], now)
        found = load(backend.reads.all, SCHEMA, contract_id, start, end)
        if found is None:
            raise NotFound(f"no contract {contract_id}")
        return answer(found, month, now)

    return r


