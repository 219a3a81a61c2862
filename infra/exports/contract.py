"""Exporting a contract from the store (docs/audit.md, Exports): record who exported it, in
which format (`Contract.Exported`), then write the contract's events committed up to and with
that event, in the format asked: the jsonl and avro files with their hash-chain links
(infra/exports/files.py), or a MySQL dump with the figures (infra/exports/mysql.py).

The export's instant (`exported_at`) is the commit time of its own `Contract.Exported` event:
the file holds exactly the events committed at or before it, so its head is the head a proof
taken at that instant answers, and the export shows itself as its last event.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.actors import Actor
from domain.commands import ExportContract, as_id
from infra.exports import files as export
from infra.exports import mysql
from infra.postgres.store import ApplicationHost
from projections.replay import figures


@dataclass(frozen=True)
class File:
    """An export ready to hand over: its bytes, name, media type, and its header."""

    content: bytes
    filename: str
    media_type: str
    header: export.Header


def export_contract(host: ApplicationHost, contract_id: UUID | str, kind: str, actor: Actor) -> File:
    """Record the export, then write it (NotFound for no such contract, before anything is recorded)."""
    command = ExportContract(as_id(contract_id), kind, actor=actor)
    cid = str(command.contract_id)
    recorded = host.handle(command)
    rows = host.recorded_of(cid)
    exported_at = next(link.committed_at for _, link in rows if link.position == recorded.position)
    held = [(envelope, link) for envelope, link in rows if link.committed_at <= exported_at]
    header = export.header_of(cid, held, exported_at)
    content = _dump(host, cid, header, held) if kind == "mysql" else export.write(kind, header, held)
    return File(content, export.filename(kind, header), export.MEDIA_TYPES[kind], header)


def _dump(host: ApplicationHost, cid: str, header: export.Header, held: export.Recorded) -> bytes:
    """The MySQL dump: the contract and its tickets as of the export, every event, the time
    entries, and the figures of every month and period (projections/replay.py)."""
    state = host.history(cid, header.exported_at, header.exported_at)
    found = figures([envelope for envelope, _ in held], header.exported_at)
    events = [export.line_of(e, link) for e, link in held]
    contract = state["contract"] or {}
    reports = [("sla", month, answer) for month, answer in found["sla"].items()]
    reports += [("ledger", period, answer) for period, answer in found["ledger"].items()]
    reports += [("availability", month, answer) for month, answer in found["availability"].items()]
    contents = mysql.Contents(
        header={**header.as_json(), "events": header.events, "position": header.position},
        contract={"contract_id": cid, "customer": contract.get("customer"), "plan": header.plan,
                  "status": contract.get("status"), "time_zone": contract.get("time_zone"),
                  "starts_on": contract.get("starts_on"), "terms": header.terms},
        tickets=state["tickets"], events=events, reports=reports)
    return mysql.dump(contents).encode()
