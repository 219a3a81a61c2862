"""The event store: the eventsourcing Application on PostgreSQL, and the audit reads that go
straight to the stored events (a contract's history, its time entries)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent

from domain.application import TicketingApplication
from domain.clock import Clock
from domain.errors import NotFound
from domain.plans import PlanTerms
from infra import postgres
from infra.group_commit import GroupCommitter
from projections.envelope import Envelope, from_domain_event

TIME_TOPIC = "domain.ticket:Ticket.TimeConsumed"


class EventStore:
    """The application plus the SQL reads of its events table."""

    def __init__(
        self, url: str, catalog: Mapping[str, PlanTerms], clock: Clock | None = None,
        schema: str = postgres.STORE_SCHEMA, group_commit: bool = True,
    ) -> None:
        self.schema = schema
        self.table = f"{schema}.ticketing_events"
        # Processes starting together must not create the same objects at once.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('ticketing-store-setup'))")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
            self.app = TicketingApplication(
                catalog, env=postgres.store_env(url, schema), clock=clock, usage=self.time_entries
            )
            conn.execute(postgres.sql("event_index", schema))  # type: ignore[arg-type]
            conn.execute("SELECT pg_advisory_unlock(hashtext('ticketing-store-setup'))")
        self.pool = postgres.make_pool(url, max_size=4, name="store-reads")
        if group_commit:
            self.app.commit = GroupCommitter(self.app.save)

    def close(self) -> None:
        self.pool.close()
        self.app.close()

    @property
    def recorder(self) -> Any:
        return self.app.recorder

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def time_entries(self, contract_id: str) -> Iterable[tuple[str, int]]:
        rows = self._query(
            f"SELECT state FROM {self.table} WHERE {self.schema}.contract_of(state) = %s"
            " AND topic = %s ORDER BY notification_id",
            (contract_id, TIME_TOPIC),
        )
        for (state,) in rows:
            entry = json.loads(bytes(state))
            yield entry["kind"], int(entry["minutes"])

    def envelopes_of(self, contract_id: str) -> list[Envelope]:
        """Every event of the contract and its tickets, in store order."""
        rows = self._query(
            f"SELECT notification_id, originator_id, originator_version, topic, state"
            f" FROM {self.table} WHERE originator_id = %s OR {self.schema}.contract_of(state) = %s"
            " ORDER BY notification_id",
            (UUID(contract_id), contract_id),
        )
        return [self.to_envelope(*row) for row in rows]

    def to_envelope(self, position: int, originator_id: Any, version: int, topic: str, state: bytes) -> Envelope:
        stored = StoredEvent(originator_id, version, topic, bytes(state))
        return from_domain_event(self.app.mapper.to_domain_event(stored), position)

    def history(self, contract_id: str, as_of: datetime) -> dict[str, Any]:
        """The audit view: events up to `as_of` (business time) and the state they add up to."""
        try:
            UUID(contract_id)
        except ValueError:
            raise NotFound(f"no contract {contract_id}") from None
        events = [e for e in self.envelopes_of(contract_id) if e.occurred_at <= as_of]
        if not any(e.aggregate_id == contract_id for e in events):
            self.app.contract(contract_id)  # 404 when the contract does not exist at all
            return {"as_of": as_of.isoformat(), "events": [], "contract": None, "tickets": []}
        versions: dict[str, int] = {}
        for e in events:
            versions[e.aggregate_id] = e.aggregate_version
        contract = self.app.repository.get(UUID(contract_id), version=versions.pop(contract_id))
        tickets = [self.app.repository.get(UUID(i), version=v).state() for i, v in versions.items()]
        return {
            "as_of": as_of.isoformat(),
            "events": [e.as_json() for e in events],
            "contract": contract.state(),
            "tickets": tickets,
        }

    def _query(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
