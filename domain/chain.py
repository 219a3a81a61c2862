"""The hash chain of a contract's events (docs/audit.md): pure, so that a verifier needs
nothing but the events (an export, or the store's rows) to check that none was altered,
dropped or reordered.

Each contract's events (its own and its tickets', in store order) form one chain. An event's
link is SHA-256 over the previous link (32 zero bytes for the first event) followed by the
event's canonical bytes: the UTF-8 text

    ticketing-chain-v1 LF <commit time> LF <contract id> LF <aggregate id> LF <aggregate version> LF <topic> LF

followed by the event's stored state bytes exactly as the store keeps them. The commit time is
UTC with microseconds, `YYYY-MM-DDTHH:MM:SS.ffffffZ`; ids are lower-case hyphenated UUIDs; the
version is decimal; LF is one 0x0A byte. The store computes each link in the transaction that
appends the event (infra/postgres/sql/append.sql); this module computes the same links again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS = bytes(32)
VERSION = "ticketing-chain-v1"


def stamp(committed_at: datetime) -> str:
    """The commit time as the canonical bytes spell it."""
    return committed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Link:
    """What one event contributes to its contract's chain, and the link stored with it."""

    position: int
    committed_at: datetime
    contract_id: str
    aggregate_id: str
    aggregate_version: int
    topic: str
    state: bytes
    stored_hash: bytes | None = None

    def canonical(self) -> bytes:
        head = f"{VERSION}\n{stamp(self.committed_at)}\n{self.contract_id}\n{self.aggregate_id}\n" \
               f"{self.aggregate_version}\n{self.topic}\n"
        return head.encode() + self.state

    def after(self, previous: bytes) -> bytes:
        return hashlib.sha256(previous + self.canonical()).digest()


@dataclass(frozen=True)
class Verdict:
    """A chain checked: its head, how many events, and the first event whose link does not
    match what its stored bytes give (None: the chain is whole)."""

    contract_id: str
    head: bytes
    events: int
    position: int
    broken_at: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(contract_id: str, links: Iterable[Link]) -> Verdict:
    """Recompute one contract's chain, in store order, against the links stored with it."""
    head, count, position, broken = GENESIS, 0, 0, None
    for link in links:
        head = link.after(head)
        count, position = count + 1, link.position
        if broken is None and link.stored_hash is not None and link.stored_hash != head:
            broken = link.position
    return Verdict(contract_id, head, count, position, broken)
