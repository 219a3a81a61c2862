"""What the runner does with one poll's messages, in its open transaction: sort each one (a
redelivery is dropped, poison is parked, the rest is applied) and apply them to the
projection's view, all at once or, to find the poison in a batch that failed, each in a
savepoint of its own.

A message's store position is its header's, trusted only up to the store's head; a parked
message whose position is trusted counts as consumed (the cursor passes it), one beyond the
head moves nothing. An event whose header and body disagree on its position is parked too:
every read-model row records the position of the last event applied to it, so a wrong one
would hide that row's later events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog

from consumers.ports import Cursor, Projection, Record, RunnerSession
from domain.personal import ERASED
from projections.envelope import Envelope

log = structlog.get_logger("runner")


Decoder = Callable[[bytes, list[tuple[str, bytes]] | None], Envelope]
PositionOf = Callable[[list[tuple[str, bytes]] | None], int | None]


@dataclass
class BatchResult:
    applied: int = 0
    ignored: int = 0
    parked: int = 0
    envelopes: list[Envelope] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.applied, self.ignored = self.applied + other.applied, self.ignored + other.ignored
        self.parked += other.parked
        self.envelopes += other.envelopes


class Consumed(NamedTuple):
    """A decoded message whose position the runner trusts: what it applies."""

    partition: int
    record: Record
    env: Envelope


class Applier:
    """Sorts and applies messages for one projection; remembers the last store head it read."""

    def __init__(self, projection: Projection, decode: Decoder, position_of: PositionOf) -> None:
        self.projection, self.decode, self.position_of = projection, decode, position_of
        self.head = 0

    def sort(self, book: RunnerSession, cursor: Cursor, partition: int, record: Record,
             result: BatchResult) -> Consumed | None:
        """A redelivery (dropped), poison (parked), or a message to apply; moves the cursor."""
        claimed = self.position_of(record.headers)
        cursor.offset = record.offset
        if claimed is not None and claimed <= cursor.position:
            result.ignored += 1
            return None
        trusted = claimed is not None and claimed <= self._head(book, claimed)
        try:
            env = self.decode(record.value, record.headers)
        except Exception as exc:  # noqa: BLE001 - any undecodable message is parked
            return self._reject(book, cursor, partition, record, claimed, trusted, f"undecodable: {exc}", result)
        if not trusted:
            why = "no store position" if claimed is None else f"position {claimed} beyond the store's head {self.head}"
            return self._reject(book, cursor, partition, record, claimed, False, why, result)
        if env.position != claimed:
            why = f"header position {claimed} is not the event's {env.position}"
            return self._reject(book, cursor, partition, record, claimed, True, why, result)
        cursor.position = env.position
        return Consumed(partition, record, env)

    def _head(self, book: RunnerSession, claimed: int) -> int:
        """The store's head, read again only when a message claims more than the last one seen."""
        if claimed > self.head:
            self.head = book.head()
        return self.head

    @staticmethod
    def _reject(book: RunnerSession, cursor: Cursor, partition: int, record: Record, position: int | None,
                trusted: bool, reason: str, result: BatchResult) -> None:
        """Park a message; one whose position is trusted counts as consumed."""
        park(book, partition, record, position, reason)
        result.parked += 1
        if trusted and position is not None:
            cursor.position = position

    def apply(self, book: RunnerSession, messages: list[Consumed], result: BatchResult) -> None:
        """Apply the messages to one view (on the session's transaction) and write it."""
        view = book.view()
        view.prefetch({m.env.contract_id for m in messages})
        for m in messages:
            used = bool(self.projection.apply(m.env, view))
            result.applied, result.ignored = result.applied + used, result.ignored + (not used)
            result.envelopes.append(m.env)
        # A view that folds rows at flush learns only then that some were already applied.
        declined = view.flush()
        for m in messages:
            if m.env.type == ERASED:
                book.forget(m.env.contract_id)
        result.applied, result.ignored = result.applied - declined, result.ignored + declined

    def apply_each(self, book: RunnerSession, messages: list[Consumed], result: BatchResult) -> None:
        """Apply and write each message in a savepoint of its own: only poison is parked."""
        for m in messages:
            one = BatchResult()
            try:
                with book.savepoint():
                    self.apply(book, [m], one)
            except Exception as exc:  # poison is parked; a fault ends the session
                if book.is_fault(exc):
                    raise
                park(book, m.partition, m.record, m.env.position, f"apply failed: {exc!r}")
                one = BatchResult(parked=1)
            result.add(one)


def park(book: RunnerSession, partition: int, record: Record, position: int | None, reason: str) -> None:
    log.error("parked message", topic=book.topic, partition=partition, offset=record.offset,
              position=position, reason=reason)
    book.park(partition, record, position, reason)
