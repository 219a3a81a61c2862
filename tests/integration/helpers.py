"""Building blocks for integration tests: a store, a relay and a runner on a topic and
read-model schema of the test's own, against the session's real PostgreSQL and broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from consumers.relay import Relay
from consumers.runner import Runner
from domain.ticket import Ticket
from infra.kafka.avro import H_POSITION, Codec, position_of
from infra.postgres import leases
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from projections.envelope import Envelope
from projections.tickets import InMemoryTicketsView, TicketsProjection


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def tickets_schema(url: str) -> str:
    schema = unique("test_tickets")
    wiring.create_tables(url, "tickets", schema)
    return schema


def make_relay(settings: Settings, store: ApplicationHost, topic: str) -> Relay:
    return wiring.relay(settings, store, topic)


def make_runner(settings: Settings, schema: str, topic: str) -> Runner:
    return wiring.runner(settings, "tickets", schema, topic)


def drive(step: Callable[[], Any], until: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        step()


def read_model(url: str, schema: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(f"SELECT * FROM {schema}.tickets").fetchall()
    return {r["ticket_id"]: r for r in rows}


def clean_rebuild(store: ApplicationHost, upto: int | None = None) -> dict[str, dict[str, Any]]:
    """The ticket list built straight from the store, in memory: what a clean run gives."""
    view, projection = InMemoryTicketsView(), TicketsProjection()
    start = 1
    while True:
        page = store.recorder.select_notifications(start=start, limit=5000)
        for env in store.published(page):
            if upto is not None and env.position > upto:
                return view.rows
            projection.apply(env, view)
        if len(page) < 5000:
            return view.rows
        start = page[-1].id + 1


def checkpoint(url: str, schema: str, topic: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT position FROM {schema}.watermark WHERE topic = %s", (topic,)
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def eventually(condition: Callable[[], bool], timeout: float = 60, alive: Callable[[], bool] = lambda: True) -> None:
    """Wait until `condition` holds; `timeout` is an upper bound, and `alive` fails it early."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert alive(), "the process under test died"
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


def relay_row(url: str, topic: str) -> dict[str, Any]:
    """The relay's stored row for a topic (position, counts, blocked columns), or {}."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM relay.position WHERE topic = %s", (topic,)).fetchone()
    return dict(row or {})


def kill_backends(url: str, pids: list[int]) -> int:
    """pg_terminate_backend on these server processes (a restarted server, as a client sees it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return sum(bool(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]) for pid in pids)


def read_partition(bootstrap: str, topic: str, partition: int, until: Callable[[list[Any]], bool],
                   timeout: float = 60) -> list[Any]:
    """Every message of a partition until `until(messages)` holds, and whatever else arrives
    within a second after. Read until then: Tansu reports end offsets short."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=20, enable_auto_commit=False)
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out: list[Any] = []
    deadline, settle = time.monotonic() + timeout, None
    while settle is None or time.monotonic() < settle:
        assert time.monotonic() < deadline, f"{topic}[{partition}] does not hold what was expected"
        out.extend(consumer.poll(timeout_ms=200).get(tp, []))
        if settle is None and until(out):
            settle = time.monotonic() + 1.0
    consumer.close()
    return out


def positions_on_the_topic(bootstrap: str, topic: str, last: int, partition: int = 0) -> list[int]:
    """The store positions a partition's messages carry, in offset order, up to `last` and beyond."""
    messages = read_partition(bootstrap, topic, partition, lambda ms: any(position_of(m.headers) == last for m in ms))
    return [position_of(m.headers) or 0 for m in messages]
def stream_ticket(store: ApplicationHost, contract_id: Any, i: int) -> Ticket:
    """Ticket `i` of a stream, not saved yet: opened, responded, three time entries (35
    minutes), paused, then resumed (odd `i`) or resolved (even): seven events."""
    now = store.app.clock.now()
    ticket = Ticket(contract_id, f"ticket {i}", "ops", "portal", "P2", None, None, now)
    ticket.respond(now)
    for minutes in (5, 10, 20):
        ticket.consume_time(minutes, "work", None, now)
    ticket.pause("waiting", now)
    ticket.resume(now) if i % 2 else ticket.resolve("fixed", now)
    return ticket


def write_tickets(store: ApplicationHost, count: int) -> tuple[str, list[str]]:
    """A contract and `count` stream tickets, saved twenty at a time; their ids."""
    cid = store.app.sign_contract("Stream Ltd", "crm-experts/platinum", "2026-01-01").aggregate_id
    tickets = [stream_ticket(store, cid, i) for i in range(count)]
    for first in range(0, count, 20):
        store.app.save(*tickets[first:first + 20])
    return str(cid), [str(t.id) for t in tickets]


def relay_from_here(settings: Settings, store: ApplicationHost, topic: str, batch: int = 2000) -> Relay:
    """A relay of the topic that starts at the store's head (the test's own events only)."""
    relay = make_relay(settings, store, topic)
    relay.check_topic()
    relay.state.position, relay.batch_size = store.head(), batch
    return relay


def relay_until(relay: Relay, position: int, pause: float = 0.0) -> None:
    """Publish up to `position` (at most one batch beyond), pausing between batches."""
    while relay.state.position < position and relay.step():
        time.sleep(pause)


def reach_head(store: ApplicationHost, position: int) -> None:
    """Record events until the store's head is at `position` at least, so that messages
    numbered up to it carry positions the runner trusts."""
    while store.head() < position:
        store.app.sign_contract("Filler Ltd", "crm-experts/gold", "2026-01-01")


def message(env: Envelope, claims: int | None = None, garbled: bool = False) -> tuple[bytes, bytes, Any]:
    """The relay's message of an envelope: key (its contract), value and headers; `claims`, a
    position for the header to claim instead of the event's; garbled, one nobody can decode.
    Encoded without the relay's range check, as another producer might send it."""
    with mock.patch("infra.kafka.avro.validate", return_value=None):
        value, headers = Codec().encode(env)
    if claims is not None:
        headers = [(k, str(claims).encode() if k == H_POSITION else v) for k, v in headers]
    if garbled:
        value, headers = b"\x00garbage", [(k, v) for k, v in headers if k == H_POSITION]
    return env.contract_id.encode(), value, headers


def publish(settings: Settings, topic: str, messages: list[tuple[bytes, bytes, Any]]) -> None:
    """Send the messages to a fresh topic of one partition."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()


def parked(url: str, schema: str) -> list[tuple[int | None, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT position, reason FROM {schema}.dead_letter ORDER BY id").fetchall()
    return [(r[0], r[1]) for r in rows]


def lease_holder(url: str, role: str) -> str | None:
    """The application name of the session holding a lease, if one does."""
    with psycopg.connect(url, autocommit=True) as conn:
        pid = leases.holder(conn, role)
        row = conn.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row[0] if row else None


def apply_in_batches(conn: psycopg.Connection, projection: Any, view: Callable[[], Any], envs: list[Envelope],
                     batch: int) -> None:
    """Apply the events as the runner does, a batch per transaction, each batch together with
    the one before it again (a redelivery the rows must drop); every other batch has its rows
    read ahead as the runner does (`prefetch`), the others read them when first got."""
    for n, first in enumerate(range(0, len(envs), batch)):
        with conn.pipeline():
            rows = view()
            delivered = envs[max(0, first - batch):first + batch]
            if n % 2:
                rows.prefetch({env.contract_id for env in delivered})
            for env in delivered:
                projection.apply(env, rows)
            rows.flush()
        conn.commit()
