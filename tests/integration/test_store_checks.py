"""What the store refuses before anything is written: an event its Avro schema cannot carry,
or one the broker would not take, so that whatever is stored can be relayed."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
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
