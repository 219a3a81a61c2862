"""The catalog and the contracts as a client first reads them: GET /plans and
GET /plans/{plan_id} (the plans this backend sells, their full terms and named-user limit),
and GET /contracts/{contract_id} (a contract's customer, plan, status and agreed terms).

The catalog is the plans the backend loaded at start; a contract is read from its aggregate
in the event store, not from a read model, so the answer already holds every command that
was answered before it (no `wait_for`). A plan id holds a slash (`crm-experts/gold`), so the
plan route takes the rest of the path as the id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from domain.errors import NotFound
from domain.plans import PlanTerms
from infra.http import models
from infra.http.errors import Declared
from infra.http.queries import Contract

PlanId = Annotated[str, Path(description='a plan id of the catalog, "provider/plan" (e.g. crm-experts/gold)')]


def plan_answer(terms: PlanTerms) -> dict[str, Any]:
    """One catalog plan: the fields a client picks from, then the full terms."""
    return {
        "plan_id": terms.plan_id, "provider": terms.provider, "name": terms.name, "time_zone": terms.time_zone,
        "channels": list(terms.channels), "named_users": terms.named_users, "terms": terms.to_dict(),
    }


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["catalog"])
    catalog: dict[str, PlanTerms] = dict(backend.app.catalog)

    # A calendar's spec answers only the keys its plan states (no defaults filled in), so the
    # terms read as the catalog and the contract's signing event hold them.
    @r.get("/plans", response_model=models.Catalog, response_model_exclude_unset=True)
    def plans() -> dict[str, Any]:
        return {"plans": [plan_answer(catalog[plan_id]) for plan_id in sorted(catalog)]}

    # `path`: the id's slash is part of it. The edge cannot see an id in `{plan_id:path}`, so
    # the route declares its 404 itself.
    @r.get("/plans/{plan_id:path}", response_model=models.CatalogPlan, response_model_exclude_unset=True,
           responses=models.problems(404))
    def plan(plan_id: PlanId) -> dict[str, Any]:
        terms = catalog.get(plan_id)
        if terms is None:
            raise NotFound(f"no plan {plan_id!r} in the catalog", {"plans": sorted(catalog)})
        return plan_answer(terms)

    @r.get("/contracts/{contract_id}", response_model=models.ContractSummary, response_model_exclude_unset=True)
    def contract(contract: Contract) -> dict[str, Any]:
        found = backend.app.contract(contract)  # NotFound (404) when no contract has this id
        terms = backend.app.terms_of(found)  # the agreed terms, read in the current terms format
        state = backend.store.shown("Contract", found.state())  # the customer opened, or None once erased
        return {
            "contract_id": state["contract_id"], "customer": state["customer"], "plan": state["plan"],
            "status": state["status"], "time_zone": state["time_zone"], "starts_on": state["starts_on"],
            "holidays": state["holidays"], "terms": terms.to_dict(), "named_users": terms.named_users,
            "erased_at": state["erased_at"],
        }

    return r
