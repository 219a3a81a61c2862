"""The composition root: which projections exist, and how each process is put together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from consumers.relay import Relay
from consumers.runner import Runner
from domain.clock import Clock
from infra import postgres
from infra.avro import Codec, position_of
from infra.catalog import load_catalog
from infra.postgres.views import PgTicketsView
from infra.settings import Settings
from infra.store import EventStore
from projections.tickets import TicketsProjection


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection, the SQL files of its read model, and its view bound to a connection."""

    name: str
    make: Callable[[], Any]
    sql_files: tuple[str, ...]
    view: Callable[[psycopg.Connection, str], Any]

    @property
    def schema(self) -> str:
        return f"proj_{self.name}"


PROJECTIONS: dict[str, ProjectionSpec] = {
    "tickets": ProjectionSpec("tickets", TicketsProjection, ("tickets",), PgTicketsView),
}


def setup_database(url: str) -> None:
    """Create the relay's and every projection's schema and tables (idempotent)."""
    with psycopg.connect(url, autocommit=True) as conn:
        postgres.execute_file(conn, "relay_position", "relay")
        for spec in PROJECTIONS.values():
            for name in ("checkpoint", *spec.sql_files):
                postgres.execute_file(conn, name, spec.schema)


def ensure_topic(settings: Settings, topic: str | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic or settings.events_topic, settings.partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def event_store(settings: Settings, clock: Clock | None = None) -> EventStore:
    assert settings.database_url
    return EventStore(settings.database_url, load_catalog(), clock)


def relay(settings: Settings, store: EventStore) -> Relay:
    assert settings.database_url and settings.kafka_bootstrap
    return Relay(
        store.recorder, store.app.mapper, Codec().encode, settings.database_url,
        settings.kafka_bootstrap, settings.events_topic,
    )


def runner(settings: Settings, name: str, **options: Any) -> Runner:
    assert settings.database_url and settings.kafka_bootstrap
    spec = PROJECTIONS[name]
    return Runner(
        spec.make(), lambda conn: spec.view(conn, spec.schema), settings.database_url,
        spec.schema, settings.kafka_bootstrap, settings.events_topic, Codec().decode,
        position_of, **options,
    )


def extra_routers(backend: Any) -> list[Any]:
    """The query routes of the projections beyond the ticket list (SLA, ledger, availability)."""
    return []
