"""The projections that exist, in one place: each one's name, its projection, its PostgreSQL
view and tables, and the notice topics it publishes to. The processes (`infra/process/`)
build runners, rebuilds and the database from this list; a new read model is added here."""

from __future__ import annotations

from infra.kafka.notices import AVAILABILITY_TOPIC, LEDGER_TOPIC, SLA_TOPIC
from infra.postgres.views import ProjectionSpec, availability, ledger, sla, tickets
from projections.availability import AvailabilityProjection
from projections.ledger import LedgerProjection
from projections.sla import SlaProjection
from projections.tickets import TicketsProjection

PROJECTIONS: dict[str, ProjectionSpec] = {spec.name: spec for spec in (
    ProjectionSpec("availability", AvailabilityProjection, availability.SQL_FILES, availability.PgAvailabilityView,
                   notice_topics=(AVAILABILITY_TOPIC,)),
    ProjectionSpec("ledger", LedgerProjection, ledger.SQL_FILES, ledger.PgLedgerView, notice_topics=(LEDGER_TOPIC,)),
    ProjectionSpec("sla", SlaProjection, sla.SQL_FILES, sla.PgSlaView, notice_topics=(SLA_TOPIC,)),
    ProjectionSpec("tickets", TicketsProjection, tickets.SQL_FILES, tickets.PgTicketsView),
)}
