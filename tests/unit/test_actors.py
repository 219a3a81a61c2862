"""Who asked for each event: every command names its actor (the system's unless given), the
application stamps it on each event the command records, the envelope carries it apart from
the fact's fields, and the Avro codec carries it too, reading a message written before
events named one as the system's. The read models do not depend on it."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import fastavro
import pytest
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import commands
from domain.actors import SYSTEM, Actor
from domain.application import TicketingApplication
from domain.wallclock import FixedClock
from infra.kafka.avro import SCHEMA_DIR, Codec, DecodeError, EncodeError
from infra.process.catalog import load_catalog
from projections.envelope import Envelope, from_domain_event
from tests.histories import AGENT, every_kind_of_event
from tests.strategies import actors, contract_histories
from tests.unit.test_replays import PROJECTIONS, replay
from tests.unit.test_schemas import event_classes

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COMMANDS = [getattr(commands, name) for name in commands.__all__ if name not in ("Command", "as_id")]


def test_every_command_names_its_actor_last_and_the_system_when_none_is_given() -> None:
    assert len(COMMANDS) == 17
    for command in COMMANDS:
        last = dataclasses.fields(command)[-1]
        assert (last.name, last.default) == ("actor", SYSTEM), command.__name__
    assert commands.Respond(uuid4()).actor == SYSTEM
    assert commands.Respond(uuid4(), actor=AGENT).actor == AGENT


def test_a_command_refuses_an_actor_that_is_no_actor() -> None:
    with pytest.raises(TypeError, match="Actor"):
        commands.Respond(uuid4(), actor={"kind": "system"})  # type: ignore[arg-type]  # the mistake tested


def test_each_event_a_command_records_names_the_actor_of_that_command() -> None:
    app = TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                               clock=FixedClock(NOW))
    _cid, asked = every_kind_of_event(app)
    assert set(asked) == event_classes(), "every event type is recorded once"
    stored = [from_domain_event(app.mapper.to_domain_event(n), n.id)
              for n in app.recorder.select_notifications(start=1, limit=100)]
    assert {e.type: Actor.from_json(e.actor) for e in stored} == asked
    assert all("actor" not in e.data for e in stored), "the actor is not one of the fact's fields"


def test_an_event_recorded_without_an_actor_reads_as_the_systems() -> None:
    app = TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                               clock=FixedClock(NOW))
    cid = app.sign_contract("Acme", "bpm/basic", "2026-01-01", actor=AGENT).aggregate_id
    contract = app.contract(cid)
    contract.cancel("saved past the application's handlers", NOW)
    app.save(contract)
    (signed, cancelled) = [from_domain_event(app.mapper.to_domain_event(n), n.id)
                           for n in app.recorder.select_notifications(start=1, limit=10)]
    assert (signed.actor, cancelled.actor) == (AGENT.as_json(), {"kind": "system"})
    assert cancelled.as_json()["actor"] == {"kind": "system"}


def test_the_history_shape_shows_the_actor_beside_the_events_own_fields() -> None:
    env = Envelope(7, "Ticket.Paused", "t-1", 3, "c-1", NOW, NOW, {"reason": "waiting"}, AGENT.as_json())
    assert env.as_json() == {
        "type": "Ticket.Paused", "aggregate_id": "t-1", "aggregate_version": 3, "position": 7,
        "occurred_at": NOW.isoformat(), "recorded_at": NOW.isoformat(),
        "actor": {"kind": "token", "token_id": "tok-agent", "role": "agent"}, "reason": "waiting",
    }


# -- the Avro codec ----------------------------------------------------------------------------


def paused(actor: dict[str, Any]) -> Envelope:
    return Envelope(42, "Ticket.Paused", "t-1", 3, "c-1", NOW, NOW, {"reason": "waiting"}, actor)


@settings(max_examples=50, deadline=None)
@given(actor=actors())
def test_every_actor_round_trips_through_the_avro_codec(actor: Actor) -> None:
    codec = Codec()
    decoded = codec.decode(*codec.encode(paused(actor.as_json())))
    assert decoded == paused(actor.as_json())


def written_before_actors(schema_file: str) -> tuple[dict[str, Any], str]:
    """The event's schema as published before the envelope named an actor (today's, without
    that field), and its fingerprint: built here apart from the codec's own record of it."""
    plain = load_schema(str(SCHEMA_DIR / schema_file), _write_hint=False)
    envelope = plain["fields"][0]["type"]
    envelope["fields"] = [f for f in envelope["fields"] if f["name"] != "actor"]
    return plain, fingerprint(to_parsing_canonical_form(plain), "CRC-64-AVRO")


def test_a_message_written_before_events_named_an_actor_decodes_as_the_systems() -> None:
    old, found = written_before_actors("ticketing.v1.TicketPaused.avsc")
    assert found == "1c92b9087f7a4936", "the fingerprint the backend published Ticket.Paused under"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(old), {
        "envelope": {"event_type": "Ticket.Paused", "position": 42, "aggregate_id": "t-1", "aggregate_version": 3,
                     "contract_id": "c-1", "occurred_at": NOW, "recorded_at": NOW},
        "reason": "waiting",
    })
    headers = [("ticketing-event-type", b"Ticket.Paused"), ("ticketing-schema-fingerprint", found.encode()),
               ("ticketing-position", b"42")]
    codec = Codec()
    assert found not in codec.by_fingerprint, "today's schema is another one"
    assert codec.decode(buffer.getvalue(), headers) == paused({"kind": "system"})


def test_the_codec_knows_every_event_type_as_written_with_the_earlier_envelope() -> None:
    codec = Codec()
    assert sorted(schema.event_type for _, schema in codec.earlier.values()) == sorted(event_classes())


def test_the_codec_refuses_to_encode_an_actor_that_is_not_one() -> None:
    for bad in ({"kind": "token", "token_id": "tok-1"}, {"token_id": "tok-1", "role": "agent"}, {"kind": 7}):
        with pytest.raises(EncodeError):
            Codec().encode(paused(bad))


def test_a_message_naming_an_inconsistent_actor_is_undecodable() -> None:
    codec = Codec()
    schema = codec.schemas["Ticket.Paused"]
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, {
        "envelope": {"event_type": "Ticket.Paused", "position": 42, "aggregate_id": "t-1", "aggregate_version": 3,
                     "contract_id": "c-1", "occurred_at": NOW, "recorded_at": NOW,
                     "actor": {"kind": "token", "token_id": None, "role": None}},
        "reason": None,
    })
    with pytest.raises(DecodeError, match="actor"):
        codec.decode(buffer.getvalue(), [("ticketing-schema-fingerprint", schema.fingerprint.encode())])


# -- the read models -------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROJECTIONS)
@settings(max_examples=25, deadline=None)
@given(envs=contract_histories(), data=st.data())
def test_the_read_models_are_the_same_whoever_asked_for_the_events(
    name: str, envs: list[Envelope], data: st.DataObject
) -> None:
    named = [dataclasses.replace(e, actor=data.draw(actors()).as_json()) for e in envs]
    assert replay(name, named)[0] == replay(name, envs)[0]
