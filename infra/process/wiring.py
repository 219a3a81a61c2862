"""The composition root: which projections exist, and how each process is put together."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from consumers.outbox import OutboxPublisher
from consumers.relay import Relay
from consumers.runner import Runner
from domain.rules import RULES_VERSION
from domain.wallclock import Clock
from infra import postgres
from infra.kafka.avro import Codec, position_of
from infra.kafka.notices import REBUILD_TOPIC
from infra.kafka.publisher import PRODUCER, KafkaPublisher
from infra.kafka.source import KafkaSource
from infra.postgres import doorbell
from infra.postgres.checkpoints import PgRunnerSession
from infra.postgres.doorbell import PgDoorbell
from infra.postgres.outbox import PgOutboxRows
from infra.postgres.relay_log import PgRelayLog
from infra.postgres.store import ApplicationHost
from infra.process.catalog import load_catalog
from infra.registry import PROJECTIONS
from infra.settings import Settings

RELAY_PRODUCER = PRODUCER | {"batch_size": 256 * 1024}  # the relay sends thousands at a time
# Busy, the relay starts a batch at most every RELAY_PACE seconds and a runner at most every
# RUNNER_PACE (unless the last one was full): under a steady stream of commands each commit
# would otherwise cost a round of work in the relay, the broker and every runner. Idle, they
# wait for their doorbells and answer within milliseconds (infra/postgres/doorbell.py).
RELAY_PACE, RUNNER_PACE = 0.02, 0.05


def setup_database(url: str) -> None:
    """Create the relay's and every projection's schema and tables (idempotent)."""
    with psycopg.connect(url, autocommit=True) as conn:
        postgres.execute_file(conn, "relay_position", "relay")
        for spec in PROJECTIONS.values():
            for name in ("checkpoint", "dead_letter", "outbox", *spec.sql_files):
                postgres.execute_file(conn, name, spec.schema)


def topics(settings: Settings) -> list[str]:
    return [settings.events_topic, *(t for s in PROJECTIONS.values() for t in s.notice_topics), REBUILD_TOPIC]


def ensure_topic(settings: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        for topic in topics(settings):
            partitions = settings.partitions if topic == settings.events_topic else 1
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def event_store(settings: Settings, clock: Clock | None = None) -> ApplicationHost:
    assert settings.database_url
    return ApplicationHost(settings.database_url, load_catalog(), clock or settings.clock)


def relay(settings: Settings, store: ApplicationHost, topic: str | None = None, **options: Any) -> Relay:
    """The relay of the events topic (or another one): the store's notification log, the lease
    and position in PostgreSQL, the broker through an idempotent producer."""
    assert settings.database_url and settings.kafka_bootstrap
    topic = topic or settings.events_topic
    publisher = KafkaPublisher(settings.kafka_bootstrap, options=RELAY_PRODUCER)
    bell = PgDoorbell(settings.database_url, doorbell.APPENDED, store.schema)  # the store this relay reads
    defaults: dict[str, Any] = {"doorbell": bell, "pace": RELAY_PACE}
    options = defaults | options
    return Relay(store.recorder, store.app.mapper, Codec().encode, PgRelayLog(settings.database_url, topic),
                 publisher, topic, settings.partitions, faults=postgres.FAULTS,
                 reveal=lambda envelopes: store.keys.reveal(envelopes, erased_as=""), **options)


def outbox(settings: Settings, schema: str, **options: Any) -> OutboxPublisher:
    """The publisher of a projection's outbox (its notices) in `schema`."""
    assert settings.database_url and settings.kafka_bootstrap
    return OutboxPublisher(PgOutboxRows(settings.database_url, schema),
                           KafkaPublisher(settings.kafka_bootstrap, ack_timeout=10.0), schema, **options)


def runner(settings: Settings, name: str, schema: str | None = None, topic: str | None = None,
           group: bool = False, **options: Any) -> Runner:
    """The runner of one projection; `schema` and `topic` default to the live ones. Its leases
    are named after the projection (`apply:<name>:<partition>`, `tick:<name>`), or, in a
    schema of its own, after both (`<name>@<schema>`), so runners of scratch copies (tests,
    benchmarks) are not standbys of the live one. With `group`, it joins the consumer group
    `<topic>.<lease>` instead of reading every partition."""
    assert settings.database_url and settings.kafka_bootstrap
    spec = PROJECTIONS[name]
    schema = schema or spec.schema
    topic = topic or settings.events_topic
    url, store_table = settings.database_url, f"{postgres.STORE_SCHEMA}.ticketing_events"
    defaults: dict[str, Any] = {"clock": settings.clock.now, "rules_version": RULES_VERSION,
                                "lease": name if schema == spec.schema else f"{name}@{schema}",
                                # in a group a runner keeps polling the broker: no bell to wait on
                                "doorbell": None if group else PgDoorbell(url, doorbell.RELAYED, topic),
                                "pace": RUNNER_PACE}
    options = defaults | options
    source = KafkaSource(settings.kafka_bootstrap, topic, max_records=options.get("max_records", 5000),
                         group=f"{topic}.{options['lease']}" if group else None, timeouts=group_timeouts(settings))

    def connect() -> PgRunnerSession:
        return PgRunnerSession(url, schema, topic, lambda conn: spec.view(conn, schema), store_table)

    return Runner(spec.make(), source, connect, Codec().decode, position_of,
                  outbox=outbox(settings, schema), group=group, **options)


def group_timeouts(settings: Settings) -> dict[str, int]:
    return {"max_poll_interval_ms": settings.group_poll_interval_ms,
            "session_timeout_ms": settings.group_session_timeout_ms,
            "heartbeat_interval_ms": settings.group_heartbeat_ms}


def create_tables(url: str, name: str, schema: str) -> None:
    """A projection's tables, fresh, in a schema of the caller's choosing (tests, benchmarks)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for file in ("checkpoint", "dead_letter", "outbox", *PROJECTIONS[name].sql_files):
            postgres.execute_file(conn, file, schema)
