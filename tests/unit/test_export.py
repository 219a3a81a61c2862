"""The export files and their verifier, on in-memory persistence: a contract's events written
as jsonl and avro with their hash-chain links, read back by fastavro and by the official
`avro` package, verified whole from the bytes alone, and any altered byte, dropped event or
changed header named. The `Contract.Exported` event changes no read model."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import avro.datafile
import avro.io
import fastavro
import pytest

from domain import chain
from domain.actors import Actor
from domain.application import TicketingApplication
from domain.chain import Link
from domain.errors import InvalidInput, NotFound
from domain.rules import RULES_VERSION
from domain.wallclock import FixedClock
from infra.exports import files as export
from infra.process.catalog import load_catalog
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope, from_domain_event
from projections.ledger import InMemoryLedgerView, LedgerProjection
from projections.sla import InMemorySlaView, SlaProjection
from projections.tickets import InMemoryTicketsView, TicketsProjection

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AGENT = Actor.from_json({"kind": "token", "token_id": "5b0c9d7e-0000-4000-8000-000000000001", "role": "agent"})


def recorded_of(app: TicketingApplication, contract_id: str) -> list[tuple[Envelope, Link]]:
    """The contract's events with their links, as the store would give them: each committed a
    millisecond after the one before, each link chained on the previous."""
    out, head = [], chain.GENESIS
    for n in app.recorder.select_notifications(1, 1000):
        event = app.mapper.to_domain_event(n)
        env = from_domain_event(event, n.id)
        if env.contract_id != contract_id:
            continue
        link = Link(n.id, NOW + timedelta(milliseconds=n.id), contract_id, str(n.originator_id), n.originator_version,
                    n.topic, n.state)
        head = link.after(head)
        out.append((env, Link(**{**vars(link), "stored_hash": head})))
    return out


@pytest.fixture(scope="module")
def exported() -> tuple[str, list[tuple[Envelope, Link]]]:
    app = TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(NOW))
    cid = app.sign_contract("Acme — ünïcode", "crm-experts/gold", "2026-01-01", at="2026-01-01T00:00:00Z",
                            actor=AGENT).aggregate_id
    app.sign_contract("Other", "crm-experts/gold", "2026-01-01", at="2026-01-01T00:00:00Z")  # not in the export
    tid = app.open_ticket(cid, "down", "Ann", priority="P1", category="system-down",
                          down_since="2026-05-01T09:00:00Z", at="2026-05-01T09:05:00Z").aggregate_id
    app.record_time(tid, 30, "work", "Bo", at="2026-05-01T10:00:00Z", actor=AGENT)
    app.restore(tid, at="2026-05-01T11:00:00Z")
    app.resolve(tid, "fixed", at="2026-05-01T11:30:00Z")
    app.export_contract(cid, "jsonl", actor=AGENT)
    return cid, recorded_of(app, cid)


def made(kind: str, cid: str, recorded: list[tuple[Envelope, Link]]) -> tuple[export.Header, bytes]:
    header = export.header_of(cid, recorded, recorded[-1][1].committed_at)
    return header, export.write(kind, header, recorded)


def test_the_header_names_the_plan_terms_rules_and_the_last_events_link(exported: tuple[str, list]) -> None:
    cid, recorded = exported
    header, _ = made("jsonl", cid, recorded)
    assert header.plan == "crm-experts/gold" and header.terms == recorded[0][0].data["terms"]
    assert header.rules_version == RULES_VERSION
    assert (header.events, header.position) == (len(recorded), recorded[-1][1].position)
    assert header.head_hash == chain.verify(cid, (link for _, link in recorded)).head.hex()


@pytest.mark.parametrize("kind", ["jsonl", "avro"])
def test_an_export_verifies_whole_from_its_bytes_alone(kind: str, exported: tuple[str, list]) -> None:
    cid, recorded = exported
    header, data = made(kind, cid, recorded)
    report = export.verify(data)
    assert report.ok and report.kind == kind, report.lines()
    assert (report.events, report.head) == (len(recorded), header.head_hash)
    assert [e.type for e in report.envelopes] == [e.type for e, _ in recorded]
    assert report.envelopes[-1].data == {"format": "jsonl"} and report.envelopes[-1].actor == AGENT.as_json()
    assert "WHOLE" in report.lines()[-1]


def test_a_jsonl_export_is_a_header_line_then_one_line_per_event_as_docs_audit_says(exported: tuple[str, list]) -> None:
    cid, recorded = exported
    _, data = made("jsonl", cid, recorded)
    lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert list(lines[0]) == ["format", "contract_id", "plan", "terms", "exported_at", "rules_version", "head_hash",
                              "events", "position"]
    assert lines[0]["format"] == "ticketing-export-v1" and len(lines) == 1 + lines[0]["events"]
    first = lines[1]
    assert list(first) == ["position", "type", "topic", "aggregate_id", "aggregate_version", "contract_id", "occurred_at",
                           "recorded_at", "committed_at", "actor", "fields", "state", "hash"]
    assert first["fields"]["customer"] == "Acme — ünïcode" and first["topic"] == "domain.contract:Contract.Signed"
    assert first["actor"] == AGENT.as_json() and first["committed_at"].endswith("Z")
    time_line = next(line for line in lines[1:] if line["type"] == "Ticket.TimeConsumed")
    assert time_line["fields"] == {"minutes": 30, "kind": "work", "engineer": "Bo"} and time_line["contract_id"] == cid


def test_an_avro_export_reads_with_fastavro_and_the_official_avro_package(exported: tuple[str, list]) -> None:
    cid, recorded = exported
    header, data = made("avro", cid, recorded)
    fast = fastavro.reader(io.BytesIO(data))
    records = list(fast)
    assert fast.metadata["ticketing.head_hash"] == header.head_hash
    assert json.loads(fast.metadata["ticketing.terms"]) == header.terms
    assert [r["event"]["envelope"]["event_type"] for r in records] == [e.type for e, _ in recorded]
    official = avro.datafile.DataFileReader(io.BytesIO(data), avro.io.DatumReader())
    read = list(official)
    assert official.get_meta("ticketing.contract_id").decode() == cid
    assert official.get_meta("ticketing.rules_version").decode() == RULES_VERSION
    assert [r["state"] for r in read] == [link.state for _, link in recorded]
    assert [r["hash"] for r in read] == [link.stored_hash for _, link in recorded]
    timed = next(r for r in read if r["event"]["envelope"]["event_type"] == "Ticket.TimeConsumed")
    assert (timed["event"]["minutes"], timed["event"]["kind"], timed["actor"]["role"]) == (30, "work", "agent")


def altered(data: bytes, needle: bytes) -> bytes:
    """The file with one byte changed inside `needle` (which must occur once)."""
    at = data.index(needle)
    assert data.count(needle) == 1
    spot = at + len(needle) // 2
    return data[:spot] + bytes([data[spot] ^ 0x01]) + data[spot + 1:]


@pytest.mark.parametrize("kind", ["jsonl", "avro"])
def test_one_altered_byte_in_an_events_state_is_named_by_its_position(kind: str, exported: tuple[str, list]) -> None:
    cid, recorded = exported
    _, data = made(kind, cid, recorded)
    env, link = next((e, li) for e, li in recorded if e.type == "Ticket.Opened")
    # jsonl: a byte of the base64 text of its state; avro: a byte of its state itself
    needle = export.line_of(env, link)["state"].encode() if kind == "jsonl" else link.state
    report = export.verify(altered(data, needle))
    assert not report.ok and report.broken_at == link.position, report.lines()
    assert f"BROKEN at position {link.position}" in report.lines()[-1]


def test_a_field_changed_for_people_is_named_even_when_the_chain_holds(exported: tuple[str, list]) -> None:
    cid, recorded = exported
    _, data = made("jsonl", cid, recorded)
    lines = data.decode().splitlines()
    index = next(i for i, line in enumerate(lines) if '"type":"Ticket.TimeConsumed"' in line)
    line = json.loads(lines[index])
    line["fields"]["minutes"] = 3
    lines[index] = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
    report = export.verify("\n".join(lines).encode())
    assert report.broken_at == line["position"] and "shows for people" in str(report.reason)


def test_a_dropped_event_or_a_changed_header_is_caught(exported: tuple[str, list]) -> None:
    cid, recorded = exported
    _, data = made("jsonl", cid, recorded)
    lines = data.decode().splitlines()
    dropped = export.verify("\n".join(lines[:3] + lines[4:]).encode())
    assert dropped.broken_at == json.loads(lines[4])["position"]  # the next event's link no longer follows
    last_gone = export.verify("\n".join(lines[:-1]).encode())
    assert not last_gone.ok and "header's head" in str(last_gone.reason)
    head = json.loads(lines[0])
    head["head_hash"] = "00" * 32
    assert not export.verify("\n".join([json.dumps(head), *lines[1:]]).encode()).ok


def test_a_file_that_is_no_export_is_unreadable() -> None:
    with pytest.raises(export.Unreadable):
        export.verify(b"hello\n")
    with pytest.raises(export.Unreadable):
        export.verify(json.dumps({"format": "something-else"}).encode())
    with pytest.raises(export.Unreadable):
        export.verify(export.AVRO_MAGIC + b"garbage")


def test_the_exported_event_changes_no_read_model(exported: tuple[str, list]) -> None:
    events = [e for e, _ in exported[1]]
    assert events[-1].type == "Contract.Exported"
    views = ((TicketsProjection(), InMemoryTicketsView()), (LedgerProjection(), InMemoryLedgerView()),
             (SlaProjection(), InMemorySlaView()), (AvailabilityProjection(), InMemoryAvailabilityView()))
    for projection, view in views:
        for env in events[:-1]:
            projection.apply(env, view)  # type: ignore[attr-defined]
        before = repr(vars(view))  # the views hold read-only mappings, which do not deep-copy
        assert projection.apply(events[-1], view) is False, projection  # type: ignore[attr-defined]
        assert repr(vars(view)) == before, projection


def test_an_export_names_a_known_format_and_a_known_contract() -> None:
    app = TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=FixedClock(NOW))
    cid = app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", at="2026-01-01T00:00:00Z").aggregate_id
    with pytest.raises(InvalidInput):
        app.export_contract(cid, "xml")
    with pytest.raises(NotFound):
        app.export_contract("00000000-0000-4000-8000-000000000000", "avro")
    app.cancel_contract(cid)
    before = app.contract(cid).state()
    app.export_contract(cid, "avro")  # a cancelled contract is still exported: an audit outlives it
    after = app.contract(cid).state()
    assert {**after, "version": before["version"]} == before and after["version"] == before["version"] + 1
