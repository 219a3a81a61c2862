"""The read models' query routes, one module per read model, and the catalog's and the
contracts' reads (`catalog`), the exports (`export`); `ROUTES` lists them for the app."""

from __future__ import annotations

from infra.http.routes import availability, catalog, export, ledger, metrics, sla, tickets, tokens

ROUTES = (tickets.routes, sla.routes, ledger.routes, availability.routes, catalog.routes, tokens.routes,
          export.routes, metrics.routes)
