"""The availability read model's route: GET /contracts/{id}/availability?month=YYYY-MM,
the month's figures computed when read from the stored outages and maintenance windows; with
`known_at`, replayed (projections/replay.py) from the events the store had committed by then,
as of that instant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from domain.errors import NotFound
from domain.periods import month_window
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract, KnownAt, Month, as_known, waited
from infra.postgres.views.availability import load
from projections import replay
from projections.reports import availability_answer

NAME = "availability"
SCHEMA = f"proj_{NAME}"


Waited = Annotated[None, waited(NAME)]


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["availability"])

    @r.get("/contracts/{contract_id}/availability", response_model=models.Availability)
    def availability(contract: Contract, _: Waited, month: Month = None, known_at: KnownAt = None) -> dict[str, Any]:
        contract_id = str(contract)  # canonical text, as stored
        now = backend.clock.now()
        if (known := as_known(known_at, now)) is not None:
            return replay.availability_report(backend.store.envelopes_of(contract_id, known), known, month)
        terms = backend.reads.one(f"SELECT time_zone FROM {SCHEMA}.availability_contracts"
                                  " WHERE contract_id = %s", (contract_id,))
        if terms is None:
            raise NotFound(f"no contract {contract_id}")
        month, start, end = month_window(month, terms["time_zone"], now)
        found = load(backend.reads.all, SCHEMA, contract_id, start, end)
        if found is None:
            raise NotFound(f"no contract {contract_id}")
        return availability_answer(found, month, now)

    return r


