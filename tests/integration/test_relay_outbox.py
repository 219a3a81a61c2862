"""The projection outbox on a real PostgreSQL and broker: a notice is marked published only
once the broker acknowledged it, and a broken database connection is opened again."""

from __future__ import annotations

from typing import Any

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from consumers.backoff import Backoff
from infra.postgres.outbox import enqueue
from infra.process import wiring
from infra.settings import Settings
from tests.integration.helpers import eventually, kill_backends, read_partition, tickets_schema, unique


def notices(url: str, schema: str, topic: str, sizes: dict[str, int]) -> None:
    with psycopg.connect(url) as conn:
        for notice_id, size in sizes.items():
            enqueue(conn, schema, notice_id, topic, "contract-1", b"x" * size, {"ticketing-notice-type": "Test"})


def published(url: str, schema: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT notice_id, published_at IS NOT NULL FROM {schema}.outbox").fetchall()
    return dict(rows)


def new_topic(bootstrap: str) -> str:
    topic, admin = unique("notices"), KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    return topic


def test_the_outbox_marks_only_the_notices_the_broker_acknowledged_and_sends_the_rest_later(servers: Settings) -> None:
    url, bootstrap = servers.database_url or "", servers.kafka_bootstrap or ""
    schema, topic = tickets_schema(url), new_topic(bootstrap)
    notices(url, schema, topic, {"n1": 10, "n2": 2_000_000, "n3": 10})  # n2: over the message size limit
    outbox = wiring.outbox(servers, schema, backoff=Backoff(first=0.1))
    assert outbox.publish() == 1
    assert published(url, schema) == {"n1": True, "n2": False, "n3": False}
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE {schema}.outbox SET value = 'x' WHERE notice_id = 'n2'")
    counts: list[int] = []
    eventually(lambda: counts.append(outbox.publish()) or sum(counts) == 2, timeout=30)
    assert published(url, schema) == {"n1": True, "n2": True, "n3": True}
    messages = read_partition(bootstrap, topic, 0, lambda ms: len(ms) >= 3)
    assert [dict(m.headers)["ticketing-notice-id"] for m in messages] == [b"n1", b"n2", b"n3"]
    outbox.close()


def test_the_outbox_publishes_again_after_its_database_connection_was_killed(servers: Settings) -> None:
    url, bootstrap = servers.database_url or "", servers.kafka_bootstrap or ""
    schema, topic = tickets_schema(url), new_topic(bootstrap)
    outbox = wiring.outbox(servers, schema)
    notices(url, schema, topic, {"n1": 10})
    assert outbox.publish() == 1
    db: Any = outbox.rows.db
    assert kill_backends(url, [db.info.backend_pid]) == 1
    notices(url, schema, topic, {"n2": 10})
    assert outbox.publish() == 1
    assert published(url, schema) == {"n1": True, "n2": True}
    outbox.close()
