"""The actor of every event through the real PostgreSQL store and back: in the stored state,
in the envelopes and the history the store reads, on the events topic after the relay (Avro),
and past a snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain import personal
from domain.actors import Actor
from infra.kafka.avro import Codec
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from tests.histories import AGENT, CUSTOMER, every_kind_of_event
from tests.integration.helpers import make_relay, unique
from tests.integration.test_relay_and_runner import topic_messages
from tests.unit.test_schemas import event_classes

LATER = datetime.now(UTC) + timedelta(days=1)


def test_every_kind_of_event_comes_back_from_the_store_with_the_actor_of_its_command(
        store: ApplicationHost) -> None:
    cid, asked = every_kind_of_event(store.app)
    assert set(asked) == event_classes()
    envelopes = store.envelopes_of(cid)
    assert {e.type: Actor.from_json(e.actor) for e in envelopes} == asked
    history = store.history(cid, LATER)["events"]
    assert {e["type"]: e["actor"] for e in history} == {t: a.as_json() for t, a in asked.items()}
    # Stored beside the fact's fields, in the shape the history shows.
    rows = store._query(f"SELECT state FROM {store.table} WHERE originator_id = %s ORDER BY originator_version",
                        (UUID(cid),))
    assert b'"actor":{"kind":"token","token_id":"tok-agent","role":"agent"}' in bytes(rows[0][0])


def test_the_relayed_messages_carry_the_actor_of_each_event(servers: Settings, store: ApplicationHost) -> None:
    cid, asked = every_kind_of_event(store.app)
    head, topic = store.head(), unique("events")
    relay = make_relay(servers, store, topic)
    try:
        relay.run(stop=lambda: relay.state.position >= head)
        messages = topic_messages(servers.kafka_bootstrap or "", topic, head)
    finally:
        relay.close()
    decoded = [Codec().decode(m.value, m.headers) for m in messages if m.key == cid.encode()]
    assert {e.type: Actor.from_json(e.actor) for e in decoded} == asked
    # The history ends with the contract's erasure: its personal fields go out as "", and the
    # API shows them as null; everything else is what the store holds.
    shown = store.envelopes_of(cid)
    assert [e.data.get("customer") for e in decoded if e.type == "Contract.Signed"] == [""]
    assert [(e.data["title"], e.data["reporter"]) for e in decoded if e.type == "Ticket.Opened"] == [("", "")]
    assert [e.data.get("customer") for e in shown if e.type == "Contract.Signed"] == [None]
    assert [replace(e, data=e.data | {k: None for k in personal.fields_of(e.type) if k in e.data})
            for e in decoded] == shown, \
        "the topic carries what the store holds"


def test_a_ticket_read_past_its_snapshot_keeps_the_actors_of_its_events(
        servers: Settings, store: ApplicationHost) -> None:
    cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", actor=AGENT).aggregate_id
    tid = store.app.open_ticket(cid, "Busy", "ana", actor=CUSTOMER).aggregate_id
    for _ in range(100):  # the snapshot is taken at version 100
        store.app.record_time(tid, 1, "work", actor=AGENT)
    assert store.app.snapshots is not None and list(store.app.snapshots.get(UUID(tid)))
    fresh = wiring.event_store(servers)  # no cached aggregate: loads from the snapshot
    try:
        assert fresh.app.ticket(tid).minutes == 100
        fresh.app.record_time(tid, 1, "work", actor=CUSTOMER)
        history = fresh.history(cid, LATER)
        actors = [(e["type"], e["actor"]["token_id"]) for e in history["events"]]
    finally:
        fresh.close()
    assert actors == ([("Contract.Signed", "tok-agent"), ("Ticket.Opened", "tok-customer")]
                      + [("Ticket.TimeConsumed", "tok-agent")] * 100 + [("Ticket.TimeConsumed", "tok-customer")])
    assert history["tickets"][0]["minutes"] == 101
