"""The read models' query routes, one module per read model; `ROUTES` lists them for the app."""

from __future__ import annotations

from infra.http.routes import availability, ledger, sla, tickets, tokens

ROUTES = (tickets.routes, sla.routes, ledger.routes, availability.routes, tokens.routes)
