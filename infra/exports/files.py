"""The export files of a contract (docs/audit.md, Exports), written and read back: `jsonl`
(a header line, then one JSON line per event) and `avro` (an Avro object container file whose
records wrap each event's published record, with the header in the file's metadata).

Both carry, for each event, what its hash-chain link needs (commit time, contract, aggregate,
version, topic, the stored state bytes) and the link stored with it, so that a verifier with
nothing but the file recomputes the chain (domain/chain.py) and compares its head with a
proof taken earlier. What the file shows for people (a jsonl line's `fields`, an avro record's
event) is rebuilt from the decoded state and must equal what the file says. Everything here
is pure: bytes in, bytes out; `verify` decodes states with the domain's own mapper on an
in-memory store. It lives beside the Avro codec because the avro format reuses its records.
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import fastavro
from eventsourcing.persistence import StoredEvent
from fastavro.schema import load_schema

from domain import chain, personal
from domain.application import TicketingApplication
from domain.chain import Link
from domain.rules import RULES_VERSION
from infra import sealing
from infra.kafka.avro import SCHEMA_DIR, Codec
from projections.envelope import Envelope, from_domain_event

FORMAT = "ticketing-export-v1"
Kind = Literal["jsonl", "avro"]
MEDIA_TYPES: dict[str, str] = {"jsonl": "application/jsonl", "avro": "application/avro", "mysql": "application/sql"}
EXTENSIONS = {"jsonl": "jsonl", "avro": "avro", "mysql": "sql"}
AVRO_MAGIC = b"Obj\x01"
META = "ticketing."  # the prefix of the avro file's metadata keys ("avro." is the format's own)
Recorded = Sequence[tuple[Envelope, Link]]


class Unreadable(Exception):
    """A file that is no export of this format at all (no header, not jsonl nor avro)."""


@dataclass(frozen=True)
class Header:
    """What an export says of itself: whose events, up to when, and the chain's head then."""

    contract_id: str
    plan: str
    terms: dict[str, Any]
    exported_at: datetime
    rules_version: str
    head_hash: str
    events: int
    position: int

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "contract_id": self.contract_id, "plan": self.plan, "terms": self.terms,
                "exported_at": chain.stamp(self.exported_at), "rules_version": self.rules_version,
                "head_hash": self.head_hash, "events": self.events, "position": self.position}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Header:
        if raw.get("format") != FORMAT:
            raise Unreadable(f"the header names format {str(raw.get('format'))[:64]!r}, not {FORMAT!r}")
        try:
            return cls(str(raw["contract_id"]), str(raw["plan"]), dict(raw["terms"]),
                       datetime.fromisoformat(raw["exported_at"]), str(raw["rules_version"]), str(raw["head_hash"]),
                       int(raw["events"]), int(raw["position"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise Unreadable(f"the header is incomplete: {exc!r}") from None


def header_of(contract_id: str, recorded: Recorded, exported_at: datetime) -> Header:
    """The header of an export of these events (the contract's, in store order, its signing
    first): the plan and terms as signed, and the head the store gave the last event."""
    signed = next((e for e, _ in recorded if e.type == "Contract.Signed" and e.aggregate_id == contract_id), None)
    if signed is None:
        raise ValueError(f"no Contract.Signed event of {contract_id} among the exported events")
    last = recorded[-1][1]
    head = last.stored_hash if last.stored_hash is not None else chain.GENESIS
    return Header(contract_id, signed.data["plan_id"], signed.data["terms"], exported_at, RULES_VERSION,
                  head.hex(), len(recorded), last.position)


def _plain(value: Any) -> Any:
    """A value as JSON shows it (an instant as ISO-8601 text), so that a written value and one
    decoded again compare equal."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


# -- jsonl ---------------------------------------------------------------------------------


def line_of(env: Envelope, link: Link) -> dict[str, Any]:
    """One event's line: the envelope and fields for people, the link's inputs and its hash."""
    return {
        "position": link.position, "type": env.type, "topic": link.topic, "aggregate_id": link.aggregate_id,
        "aggregate_version": link.aggregate_version, "contract_id": env.contract_id,
        "occurred_at": env.occurred_at.isoformat(), "recorded_at": env.recorded_at.isoformat(),
        "committed_at": chain.stamp(link.committed_at), "actor": _plain(env.actor), "fields": _plain(env.data),
        "state": base64.b64encode(link.state).decode("ascii"),
        "hash": (link.stored_hash or b"").hex(),
    }


def _json_line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_jsonl(header: Header, recorded: Recorded) -> bytes:
    return b"".join([_json_line(header.as_json()), *(_json_line(line_of(e, link)) for e, link in recorded)])


def _jsonl_link(line: dict[str, Any], contract_id: str) -> Link:
    return Link(int(line["position"]), datetime.fromisoformat(line["committed_at"]), contract_id,
                str(line["aggregate_id"]), int(line["aggregate_version"]), str(line["topic"]),
                base64.b64decode(line["state"], validate=True), bytes.fromhex(line["hash"]))


# -- avro ----------------------------------------------------------------------------------


def _fullname(node: dict[str, Any], namespace: str | None) -> str:
    name = str(node["name"])
    space = node.get("namespace", namespace)
    return name if "." in name or not space else f"{space}.{name}"


def _defined_once(node: Any, seen: set[str], namespace: str | None = None) -> Any:
    """The schema with each named type defined at its first occurrence and named after it
    (an Avro schema may define a name once: every event record embeds the same envelope)."""
    if isinstance(node, list):
        return [_defined_once(n, seen, namespace) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") in ("record", "enum", "fixed") and "name" in node:
        full = _fullname(node, namespace)
        if full in seen:
            return full
        seen.add(full)
        made = dict(node)
        inner = full.rpartition(".")[0] or None
        if "fields" in made:
            made["fields"] = [{**f, "type": _defined_once(f["type"], seen, inner)} for f in made["fields"]]
        return made
    made = dict(node)
    for key in ("type", "items", "values"):
        if key in made and not isinstance(made[key], str):
            made[key] = _defined_once(made[key], seen, namespace)
    return made


def export_schema(codec: Codec) -> dict[str, Any]:
    """The avro export's record: an event's chain inputs, its actor, its link, and its
    published record (a union of the events topic's records, one branch per event type)."""
    seen: set[str] = set()
    actor = _defined_once(load_schema(str(SCHEMA_DIR / "ticketing.v1.Actor.avsc"), _write_hint=False), seen)
    events = [_defined_once(copy.deepcopy(codec.schemas[t].plain), seen) for t in sorted(codec.schemas)]
    return {
        "type": "record", "name": "ExportedEvent", "namespace": "ticketing.v1",
        "doc": "One event of a contract's export (docs/audit.md): what its hash-chain link needs, the link, and the "
               "event's record as published on the events topic.",
        "fields": [
            {"name": "position", "type": "long", "doc": "Position in the event store's global order."},
            {"name": "topic", "type": "string", "doc": "The stored event's class topic, e.g. domain.ticket:Ticket.Opened."},
            {"name": "aggregate_id", "type": "string", "doc": "The contract or ticket (UUID, lower case)."},
            {"name": "aggregate_version", "type": "int", "doc": "The aggregate's version after the event."},
            {"name": "contract_id", "type": "string", "doc": "The contract whose chain the event is a link of."},
            {"name": "committed_at", "type": "string",
             "doc": "The store's commit time as the chain spells it: UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ."},
            {"name": "actor", "type": actor, "doc": "Who asked for the event."},
            {"name": "state", "type": "bytes", "doc": "The event's stored state, byte for byte."},
            {"name": "hash", "type": "bytes", "doc": "The event's link in the contract's chain (SHA-256, 32 bytes)."},
            {"name": "event", "type": events, "doc": "The event's record as published on the events topic."},
        ],
    }


def record_of(codec: Codec, env: Envelope, link: Link) -> dict[str, Any]:
    """One event's avro record; its `event` as (record name, record), the branch fastavro writes."""
    # A personal field the schema requires (customer, title, reporter) is "" once erased, as on the topics.
    erased = {f: "" for f in personal.fields_of(env.type) if f in env.data and env.data[f] is None and f in personal.REQUIRED}
    schema, published = codec.record(replace(env, data={**env.data, **erased}) if erased else env)
    return {
        "position": link.position, "topic": link.topic, "aggregate_id": link.aggregate_id,
        "aggregate_version": link.aggregate_version, "contract_id": link.contract_id,
        "committed_at": chain.stamp(link.committed_at), "actor": published["envelope"]["actor"],
        "state": link.state, "hash": link.stored_hash or b"",
        "event": (_fullname(schema.plain, None), published),
    }


def write_avro(header: Header, recorded: Recorded, codec: Codec | None = None) -> bytes:
    codec = codec or Codec()
    metadata = {f"{META}{k}": v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                for k, v in header.as_json().items()}
    buffer = io.BytesIO()
    # Uncompressed blocks: one altered byte then alters one record, which the verifier names.
    fastavro.writer(buffer, fastavro.parse_schema(export_schema(codec)),
                    (record_of(codec, e, link) for e, link in recorded), metadata=metadata, codec="null",
                    validator=True)
    return buffer.getvalue()


def _avro_header(metadata: dict[str, Any]) -> Header:
    raw: dict[str, Any] = {}
    for key, value in metadata.items():
        if key.startswith(META):
            text = value.decode() if isinstance(value, bytes) else str(value)
            name = key[len(META):]
            raw[name] = json.loads(text) if name in ("terms", "events", "position") else text
    return Header.from_json(raw)


def _avro_link(record: dict[str, Any], contract_id: str) -> Link:
    return Link(int(record["position"]), datetime.fromisoformat(record["committed_at"]), contract_id,
                str(record["aggregate_id"]), int(record["aggregate_version"]), str(record["topic"]),
                bytes(record["state"]), bytes(record["hash"]))


# -- writing and reading -------------------------------------------------------------------


def write(kind: str, header: Header, recorded: Recorded) -> bytes:
    if kind == "jsonl":
        return write_jsonl(header, recorded)
    if kind == "avro":
        return write_avro(header, recorded)
    raise ValueError(f"no export format {kind!r}")


def filename(kind: str, header: Header) -> str:
    return f"contract-{header.contract_id}-{header.exported_at.strftime('%Y%m%dT%H%M%SZ')}.{EXTENSIONS[kind]}"


@dataclass(frozen=True)
class Exported:
    """A file as read back: its kind, its header, and its event items (a jsonl line's JSON, or
    an avro record), each as the file says it."""

    kind: Kind
    header: Header
    items: list[dict[str, Any]]


def read(data: bytes) -> Exported:
    """Read an export, jsonl or avro (told apart by the avro container's magic bytes)."""
    if data.startswith(AVRO_MAGIC):
        try:
            reader = fastavro.reader(io.BytesIO(data))
            header = _avro_header(dict(reader.metadata))
            records = list(reader)
        except Unreadable:
            raise
        except Exception as exc:  # noqa: BLE001 - fastavro raises a zoo of types on a damaged file
            raise Unreadable(f"not a readable avro container: {exc!r}") from None
        return Exported("avro", header, [dict(r) for r in records if isinstance(r, dict)])
    lines = data.split(b"\n")
    try:
        header = Header.from_json(json.loads(lines[0]))
    except (ValueError, AttributeError) as exc:
        raise Unreadable(f"neither an avro container nor a jsonl export with a header line: {exc!r}") from None
    items: list[dict[str, Any]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        # A line that is no JSON object is kept as an item the verifier names as broken.
        items.append(item if isinstance(item, dict) else {"unreadable": f"line {number} is not a JSON object"})
    return Exported("jsonl", header, items)


# -- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """An export checked: its header, how many events it holds, the head they give, and the
    first broken event (its position, or the line's number when it has none) and why."""

    kind: str
    header: Header
    events: int
    head: str
    broken_at: int | None = None
    reason: str | None = None
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken_at is None and self.reason is None

    def lines(self) -> list[str]:
        h = self.header
        said = [f"export    {self.kind}, contract {h.contract_id} ({h.plan}), exported at {chain.stamp(h.exported_at)},"
                f" rules {h.rules_version}",
                f"events    {self.events} in the file, {h.events} in the header (last position {h.position})",
                f"head      {self.head} recomputed", f"          {h.head_hash} in the header"]
        if self.ok:
            said.append("verdict   WHOLE: every event's stored bytes give its link, the chain reaches the header's head,"
                        " and every event shows what its stored state says")
        else:
            where = f"at position {self.broken_at}" if self.broken_at is not None else "in the file"
            said.append(f"verdict   BROKEN {where}: {self.reason}")
        return said


class Decoder:
    """The domain's own mapper, on an in-memory store: stored state bytes to domain events."""

    def __init__(self) -> None:
        self.app = TicketingApplication({}, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def envelope(self, link: Link) -> Envelope:
        stored = StoredEvent(UUID(link.aggregate_id), link.aggregate_version, link.topic, link.state)
        return from_domain_event(self.app.mapper.to_domain_event(stored), link.position)


def verify(data: bytes) -> Verification:
    """Check an export with nothing but its bytes: its chain, its head, its events' fields.
    The first problem in file order is named: its event's position (or its place in the file)."""
    exported = read(data)
    header, codec, decoder = exported.header, Codec(), Decoder()
    links: list[Link] = []
    envelopes: list[Envelope] = []
    problems: list[tuple[int, int | None, str]] = []  # (index in the file, position, why)
    for index, item in enumerate(exported.items):
        try:
            link = (_jsonl_link if exported.kind == "jsonl" else _avro_link)(item, header.contract_id)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            position = item.get("position") if isinstance(item.get("position"), int) else None
            problems.append((index, position, f"event {index + 1} of the file is unreadable: {exc!r}"))
            continue
        links.append(link)
        try:
            env = decoder.envelope(link)
            shown = _shown(exported.kind, codec, env, link)
        except Exception as exc:  # noqa: BLE001 - any state the mapper cannot decode is a broken event
            problems.append((index, link.position, f"its stored state does not decode: {exc!r}"))
            continue
        # A personal field is stored sealed (docs/audit.md): without the key, its shown text
        # (or null, once erased) cannot be checked against the state, only its presence; the
        # figures show it as the file does.
        sealed = [f for f in personal.fields_of(env.type) if sealing.is_sealed(env.data.get(f))]
        shown_text = (item.get("fields") if exported.kind == "jsonl" else item.get("event")) or {}
        envelopes.append(replace(env, data={**env.data, **{f: shown_text.get(f) for f in sealed}}) if sealed else env)
        if env.contract_id != header.contract_id or (
                _masked(exported.kind, shown, sealed) != _masked(exported.kind, _comparable(exported.kind, item), sealed)):
            problems.append((index, link.position, "what it shows for people differs from what its stored state says"))
    verdict = chain.verify(header.contract_id, links)
    if verdict.broken_at is not None:
        index = next(i for i, item in enumerate(exported.items) if item.get("position") == verdict.broken_at)
        problems.append((index, verdict.broken_at, "its stored bytes no longer give the link stored with it"
                                                   " (altered, or an event before it dropped or reordered)"))
    if not problems and (verdict.head.hex(), verdict.events, verdict.position) != (
            header.head_hash, header.events, header.position):
        problems.append((len(exported.items), None, f"the file's {verdict.events} events do not reach the header's"
                                                    f" head over {header.events} events (events dropped or added,"
                                                    " or the header changed)"))
    _, broken_at, reason = min(problems, key=lambda p: p[0]) if problems else (0, None, None)
    return Verification(exported.kind, header, len(exported.items), verdict.head.hex(), broken_at, reason, envelopes)


def _shown(kind: str, codec: Codec, env: Envelope, link: Link) -> dict[str, Any]:
    """What the file should show for this decoded event, in the shape `_comparable` reads."""
    if kind == "jsonl":
        return line_of(env, link)
    record = record_of(codec, env, link)
    record["event"] = record["event"][1]
    return record


def _masked(kind: str, shown: dict[str, Any], sealed: list[str]) -> dict[str, Any]:
    """`shown` with the sealed personal fields set aside (their text needs the contract's key)."""
    if not sealed:
        return shown
    part = "fields" if kind == "jsonl" else "event"
    inner = dict(shown.get(part) or {})
    for name in sealed:
        inner[name] = SEALED
    return {**shown, part: inner}


SEALED = "(sealed)"


def _comparable(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    if kind == "jsonl":
        return item
    return {**item, "state": bytes(item["state"]), "hash": bytes(item["hash"])}
