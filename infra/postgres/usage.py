"""The credit check's port on PostgreSQL: a contract's time entries, read from the events table.

The application asks `UsageReader` (domain/application.py) how many time entries of each
(kind, minutes) a contract's tickets hold before it opens one more on a credit plan. The rows
are found by the contract index (`contract_of(state)`) and by the topic the library gives the
event class (`get_topic(Ticket.TimeConsumed)`), never by a topic written out here, and are
decoded by the application's own mapper: renaming or moving the class (with `register_topic`)
keeps this read working, and a stored form the mapper cannot read fails loudly rather than
counting as no usage.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool

from domain.billing import Usage
from domain.ticket import Ticket
from infra import postgres


class StoredUsage:
    """`UsageReader` on the events table: `Ticket.TimeConsumed` entries counted by (kind, minutes)."""

    event_class = Ticket.TimeConsumed  # type: ignore[attr-defined]  # made by the aggregate's @event decorator

    def __init__(self, app: Application[Any], pool: ConnectionPool, schema: str, table: str) -> None:
        self.mapper = app.mapper
        self.pool = pool
        self.topic = get_topic(self.event_class)
        self.query = (
            f"SELECT originator_id, originator_version, topic, state FROM {table}"
            f" WHERE {schema}.contract_of(state) = %s AND topic = %s ORDER BY notification_id"
        )

    def __call__(self, contract_id: str) -> Usage:
        rows = postgres.run(self.pool, lambda conn: conn.execute(
            self.query, (contract_id, self.topic)).fetchall())
        return Counter(self._entry(*row) for row in rows)

    def _entry(self, originator_id: Any, version: int, topic: str, state: bytes) -> tuple[str, int]:
        entry = self.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
        return entry.kind, int(entry.minutes)  # type: ignore[attr-defined]  # fields of the @event-made class
