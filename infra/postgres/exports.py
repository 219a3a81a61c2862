"""Exporting a contract from the store (docs/audit.md, Exports): record who exported it, in
which format (`Contract.Exported`), then write the contract's events committed up to and with
that event, in the file format asked (infra/kafka/export.py).

The export's instant (`exported_at`) is the commit time of its own `Contract.Exported` event:
the file holds exactly the events committed at or before it, so its head is the head a proof
taken at that instant answers, and the export shows itself as its last event.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.actors import Actor
from domain.commands import ExportContract, as_id
from infra.kafka import export
from infra.postgres.store import ApplicationHost


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
    return File(export.write(kind, header, held), export.filename(kind, header), export.MEDIA_TYPES[kind], header)
