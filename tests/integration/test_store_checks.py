"""What the store refuses before anything is written: an event its Avro schema cannot carry,
or one the broker would not take, so that whatever is stored can be relayed; and a command whose
first attempt decided on a cached state that another writer has since changed."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import commands
from domain.errors import Conflict, InvalidInput
from domain.ticket import Ticket
from infra.postgres.store import ApplicationHost


def test_an_event_beyond_its_schema_is_refused_and_nothing_is_stored(store: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    tid = store.app.open_ticket(cid, "t", "r").aggregate_id
    ticket = store.app.ticket(tid)
    ticket._time_consumed(cid, 2**31, "work", None, ticket.last_at)  # past every guard: beyond an Avro int
    with pytest.raises(InvalidInput, match="schema"):
        store.app.save(ticket)
    assert store.app.ticket(tid).version == 1


def test_an_event_over_the_message_size_is_refused_and_nothing_is_stored(store: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    head = store.head()
    huge = Ticket(cid, "x" * 1_100_000, "r", "portal", None, None, None, store.app.now())
    with pytest.raises(InvalidInput, match="too large"):
        store.app.save(huge)
    assert store.head() == head


# -- a command's first attempt decides on the cached state unchecked -------------------------


def stored_topics(store: ApplicationHost, ticket_id: str) -> list[str]:
    rows = store._query(f"SELECT topic FROM {store.table} WHERE originator_id = %s ORDER BY originator_version",
                        (UUID(ticket_id),))
    return [topic for (topic,) in rows]


def test_a_refusal_on_a_cached_state_that_another_writer_changed_is_decided_again_on_the_store(
        store: ApplicationHost, other: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.Pause(tid))  # this writer's cache: paused
    other.handle(commands.Resume(tid))  # the store: open again
    store.handle(commands.Pause(tid))  # refused on the cache ("already paused"), accepted on the store
    assert [t.rsplit(".", 1)[-1] for t in stored_topics(store, tid)][-3:] == ["Paused", "Resumed", "Paused"]


def test_a_decision_on_a_cached_state_that_another_writer_changed_is_not_recorded(
        store: ApplicationHost, other: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id  # this writer's cache: open
    other.handle(commands.Pause(tid))
    with pytest.raises(Conflict):
        store.handle(commands.Pause(tid))  # fine on the cache, refused on the store
    assert store.app.ticket(tid).version == 2


def test_an_aggregate_read_from_the_cache_but_not_written_is_checked_against_the_store(
        store: ApplicationHost, other: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.RecordTime(tid, 5, "work"))  # this writer's cache: an active contract
    other.handle(commands.CancelContract(cid))
    with pytest.raises(Conflict):
        store.handle(commands.RecordTime(tid, 5, "work"))
    assert len(stored_topics(store, tid)) == 2
