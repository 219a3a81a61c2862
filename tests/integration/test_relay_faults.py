"""The relay under faults, on a real PostgreSQL and broker: an event it cannot publish blocks
it (never skipped, never a crash), a broker outage is waited out, killed connections are
reopened; in every case the topic ends with every event and the relay's table matches it.

Each test relays a store of its own, so that an unpublishable event written straight into
it cannot reach another test's relay.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from consumers.relay import Relay
from domain.ticket import Ticket
from infra.postgres import leases
from infra.postgres.relay_log import PgRelayLog
from infra.postgres.store import ApplicationHost
from infra.process import embedded
from infra.process.catalog import load_catalog
from infra.settings import Settings
from tests.integration.helpers import (
    eventually,
    kill_backends,
    make_relay,
    positions_on_the_topic,
    relay_row,
    unique,
)
from tests.integration.test_relay_and_runner import some_history

TIME_TOPIC = get_topic(Ticket.TimeConsumed)


@pytest.fixture
def own_store(servers: Settings) -> Iterator[ApplicationHost]:
    store = ApplicationHost(servers.database_url or "", load_catalog(), schema=unique("relay_store"))
    yield store
    store.close()


class Running:
    """A relay running in a thread as it runs in its process, stopped when the block ends."""

    def __init__(self, relay: Relay) -> None:
        self.relay, self.stopped = relay, threading.Event()
        self.thread = threading.Thread(target=relay.run, args=(self.stopped.is_set,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        self.thread.join(60)
        self.relay.close()

    def until(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        eventually(condition, timeout, alive=self.thread.is_alive)


def last_time_entry(url: str, store: ApplicationHost) -> tuple[Any, int, dict[str, Any]]:
    """The last time entry's ticket, that ticket's last version, and the entry's fields."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT e.originator_id, (SELECT max(originator_version) FROM {store.table}"
            f" WHERE originator_id = e.originator_id), e.state FROM {store.table} e"
            " WHERE e.topic = %s ORDER BY e.notification_id DESC LIMIT 1", (TIME_TOPIC,)).fetchone()
    assert row is not None
    return row[0], row[1], json.loads(bytes(row[2]))


def write_raw(url: str, store: ApplicationHost, topic: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Store, straight through the recorder, a copy of the last time entry as the next event
    of its ticket, under `topic`, then apply `change` to its fields in SQL (the recorder's
    pipelined insert stalls on a state of megabytes); return its position."""
    ticket, version, state = last_time_entry(url, store)
    store.recorder.insert_events([StoredEvent(ticket, version + 1, topic, json.dumps(state).encode())])
    rewrite(url, store, store.head(), topic, change(state))
    return store.head()


def rewrite(url: str, store: ApplicationHost, position: int, topic: str, state: dict[str, Any]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE {store.table} SET topic = %s, state = %s WHERE notification_id = %s",
                     (topic, json.dumps(state).encode(), position))


def repair(url: str, store: ApplicationHost, position: int) -> None:
    """Make the stored event publishable: an ordinary 30-minute time entry."""
    _, _, state = last_time_entry(url, store)
    rewrite(url, store, position, TIME_TOPIC, state | {"minutes": 30, "engineer": None})


def all_positions(store: ApplicationHost) -> list[int]:
    return [n.id for n in store.recorder.select_notifications(start=1, limit=10**6)]


def assert_topic_matches_the_relay_table(settings: Settings, store: ApplicationHost, topic: str) -> None:
    """Every stored event once, in order, and the relay's counts say exactly that."""
    row = relay_row(settings.database_url or "", topic)
    assert row["position"] == store.head() and row["blocked_position"] is None
    assert positions_on_the_topic(settings.kafka_bootstrap or "", topic, row["position"]) == all_positions(store)
    assert row["partitions"] == {"0": [len(all_positions(store)), store.head()]}
    assert row["published"] == len(all_positions(store))


POISONS = {
    "an int beyond Avro's long": (TIME_TOPIC, lambda s: s | {"minutes": 2**70}, "cannot encode"),
    "an unknown event type": ("domain.ticket:Ticket.Teleported", lambda s: s, "cannot encode"),
    "a message over the size limit": (TIME_TOPIC, lambda s: s | {"engineer": "x" * 2_000_000}, "TooLarge"),
}


@pytest.mark.parametrize("poison", POISONS)
def test_an_event_the_relay_cannot_publish_blocks_it_there_until_fixed_and_nothing_after_it_goes_out(
    servers: Settings, own_store: ApplicationHost, poison: str
) -> None:
    url, topic = servers.database_url or "", unique("events")
    event_topic, change, reason = POISONS[poison]
    some_history(own_store)
    bad = write_raw(url, own_store, event_topic, change)
    some_history(own_store)
    with Running(make_relay(servers, own_store, topic)) as running:
        running.until(lambda: relay_row(url, topic).get("blocked_position") == bad)
        running.until(lambda: running.relay.blocked is not None and running.relay.blocked.attempts >= 3)
        row = relay_row(url, topic)
        assert row["position"] == bad - 1 and reason in row["blocked_reason"] and row["blocked_since"] is not None
        assert positions_on_the_topic(servers.kafka_bootstrap or "", topic, bad - 1) == list(range(1, bad))
        repair(url, own_store, bad)
        running.until(lambda: relay_row(url, topic).get("position") == own_store.head())
    assert_topic_matches_the_relay_table(servers, own_store, topic)
    assert relay_row(url, topic)["blocked_reason"] is None and relay_row(url, topic)["blocked_since"] is None


def test_a_blocked_relay_keeps_beating_its_heartbeat(servers: Settings, own_store: ApplicationHost) -> None:
    url, topic = servers.database_url or "", unique("events")
    some_history(own_store)
    bad = write_raw(url, own_store, "domain.ticket:Ticket.Teleported", lambda s: s)

    def beat() -> Any:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT beat_at FROM relay.heartbeat WHERE topic = %s", (topic,)).fetchone()
        return row[0] if row else None

    with Running(make_relay(servers, own_store, topic)) as running:
        running.until(lambda: relay_row(url, topic).get("blocked_position") == bad and beat() is not None)
        first = beat()
        running.until(lambda: beat() > first)
        assert relay_row(url, topic)["blocked_position"] == bad


def test_a_broker_outage_is_waited_out_and_the_topic_ends_with_every_event_once(
    servers: Settings, own_store: ApplicationHost, tmp_path: Any
) -> None:
    url, topic, port = servers.database_url or "", unique("events"), embedded.free_port()
    broker = embedded.start_broker(tmp_path, port)
    settings = servers.with_servers(url, broker.bootstrap)
    some_history(own_store)
    with Running(make_relay(settings, own_store, topic)) as running:
        running.until(lambda: relay_row(url, topic).get("position") == own_store.head())
        broker.stop()
        acknowledged = own_store.head()
        some_history(own_store)
        running.until(lambda: "broker" in (relay_row(url, topic).get("blocked_reason") or ""))
        assert relay_row(url, topic)["position"] == acknowledged, "nothing unacknowledged counts as published"
        assert relay_row(url, topic)["blocked_position"] == acknowledged + 1
        broker = embedded.start_broker(tmp_path, port)  # same address, empty memory: history lost
        running.until(lambda: relay_row(url, topic).get("position") == own_store.head()
                      and relay_row(url, topic).get("blocked_position") is None)
    assert_topic_matches_the_relay_table(settings, own_store, topic)
    broker.stop()


def connections_of(url: str, relay: Relay, store: ApplicationHost) -> list[int]:
    """The relay's lease connection and every connection that last read the store's table."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                            (f"%{store.schema}%",)).fetchall()
    assert isinstance(relay.log, PgRelayLog) and relay.log.db is not None
    return [relay.log.db.info.backend_pid, *(pid for (pid,) in rows)]


def test_after_its_database_connections_are_killed_the_relay_reconnects_takes_its_lease_and_catches_up(
    servers: Settings, own_store: ApplicationHost
) -> None:
    url, topic = servers.database_url or "", unique("events")
    some_history(own_store)
    with Running(make_relay(servers, own_store, topic)) as running:
        running.until(lambda: relay_row(url, topic).get("position") == own_store.head())
        old = running.relay.log.db
        assert kill_backends(url, connections_of(url, running.relay, own_store)) >= 2
        some_history(own_store)
        running.until(lambda: relay_row(url, topic).get("position") == own_store.head())
        with leases.connect(url) as conn:
            assert running.relay.log.db is not old and running.relay.log.db is not None
            assert leases.holder(conn, f"relay:{topic}") == running.relay.log.db.info.backend_pid
    assert_topic_matches_the_relay_table(servers, own_store, topic)
