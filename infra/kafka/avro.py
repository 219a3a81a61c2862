"""Avro wire format of the events topic: one schema per event type, from schemas/*.avsc.

A message's value is the plain Avro binary encoding (no framing byte) of the event's record;
its headers name the event type, the schema's CRC-64-AVRO fingerprint and the store
position, so a consumer can pick the right reader schema without a registry. The relay
refuses an event it has no schema for, or whose fields do not fit. Every envelope names the
event's actor; a message written with an earlier envelope (schemas/earlier/, before `actor`
was) is still read, by its own fingerprint, with today's schema: its actor is the system.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from domain.actors import Actor
from domain.periods import utc
from projections.envelope import Envelope


def _schema_dir() -> Path:
    """The installed `schemas` package's folder. It must be a real one (pip always unpacks a
    wheel): fastavro resolves a named type by loading the file of that name beside the schema."""
    found = files("schemas")
    if not isinstance(found, Path):
        raise RuntimeError(f"the Avro schemas must be installed as files, not as {found!r}")
    return found


SCHEMA_DIR = _schema_dir()
EARLIER_DIR = SCHEMA_DIR / "earlier"
H_TYPE = "ticketing-event-type"
H_FINGERPRINT = "ticketing-schema-fingerprint"
H_POSITION = "ticketing-position"


class EncodeError(Exception):
    """An event that its schema cannot carry (unknown type, missing or ill-typed field)."""


class DecodeError(Exception):
    """A message that is not a well-formed event of a known schema."""


class Schema:
    """One event type's parsed schema, and which of its fields carry JSON text."""

    def __init__(self, path: Path) -> None:
        raw = json.loads(path.read_text())
        self.event_type: str = raw["ticketing.event_type"]
        plain = load_schema(str(path), _write_hint=False)
        self.fingerprint = fingerprint(to_parsing_canonical_form(plain), "CRC-64-AVRO")
        assert isinstance(plain, dict)
        self.plain: dict[str, Any] = plain
        self.parsed = fastavro.parse_schema(plain)  # parsed once: the writer would redo it per call
        self.json_fields = {f["name"] for f in raw["fields"] if f.get("ticketing.json")}
        self.fields = [f["name"] for f in raw["fields"] if f["name"] != "envelope"]

    def with_envelope(self, envelope: dict[str, Any]) -> tuple[str, Any]:
        """This event's schema as written with another envelope: its fingerprint, and parsed."""
        plain = copy.deepcopy(self.plain)
        (head,) = (f for f in plain["fields"] if f["name"] == "envelope")
        head["type"] = envelope
        return fingerprint(to_parsing_canonical_form(plain), "CRC-64-AVRO"), fastavro.parse_schema(plain)


def load_event_schemas(directory: Path = SCHEMA_DIR) -> dict[str, Schema]:
    schemas = {}
    for path in sorted(directory.glob("*.avsc")):
        if "ticketing.event_type" in json.loads(path.read_text()):
            schema = Schema(path)
            schemas[schema.event_type] = schema
    return schemas


def earlier_envelopes(directory: Path = EARLIER_DIR) -> list[dict[str, Any]]:
    """The envelopes published before today's, oldest first (each names no other type)."""
    paths = sorted(directory.glob("ticketing.v1.Envelope.*.avsc"), key=lambda p: int(p.stem.rsplit(".", 1)[1]))
    return [json.loads(p.read_text()) for p in paths]


class Codec:
    """Encodes envelopes to messages and back."""

    def __init__(self, schemas: Mapping[str, Schema] | None = None) -> None:
        self.schemas = dict(schemas or load_event_schemas())
        self.by_fingerprint = {s.fingerprint: s for s in self.schemas.values()}
        # Writer schemas of messages written before today's envelope, read with today's schema.
        self.earlier: dict[str, tuple[Any, Schema]] = {}
        for envelope in earlier_envelopes():
            for schema in self.schemas.values():
                found, writer = schema.with_envelope(envelope)
                self.earlier[found] = (writer, schema)

    def record(self, env: Envelope) -> tuple[Schema, dict[str, Any]]:
        """The event's schema and its record as published (not yet checked against it)."""
        schema = self.schemas.get(env.type)
        if schema is None:
            raise EncodeError(f"no Avro schema for event type {env.type}")
        record = {name: _to_wire(name, env.data.get(name), schema) for name in schema.fields}
        record["envelope"] = {
            "event_type": env.type,
            "position": env.position,
            "aggregate_id": env.aggregate_id,
            "aggregate_version": env.aggregate_version,
            "contract_id": env.contract_id,
            "occurred_at": env.occurred_at,
            "recorded_at": env.recorded_at,
            "actor": _actor_record(env),
        }
        return schema, record

    def encode(self, env: Envelope) -> tuple[bytes, list[tuple[str, bytes]]]:
        schema, record = self.record(env)
        buffer = io.BytesIO()
        try:
            # The writer does not check ranges: an int field would carry any Python int, which
            # a consumer in another language could not read. Validation does.
            if not validate(record, schema.parsed, raise_errors=False):  # twice as fast when it fits
                validate(record, schema.parsed, raise_errors=True)  # raises, saying why
            fastavro.schemaless_writer(buffer, schema.parsed, record, strict=True)
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            raise EncodeError(f"{env.type} at {env.position} does not fit its schema: {exc}") from exc
        headers = [
            (H_TYPE, env.type.encode()),
            (H_FINGERPRINT, schema.fingerprint.encode()),
            (H_POSITION, str(env.position).encode()),
        ]
        return buffer.getvalue(), headers

    def decode(self, value: bytes, headers: list[tuple[str, bytes]] | None) -> Envelope:
        named = dict(headers or []).get(H_FINGERPRINT, b"")
        writer, schema = self._writer_of(named)
        reader = None if writer is schema.parsed else schema.parsed  # resolve only what needs it
        try:
            record = fastavro.schemaless_reader(io.BytesIO(value), writer, reader)
        except Exception as exc:  # fastavro raises a zoo of types on garbage
            raise DecodeError(f"undecodable {schema.event_type}: {exc!r}") from exc
        assert isinstance(record, dict)
        head = record.pop("envelope")
        data = {k: (json.loads(v) if k in schema.json_fields else v) for k, v in record.items()}
        try:
            actor = Actor.from_json(head["actor"]).as_json()
        except ValueError as exc:
            raise DecodeError(f"{schema.event_type} at {head['position']} names no valid actor: {exc}") from exc
        return Envelope(
            position=head["position"],
            type=head["event_type"],
            aggregate_id=head["aggregate_id"],
            aggregate_version=head["aggregate_version"],
            contract_id=head["contract_id"],
            occurred_at=utc(head["occurred_at"]),
            recorded_at=utc(head["recorded_at"]),
            data=data,
            actor=actor,
        )

    def _writer_of(self, named: bytes) -> tuple[Any, Schema]:
        """The writer schema a fingerprint names, and the event type's schema of today."""
        schema = self.by_fingerprint.get(named.decode(errors="replace"))
        if schema is not None:
            return schema.parsed, schema
        earlier = self.earlier.get(named.decode(errors="replace"))
        if earlier is None:
            raise DecodeError(f"unknown schema fingerprint {named!r}")
        return earlier


def _actor_record(env: Envelope) -> dict[str, Any]:
    """The envelope's actor as its record: every field present, one not given null."""
    try:
        actor = Actor.from_json(env.actor)
    except (KeyError, ValueError, TypeError) as exc:
        raise EncodeError(f"{env.type} at {env.position} names no valid actor {env.actor!r}: {exc}") from exc
    return {"kind": actor.kind, "token_id": actor.token_id, "role": actor.role}


def _to_wire(name: str, value: Any, schema: Schema) -> Any:
    if name in schema.json_fields:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def position_of(headers: list[tuple[str, bytes]] | None) -> int | None:
    """The store position a message names in its headers, if it names one."""
    for key, value in headers or []:
        if key == H_POSITION:
            try:
                return int(value)
            except ValueError:
                return None
    return None


H_NOTICE_TYPE = "ticketing-notice-type"


class NoticeCodec:
    """One notice type's Avro schema (parsed once) and the headers naming it.

    Notices (a breach, a low balance, an exhausted error budget) travel like events: plain
    Avro binary, with headers naming the notice type and the schema's fingerprint.
    """

    def __init__(self, schema_name: str, notice_type: str) -> None:
        plain = load_schema(str(SCHEMA_DIR / f"{schema_name}.avsc"), _write_hint=False)
        self.fingerprint = fingerprint(to_parsing_canonical_form(plain), "CRC-64-AVRO")
        self.parsed = fastavro.parse_schema(plain)
        self.notice_type = notice_type

    def encode(self, record: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self.parsed, record, strict=True)
        return buffer.getvalue(), {H_NOTICE_TYPE: self.notice_type, H_FINGERPRINT: self.fingerprint}

    def decode(self, value: bytes) -> dict[str, Any]:
        record = fastavro.schemaless_reader(io.BytesIO(value), self.parsed, None)
        assert isinstance(record, dict)
        return record
