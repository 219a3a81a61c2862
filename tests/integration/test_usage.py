"""The credit check's port on PostgreSQL (infra/postgres/usage.py): a contract's time entries,
counted by (kind, minutes) from the events table and kept up to a store position, so a check
reads only what was stored since; and what each writer (API process) counts when another
records entries on the same contract."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.utils import TopicError, get_topic, register_topic

from domain import commands
from domain.errors import Conflict
from domain.ticket import Ticket
from infra import postgres
from infra.postgres import usage
from infra.postgres.store import ApplicationHost
from infra.process.catalog import load_catalog
from infra.settings import Settings
from tests.integration.helpers import unique

TIME_TOPIC = get_topic(Ticket.TimeConsumed)


def credit_contract(store: ApplicationHost, credits: int) -> str:
    cid = store.handle(commands.Sign("Acme", "dolibarr/credits", "2026-01-01")).aggregate_id
    store.handle(commands.BuyCredits(cid, credits))
    return cid


def balance(store: ApplicationHost, contract_id: str) -> int:
    contract = store.app.contract(contract_id)
    return store.app.credit_balance(contract, store.app.terms_of(contract))


def test_the_credit_check_counts_time_entries_by_kind_and_minutes(store: ApplicationHost) -> None:
    cid = credit_contract(store, 100)
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    for minutes, kind in [(50, "intervention"), (1, "query"), (1, "query")]:
        store.handle(commands.RecordTime(tid, minutes, kind))
    assert dict(store.usage(cid)) == {("intervention", 50): 1, ("query", 1): 2}
    assert dict(store.usage(str(uuid4()))) == {}


def test_a_credit_contract_whose_credits_are_spent_refuses_a_new_ticket_until_it_buys_more(
        store: ApplicationHost) -> None:
    cid = credit_contract(store, 60)
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.RecordTime(tid, 40, "intervention"))  # 45 credits: 15 left
    store.handle(commands.Open(cid, "t2", "r"))
    store.handle(commands.RecordTime(tid, 10, "query"))  # 15 more: none left
    with pytest.raises(Conflict, match="no credits left") as refused:
        store.handle(commands.Open(cid, "t3", "r"))
    assert refused.value.detail == {"balance": 0}
    store.handle(commands.BuyCredits(cid, 15))
    store.handle(commands.Open(cid, "t3", "r"))


def test_each_writer_counts_the_entries_the_other_recorded_since_it_last_counted(
        store: ApplicationHost, other: ApplicationHost) -> None:
    cid = credit_contract(store, 100)
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id  # this writer has counted: nothing
    other.handle(commands.Open(cid, "t2", "r"))  # and so has the other
    store.handle(commands.RecordTime(tid, 40, "intervention"))  # 45 credits
    assert balance(other, cid) == 55
    other.handle(commands.RecordTime(tid, 10, "query"))  # 15
    other.handle(commands.RecordTime(tid, 10, "query"))  # 15
    assert dict(store.usage(cid)) == {("intervention", 40): 1, ("query", 10): 2}
    assert balance(store, cid) == balance(other, cid) == 25
    other.handle(commands.RecordTime(tid, 30, "query"))  # 30: 5 over
    with pytest.raises(Conflict, match="no credits left") as refused:
        store.handle(commands.Open(cid, "t3", "r"))
    assert refused.value.detail == {"balance": -5}


def test_what_is_counted_moves_on_to_the_head_even_when_the_contract_has_nothing_new(
        store: ApplicationHost) -> None:
    cid = credit_contract(store, 100)
    store.usage(cid)
    head = store.app.sign_contract("Other", "crm-experts/gold", "2026-01-01").position
    store.usage(cid)
    assert store.usage._kept(cid)[0] >= head


@pytest.fixture
def own_store(servers: Settings) -> Iterator[ApplicationHost]:
    """A store in a schema of its own: its rows may be altered without the session's relay
    publishing them."""
    store = ApplicationHost(servers.database_url or "", load_catalog(), servers.clock, schema=unique("usage_store"))
    yield store
    store.close()


def stored_under(store: ApplicationHost, topic: str, ticket_id: str) -> None:
    """Rewrite the ticket's time entries as if they had been stored under `topic`."""
    postgres.run(store.pool, lambda conn: conn.execute(
        f"UPDATE {store.table} SET topic = %s WHERE originator_id = %s AND topic = %s", (topic, ticket_id, TIME_TOPIC)))


def test_entries_stored_under_an_older_topic_of_their_class_still_count(own_store: ApplicationHost) -> None:
    cid = credit_contract(own_store, 100)
    tid = own_store.handle(commands.Open(cid, "t", "r")).aggregate_id
    own_store.handle(commands.RecordTime(tid, 50, "intervention"))
    old = "domain.tickets_before_a_move:Ticket.TimeConsumed"
    register_topic(old, Ticket.TimeConsumed)  # what moving the class would register
    stored_under(own_store, old, tid)
    own_store.handle(commands.RecordTime(tid, 1, "query"))  # under the class's own topic
    assert dict(own_store.usage(cid)) == {("intervention", 50): 1, ("query", 1): 1}


def test_an_entry_the_mapper_cannot_read_fails_the_check_rather_than_count_as_nothing(
        own_store: ApplicationHost) -> None:
    cid = credit_contract(own_store, 100)
    tid = own_store.handle(commands.Open(cid, "t", "r")).aggregate_id
    own_store.handle(commands.RecordTime(tid, 50, "intervention"))
    stored_under(own_store, "domain.nowhere:Ticket.TimeConsumed", tid)
    with pytest.raises(TopicError):
        own_store.handle(commands.Open(cid, "t2", "r"))



def fresh(servers: Settings, schema: str) -> ApplicationHost:
    """Another host on the store, with nothing counted yet: as a freshly started API process."""
    return ApplicationHost(servers.database_url or "", load_catalog(), servers.clock, schema=schema)


def test_a_fresh_process_starts_from_the_saved_counts_and_decodes_only_the_entries_stored_after_them(
        own_store: ApplicationHost, servers: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "SAVE_AFTER", 3)
    cid = credit_contract(own_store, 100)
    tid = own_store.handle(commands.Open(cid, "t", "r")).aggregate_id  # its check read 2 events
    own_store.handle(commands.RecordTime(tid, 50, "intervention"))
    own_store.handle(commands.RecordTime(tid, 1, "query"))
    own_store.usage(cid)  # 3 more read: 5 past the saved counts (none), so these are saved
    stored_under(own_store, "domain.nowhere:Ticket.TimeConsumed", tid)  # decoding them again would fail
    own_store.handle(commands.RecordTime(tid, 10, "query"))
    started = fresh(servers, own_store.schema)
    try:
        assert dict(started.usage(cid)) == {("intervention", 50): 1, ("query", 1): 1, ("query", 10): 1}
    finally:
        started.close()


def test_writers_that_save_at_every_check_count_what_a_fresh_process_counts(
        store: ApplicationHost, other: ApplicationHost, servers: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "SAVE_AFTER", 1)
    cid = credit_contract(store, 100)
    tid = store.handle(commands.Open(cid, "t", "r")).aggregate_id
    store.handle(commands.RecordTime(tid, 40, "intervention"))
    other.handle(commands.Open(cid, "t2", "r"))  # counted and saved by the other writer
    store.handle(commands.RecordTime(tid, 10, "query"))
    assert balance(store, cid) == 40  # 45 + 15 spent, counted from this writer's own position
    other.handle(commands.RecordTime(tid, 10, "query"))
    started = fresh(servers, store.schema)
    try:
        expected = {("intervention", 40): 1, ("query", 10): 2}
        assert dict(started.usage(cid)) == dict(store.usage(cid)) == dict(other.usage(cid)) == expected
    finally:
        started.close()


def test_counts_saved_under_another_version_of_the_time_entry_class_are_counted_again(
        own_store: ApplicationHost, servers: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "SAVE_AFTER", 1)
    cid = credit_contract(own_store, 100)
    tid = own_store.handle(commands.Open(cid, "t", "r")).aggregate_id
    position = own_store.handle(commands.RecordTime(tid, 50, "intervention")).position
    own_store.usage(cid)  # saved
    postgres.run(own_store.pool, lambda conn: conn.execute(  # what a new upcasting would read it as
        f"UPDATE {own_store.table} SET state = convert_to(jsonb_set(convert_from(state, 'UTF8')::jsonb,"
        " '{minutes}', '55')::text, 'UTF8') WHERE notification_id = %s", (position,)))
    same, upcast = fresh(servers, own_store.schema), fresh(servers, own_store.schema)
    upcast.usage.version += 1
    try:
        assert dict(same.usage(cid)) == {("intervention", 50): 1}  # the saved counts
        assert dict(upcast.usage(cid)) == {("intervention", 55): 1}  # counted again
    finally:
        same.close()
        upcast.close()
