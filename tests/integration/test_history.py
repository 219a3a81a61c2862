"""The audit history's states on the real store: replayed from the contract's events the
history has read (infra/postgres/store.py), they equal what the repository loads at the same
versions, whether it starts from a snapshot or not, and whether or not the first events of
an aggregate have a commit time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from uuid import UUID

import psycopg

from infra.postgres.store import ApplicationHost
from infra.settings import Settings

START = datetime(2026, 1, 2, 9, tzinfo=UTC)


def _loaded(store: ApplicationHost, shown: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The contract and tickets of a history as the repository loads them at its versions."""
    def at(kind: str, state: dict[str, Any], key: str) -> dict[str, Any]:
        return store.shown(kind, store.app.repository.get(UUID(state[key]), version=state["version"]).state())

    return at("Contract", shown["contract"], "contract_id"), [at("Ticket", t, "ticket_id") for t in shown["tickets"]]


def test_the_history_shows_each_ticket_as_the_repository_loads_it_from_its_snapshots(
        store: ApplicationHost) -> None:
    app = store.app
    cid = app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", at=START).aggregate_id
    busy = app.open_ticket(cid, "Busy", "ana", at=START).aggregate_id
    quiet = app.open_ticket(cid, "Quiet", "bo", at=START).aggregate_id
    app.pause(quiet, "waiting", at=START + timedelta(minutes=30))
    for minute in range(1, 250):  # the busy ticket's version is its last minute plus one
        app.record_time(busy, 1, "work", engineer="eva", at=START + timedelta(minutes=minute))
    assert store.app.snapshots is not None
    assert [s.originator_version for s in store.app.snapshots.get(UUID(busy))] == [100, 200]
    for minute in (150, 200, 249):
        with mock.patch.object(app.repository, "get", wraps=app.repository.get) as loads:
            shown = store.history(cid, START + timedelta(minutes=minute))
        assert loads.call_count == 0  # replayed from the events read, not loaded one by one
        assert [(t["title"], t["version"], t["minutes"]) for t in shown["tickets"]] == [
            ("Busy", minute + 1, minute), ("Quiet", 2, 0)]
        assert (shown["contract"], shown["tickets"]) == _loaded(store, shown)


def test_a_ticket_whose_first_event_has_no_commit_time_still_counts_it(
        servers: Settings, store: ApplicationHost) -> None:
    """Events stored before commit times were recorded have none, so `known_at` leaves them
    out of the events shown; the states shown still count them, as the repository does."""
    app = store.app
    cid = app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", at=START).aggregate_id
    tid = app.open_ticket(cid, "Older", "ana", at=START).aggregate_id
    app.respond(tid, at=START + timedelta(minutes=5))
    known = store.recorded_of(cid)[-1][1].committed_at
    assert servers.database_url
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        where = "WHERE originator_id = %s AND originator_version = 1"
        (committed,) = conn.execute(f"SELECT committed_at FROM {store.table} {where}", (UUID(tid),)).fetchone()
        conn.execute(f"UPDATE {store.table} SET committed_at = NULL {where}", (UUID(tid),))
        try:
            with mock.patch.object(app.repository, "get", wraps=app.repository.get) as loads:
                shown = store.history(cid, START + timedelta(hours=1), known)
        finally:
            conn.execute(f"UPDATE {store.table} SET committed_at = %s {where}", (committed, UUID(tid)))
    assert [e["type"] for e in shown["events"]] == ["Contract.Signed", "Ticket.Responded"]
    assert [(t["title"], t["version"]) for t in shown["tickets"]] == [("Older", 2)]
    assert loads.call_count == 1  # the ticket: its events read lack its first one
    assert (shown["contract"], shown["tickets"]) == _loaded(store, shown)
