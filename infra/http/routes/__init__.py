"""The read models' query routes, one module per read model, and the catalog's and the
contracts' reads (`catalog`); `ROUTES` lists them for the app."""

from __future__ import annotations

from infra.http.routes import availability, catalog, ledger, metrics, sla, tickets, tokens

ROUTES = (tickets.routes, sla.routes, ledger.routes, availability.routes, catalog.routes, tokens.routes, metrics.routes)
