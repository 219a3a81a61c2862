"""What the store refuses before anything is written: an event its Avro schema cannot carry,
or one the broker would not take, so that whatever is stored can be relayed; and the credit
check, which reads a contract's time entries back from the events table; and a command whose
first attempt decided on a cached state that another writer has since changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from domain import commands
from domain.errors import Conflict, InvalidInput
from domain.ticket import Ticket
from infra.postgres.store import ApplicationHost
from infra.process import wiring


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


# -- the credit check's port: time entries read back from the events table -------------------


def stored_topics(store: ApplicationHost, ticket_id: str) -> list[str]:
    rows = store._query(f"SELECT topic FROM {store.table} WHERE originator_id = %s ORDER BY originator_version",
                        (UUID(ticket_id),))
    return [topic for (topic,) in rows]


def test_the_credit_check_reads_time_entries_under_the_topic_their_class_is_stored_with(
        store: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "dolibarr/credits", "2026-01-01").aggregate_id
    store.app.add_credits(cid, 100)
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.RecordTime(tid, 50, "intervention"))
    store.handle(commands.RecordTime(tid, 1, "query"))
    # The port asks for the topic the library gives the class, which is what the mapper wrote.
    assert store.usage.topic == get_topic(Ticket.TimeConsumed) == stored_topics(store, tid)[-1]
    assert dict(store.usage(cid)) == {("intervention", 50): 1, ("query", 1): 1}
    assert dict(store.usage(str(uuid4()))) == {}


def test_a_credit_contract_whose_credits_are_spent_refuses_a_new_ticket_until_it_buys_more(
        store: ApplicationHost) -> None:
    cid = store.handle(commands.Sign("Acme", "dolibarr/credits", "2026-01-01")).aggregate_id
    store.handle(commands.BuyCredits(cid, 60))
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.RecordTime(tid, 40, "intervention"))  # 45 credits: 15 left
    store.handle(commands.Open(cid, "t2", "r"))
    store.handle(commands.RecordTime(tid, 10, "query"))  # 15 more: none left
    with pytest.raises(Conflict, match="no credits left") as refused:
        store.handle(commands.Open(cid, "t3", "r"))
    assert refused.value.detail == {"balance": 0}
    store.handle(commands.BuyCredits(cid, 15))
    store.handle(commands.Open(cid, "t3", "r"))


# -- a command's first attempt decides on the cached state unchecked -------------------------


@pytest.fixture
def other(servers: Any) -> Iterator[ApplicationHost]:
    """A second writer on the same store, with a cache of its own (as another API process)."""
    host = wiring.event_store(servers)
    yield host
    host.close()


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
