"""Commit time and the hash chains on the real PostgreSQL: each event's link is computed in the
append's transaction, the chains verify from the stored bytes alone (domain/chain.py), and an
altered, dropped or reordered event is named."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise

import psycopg

from domain import chain
from infra.postgres.store import ApplicationHost
from infra.settings import Settings


def _contract_with_tickets(store: ApplicationHost, tickets: int = 2) -> str:
    app = store.app
    cid = store.run(lambda: app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", at="2026-01-01T00:00:00Z"))
    for i in range(tickets):
        tid = store.run(lambda i=i: app.open_ticket(cid.aggregate_id, f"t{i}", "ana", at="2026-01-02T09:00:00Z"))
        store.run(lambda tid=tid: app.respond(tid.aggregate_id, at="2026-01-02T10:00:00Z"))
    return cid.aggregate_id


@contextmanager
def tampered(servers: Settings, statement: str, params: tuple[object, ...]) -> Iterator[None]:
    """Change the stored events behind the store's back, and put them back afterwards."""
    assert servers.database_url
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        # A live relay (the session's backend, if one runs) must have published the untouched
        # events first: what it would publish of the altered bytes would stay in the read models.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and conn.execute(
                "SELECT to_regclass('relay.position') IS NOT NULL AND EXISTS (SELECT 1 FROM relay.position"
                " WHERE topic = %s AND position < (SELECT max(notification_id) FROM es.ticketing_events))",
                (servers.events_topic,)).fetchone()[0]:
            time.sleep(0.05)
    with psycopg.connect(servers.database_url) as conn:
        saved = conn.execute("SELECT notification_id, state, originator_version FROM es.ticketing_events"
                             " ORDER BY notification_id").fetchall()
        conn.execute(statement, params)
        conn.commit()
        try:
            yield
        finally:
            conn.execute("SELECT 1")
            for position, state, _ in saved:
                conn.execute("UPDATE es.ticketing_events SET state = %s WHERE notification_id = %s", (state, position))
            conn.commit()


def test_every_contracts_chain_verifies_and_its_head_is_the_proof(store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store)
    verdict = next(store.verify_chains(cid))
    assert verdict.ok and verdict.events == 5  # signed, two tickets opened and answered
    proof = store.proof(cid)
    assert proof == {"contract_id": cid, "head_hash": verdict.head.hex(), "events": 5, "position": verdict.position}
    recorded = store.recorded_of(cid)
    assert [e.position for e, _ in recorded] == sorted(e.position for e, _ in recorded)
    assert all(link.stored_hash is not None for _, link in recorded)


def test_commit_times_never_go_back_as_positions_go_up(store: ApplicationHost) -> None:
    with ThreadPoolExecutor(8) as pool:
        contracts = list(pool.map(lambda _: _contract_with_tickets(store, 1), range(16)))
    rows = [(e.position, link.committed_at) for cid in contracts for e, link in store.recorded_of(cid)]
    rows.sort()
    assert all(a[1] <= b[1] for a, b in pairwise(rows))


def test_an_altered_event_is_named_by_its_position(servers: Settings, store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store)
    opened = store.recorded_of(cid)[1][0]  # the first ticket's opening: its channel becomes another
    assert opened.data["channel"] == "portal"
    statement = ("UPDATE es.ticketing_events SET state = convert_to(replace(convert_from(state, 'UTF8'), 'portal', 'email'),"
                 " 'UTF8') WHERE notification_id = %s")
    with tampered(servers, statement, (opened.position,)):
        assert store.recorded_of(cid)[1][0].data["channel"] == "email"
        verdict = next(store.verify_chains(cid))
        assert not verdict.ok and verdict.broken_at == opened.position
    assert next(store.verify_chains(cid)).ok  # put back: whole again


def test_a_changed_byte_anywhere_is_caught_and_the_command_names_it(servers: Settings, store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store)
    victim = store.recorded_of(cid)[1][0]
    # one space more before the JSON: the same fields to any reader, different bytes to the chain
    statement = "UPDATE es.ticketing_events SET state = '\\x20'::bytea || state WHERE notification_id = %s"
    with tampered(servers, statement, (victim.position,)):
        verdict = next(store.verify_chains(cid))
        assert verdict.broken_at == victim.position
        env = servers.child_env()
        done = subprocess.run([sys.executable, "-m", "infra.process.cli", "verify", "--store", cid], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and f"BROKEN  at position {victim.position}" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "infra.process.cli", "verify", "--store", cid],
                          env=servers.child_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and " ok " in done.stdout


def test_a_dropped_event_breaks_the_chain_at_the_next_one(servers: Settings, store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store)
    events = [e for e, _ in store.recorded_of(cid)]
    assert servers.database_url
    with psycopg.connect(servers.database_url) as conn:
        row = conn.execute("SELECT * FROM es.ticketing_events WHERE notification_id = %s", (events[2].position,)).fetchone()
        conn.execute("DELETE FROM es.ticketing_events WHERE notification_id = %s", (events[2].position,))
        conn.commit()
        try:
            verdict = next(store.verify_chains(cid))
            assert verdict.broken_at == events[3].position
        finally:
            assert row is not None
            conn.execute(f"INSERT INTO es.ticketing_events VALUES ({', '.join(['%s'] * len(row))})", row)
            conn.commit()
    assert next(store.verify_chains(cid)).ok


def test_the_python_links_equal_the_stored_ones_for_each_event(store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store, 3)
    head = chain.GENESIS
    for _, link in store.recorded_of(cid):
        head = link.after(head)
        assert head == link.stored_hash


def test_known_at_keeps_only_what_was_committed_by_then(store: ApplicationHost) -> None:
    cid = _contract_with_tickets(store, 1)
    known = store.recorded_of(cid)[-1][1].committed_at
    app = store.app
    late = store.run(lambda: app.open_ticket(cid, "back-dated", "ana", at="2026-01-02T08:00:00Z"))
    then = store.history(cid, store.app.clock.now(), known)
    now = store.history(cid, store.app.clock.now())
    assert late.aggregate_id not in {e["aggregate_id"] for e in then["events"]}
    assert late.aggregate_id in {e["aggregate_id"] for e in now["events"]}
    assert len(then["tickets"]) == 1 and len(now["tickets"]) == 2
    assert uuid.UUID(then["events"][0]["aggregate_id"]) == uuid.UUID(cid)
    assert all(e["committed_at"] <= known.isoformat() for e in then["events"])
