"""Erasure on the real store: the key goes before the event, so a crash between the two
leaves the data unreadable already and the retry records the erasure once; snapshots and the
aggregates cached by other hosts hold the sealed text only."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.errors import Conflict
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings


def _cancelled(store: ApplicationHost, customer: str) -> str:
    cid = store.app.sign_contract(customer, "crm-experts/gold", "2026-01-01").aggregate_id
    store.app.open_ticket(cid, f"{customer} cannot log in", "ana")
    store.app.cancel_contract(cid, "leaving")
    return cid


def test_a_crash_after_the_key_is_destroyed_leaves_the_data_unreadable_and_the_retry_records_the_erasure(
        servers: Settings, store: ApplicationHost) -> None:
    cid = _cancelled(store, "Crashing Ltd")
    store.keys.erase(UUID(cid))  # the erasure's first step, then the process died
    shown = store.history(cid, store.app.now())
    assert shown["contract"]["customer"] is None and [t["title"] for t in shown["tickets"]] == [None]
    assert "Crashing" not in str(shown)
    position = store.app.erase_contract(cid).position  # the retry
    assert [e.type for e in store.envelopes_of(cid)].count("Contract.Erased") == 1
    assert store.envelopes_of(cid)[-1].position == position
    with pytest.raises(Conflict):
        store.app.erase_contract(cid)


def test_another_host_that_cached_the_contract_shows_nothing_of_it_after_the_erasure(
        servers: Settings, store: ApplicationHost) -> None:
    cid = _cancelled(store, "Cached SA")
    other = wiring.event_store(servers)
    try:
        assert other.shown("Contract", other.app.contract(cid).state())["customer"] == "Cached SA"
        assert other.app.contract(cid).customer.startswith("sealed:v1:")  # what it caches is sealed
        store.app.erase_contract(cid)
        assert other.shown("Contract", other.app.contract(cid).state())["customer"] is None
        with pytest.raises(Conflict):  # nothing personal is recorded on it any more
            store.app.reopen(store.envelopes_of(cid)[1].aggregate_id, "again")
    finally:
        other.close()
