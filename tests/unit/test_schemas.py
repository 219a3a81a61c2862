"""The Avro schemas are a published contract: every event class has exactly one, every one
round-trips, and every change stays fully compatible with what was published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.schema import load_schema

from domain.contract import Contract
from domain.ticket import Ticket
from infra.kafka.avro import SCHEMA_DIR, Codec, DecodeError, EncodeError, load_event_schemas
from projections.envelope import Envelope

PUBLISHED = SCHEMA_DIR / "published"


def event_classes() -> set[str]:
    found = set()
    for aggregate in (Contract, Ticket):
        for name, value in vars(aggregate).items():
            # `Event` and `Created` are the library's base classes, never recorded as such.
            if isinstance(value, type) and issubclass(value, aggregate.Event) and name not in ("Event", "Created"):
                found.add(f"{aggregate.__name__}.{name}")
    return found


def test_every_event_class_maps_to_exactly_one_schema() -> None:
    schemas = load_event_schemas()
    assert set(schemas) == event_classes()


def _avro(path: Path) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(load_schema(str(path), _write_hint=False)))


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("ticketing.*.avsc")), ids=lambda p: p.stem)
def test_each_schema_is_fully_compatible_with_its_published_version(path: Path) -> None:
    published = PUBLISHED / path.name
    assert published.exists(), f"{path.name} was never published: copy it to schemas/published/"
    new, old = _avro(path), _avro(published)
    checker = ReaderWriterCompatibilityChecker()
    for reader, writer in ((new, old), (old, new)):
        result = checker.get_compatibility(reader, writer)
        assert result.compatibility is SchemaCompatibilityType.compatible, result.messages


def test_removing_a_field_without_default_is_caught_as_incompatible() -> None:
    path = SCHEMA_DIR / "ticketing.v1.TicketTimeConsumed.avsc"
    raw = load_schema(str(path), _write_hint=False)
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "minutes"]
    reader = avro.schema.parse(json.dumps(raw))
    result = ReaderWriterCompatibilityChecker().get_compatibility(_avro(path), reader)
    assert result.compatibility is SchemaCompatibilityType.incompatible


def envelope(**data: object) -> Envelope:
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    return Envelope(42, "Ticket.TimeConsumed", "t-1", 3, "c-1", now, now, dict(data))


def test_an_event_round_trips_through_its_schema() -> None:
    codec = Codec()
    env = envelope(minutes=50, kind="intervention", engineer=None)
    value, headers = codec.encode(env)
    assert codec.decode(value, headers) == env
    assert dict(headers)["ticketing-position"] == b"42"


def test_json_fields_round_trip_as_documents() -> None:
    codec = Codec()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    env = Envelope(1, "Contract.Signed", "c-1", 1, "c-1", now, now, {
        "customer": "Acme", "plan_id": "x/y", "terms": {"a": [1, 2], "b": None},
        "starts_on": "2026-01-01", "time_zone": "UTC", "holidays": ["2026-12-25"],
    })
    assert codec.decode(*codec.encode(env)) == env


def test_the_relay_refuses_an_event_its_schema_cannot_carry() -> None:
    with pytest.raises(EncodeError):
        Codec().encode(envelope(minutes="fifty", kind="query", engineer=None))
    with pytest.raises(EncodeError):
        Codec().encode(Envelope(1, "Ticket.Teleported", "t", 1, "c", *[datetime.now(UTC)] * 2))


def test_garbage_is_undecodable() -> None:
    codec = Codec()
    _, headers = codec.encode(envelope(minutes=5, kind="query", engineer=None))
    with pytest.raises(DecodeError):
        codec.decode(b"\xff\xff\xff", headers)
    with pytest.raises(DecodeError):
        codec.decode(b"", [("ticketing-schema-fingerprint", b"nope")])
