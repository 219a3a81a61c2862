"""The runner on a real PostgreSQL and broker, against what goes wrong: poison that fails only
when the view writes its rows (parked, the rest of the batch applied, the runner goes on),
messages claiming positions the store never reached (parked, hiding nothing), parked events
counted as consumed by the watermark, its connection killed under it mid-stream (it reconnects
and applies nothing twice), and the death of the runner that holds a partition's lease (the
standby, another process, takes over)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from consumers.runner import Runner
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.process.catalog import load_catalog
from infra.settings import Settings
from projections.envelope import Envelope
from tests.integration.helpers import (
    checkpoint,
    clean_rebuild,
    drive,
    lease_holder,
    make_runner,
    message,
    parked,
    publish,
    reach_head,
    read_model,
    relay_from_here,
    relay_until,
    tickets_schema,
    unique,
    write_tickets,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Stream:
    """Envelopes of one contract and its tickets, numbered from 1 in store order."""

    def __init__(self, plan: str = "crm-experts/gold", zone: str | None = None) -> None:
        terms = load_catalog()[plan].to_dict()
        self.cid, self.envs = str(uuid.uuid4()), []
        self.add("Contract.Signed", self.cid, customer="Acme", plan_id=plan, terms=terms,
                 starts_on="2026-01-01", time_zone=zone or terms["time_zone"], holidays=[])

    def add(self, type_: str, aggregate: str, at: datetime = T0, **data: Any) -> Envelope:
        env = Envelope(len(self.envs) + 1, type_, aggregate, 1, self.cid, at, at, data)
        self.envs.append(env)
        return env

    def open(self, ticket: str, at: datetime = T0) -> None:
        self.add("Ticket.Opened", ticket, at, title="x", reporter="ana", channel="portal", priority="P2",
                 category=None, down_since=None)

    def time(self, ticket: str, minutes: int) -> None:
        self.add("Ticket.TimeConsumed", ticket, minutes=minutes, kind="work", engineer=None)


def consume(settings: Settings, store: ApplicationHost, name: str, envs: list[Envelope],
            messages: list[Any] | None = None) -> str:
    """Publish the envelopes (or these messages of theirs) to a topic of their own and run the
    projection's runner into a schema of its own until its watermark passes the last
    envelope's position; that schema."""
    url = settings.database_url or ""
    topic, schema = unique("events"), unique(f"test_{name}")
    wiring.create_tables(url, name, schema)
    last = envs[-1].position
    reach_head(store, last)
    publish(settings, topic, messages or [message(e) for e in envs])
    runner = wiring.runner(settings, name, schema, topic)
    runner.resume()
    drive(runner.step, lambda: checkpoint(url, schema, topic) >= last)
    runner.close()
    return schema


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_an_entry_the_ledger_cannot_write_is_parked_and_the_rest_of_its_batch_applied(
    servers: Settings, store: ApplicationHost
) -> None:
    s = Stream()
    s.time("t-1", 30)
    s.time("t-1", 2**31)  # fits the event, not the ledger's int column: fails at the write
    s.time("t-2", 45)
    s.add("Ticket.Resolved", "t-1", reason=None)
    url = servers.database_url or ""
    schema = consume(servers, store, "ledger", s.envs)
    assert [(p, "out of range" in why) for p, why in parked(url, schema)] == [(3, True)]
    assert rows(url, f"SELECT used, entries FROM {schema}.periods") == [(75, 2)]
    assert rows(url, f"SELECT ticket_id, minutes FROM {schema}.statements") == [("t-1", 30)]


def test_an_sla_clock_beyond_the_calendars_range_is_parked_and_the_runner_goes_on(
    servers: Settings, store: ApplicationHost
) -> None:
    s = Stream(zone="Asia/Tokyo")
    s.open("t-1")
    s.open("t-2", datetime(1, 1, 1, tzinfo=UTC))  # its deadlines overflow when the view derives them
    s.add("Ticket.Responded", "t-1")
    url = servers.database_url or ""
    schema = consume(servers, store, "sla", s.envs)
    assert [p for p, _ in parked(url, schema)] == [3]
    assert rows(url, f"SELECT ticket_id, response_stopped_at FROM {schema}.sla_tickets") == [("t-1", T0)]


def test_a_position_beyond_the_stores_head_is_parked_and_hides_nothing_while_a_trusted_one_counts_as_consumed(
    servers: Settings, store: ApplicationHost
) -> None:
    s = Stream()
    s.open("t-1")
    s.time("t-1", 10_000)  # forged below: header and body claim a position the store never reached
    s.time("t-1", 20)
    s.add("Ticket.Resolved", "t-1", reason=None)
    s.add("Ticket.Cancelled", "t-1", reason=None)  # garbled below, at a position the store holds
    forged = replace(s.envs[2], position=10**12)
    messages = [message(e) for e in s.envs[:2]] + [message(forged)]
    messages += [message(e) for e in s.envs[3:5]] + [message(s.envs[5], garbled=True)]
    url = servers.database_url or ""
    schema = consume(servers, store, "tickets", s.envs, messages)  # the watermark passes the garbled 6
    (beyond, position), (undecodable, reason) = parked(url, schema)
    assert beyond == 10**12 and position.startswith("position 1000000000000 beyond the store's head")
    assert undecodable == 6 and reason.startswith("undecodable")
    ticket = read_model(url, schema)["t-1"]
    assert (ticket["minutes"], ticket["status"], ticket["position"]) == (20, "resolved", 5)


def backend_pid(runner: Runner, other_than: int | None = None, timeout: float = 30) -> int:
    """The server process of the runner's connection, once it has one (other than a given one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = getattr(runner.session, "db", None)  # the PostgreSQL session's connection
        pid = conn.info.backend_pid if conn is not None and not conn.closed else None
        if pid and pid != other_than:
            return pid
        time.sleep(0.01)
    raise TimeoutError("the runner has no new connection")


def test_a_runner_whose_connection_is_killed_mid_stream_reconnects_and_applies_nothing_twice(
    servers: Settings, store: ApplicationHost, db: psycopg.Connection
) -> None:
    url = servers.database_url or ""
    topic, schema = unique("events"), tickets_schema(url)
    relay = relay_from_here(servers, store, topic, batch=100)
    _, tids = write_tickets(store, 300)  # 2,101 events
    head = store.head()
    relay_until(relay, relay.state.position + 700)
    runner, stop = make_runner(servers, schema, topic), threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        drive(lambda: time.sleep(0.01), lambda: checkpoint(url, schema, topic) >= relay.state.position)
        rest = threading.Thread(target=relay_until, args=(relay, head, 0.02))
        rest.start()  # the rest of the stream flows while the runner's connection is killed, twice
        pid = backend_pid(runner)
        for _ in range(2):
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            pid = backend_pid(runner, other_than=pid)
        rest.join()
        drive(lambda: time.sleep(0.05), lambda: checkpoint(url, schema, topic) >= head, timeout=60)
        assert thread.is_alive(), "the runner healed without a restart"
    finally:
        stop.set()
        thread.join(30)
        runner.close()
        relay.close()
    built, clean = read_model(url, schema), clean_rebuild(store, upto=head)
    assert set(tids) <= set(built) and built == {k: clean[k] for k in built}
    assert sum(built[t]["minutes"] for t in tids) == 35 * 300
    assert parked(url, schema) == [], "a database fault is not poison"


# Two runners of one projection, as processes.


def start(settings: Settings, schema: str, topic: str, name: str) -> subprocess.Popen[bytes]:
    """A runner of the ticket list, its database sessions named `name`."""
    env = settings.child_env() | {"PGAPPNAME": name, "TICKETING_JSON_LOGS": "1"}
    log = open(settings.data_dir / f"{name}-{schema}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "tests.integration.runner_process", "tickets", schema, topic],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def eventually(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s"
        time.sleep(0.05)


def test_a_standby_runner_takes_over_within_ten_seconds_of_the_active_ones_death_and_applies_nothing_twice(
    servers: Settings, store: ApplicationHost
) -> None:
    url = servers.database_url or ""
    topic, schema = unique("events"), tickets_schema(url)
    relay = relay_from_here(servers, store, topic, batch=100)
    _, tids = write_tickets(store, 300)  # 2,101 events
    head, lease = store.head(), f"apply:tickets@{schema}:0"
    relay_until(relay, relay.state.position + 700)
    runners = {name: start(servers, schema, topic, name) for name in ("runner-a", "runner-b")}
    try:
        eventually(lambda: checkpoint(url, schema, topic) >= relay.state.position, within=60)
        active = lease_holder(url, lease)
        assert active in runners, "one runner holds the partition's lease"
        (standby,) = set(runners) - {active}
        assert runners[standby].poll() is None, "the other one waits"
        rest = threading.Thread(target=relay_until, args=(relay, head, 0.02))
        rest.start()
        runners[active].kill()  # SIGKILL while the rest of the stream flows
        runners[active].wait()
        eventually(lambda: lease_holder(url, lease) == standby, within=10)
        rest.join()
        eventually(lambda: checkpoint(url, schema, topic) >= head, within=60)
    finally:
        for process in runners.values():
            process.kill()
            process.wait()
        relay.close()
    built, clean = read_model(url, schema), clean_rebuild(store, upto=head)
    assert set(tids) <= set(built) and built == {k: clean[k] for k in built}
    assert sum(built[t]["minutes"] for t in tids) == 35 * 300
    assert parked(url, schema) == []
