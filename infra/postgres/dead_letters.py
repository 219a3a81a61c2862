"""Dead letters handled, not just kept: list a projection's parked messages, retry them, or
discard them (`ticketing dead-letters`, docs/operations.md).

A runner parks a message it cannot decode or apply in `<schema>.dead_letter` with the reason,
and passes it (a parked message whose position it trusted counts as consumed). A dead letter
is `parked` until it is settled: `applied` by a retry, or `discarded` by an operator; settled
ones are kept, with who settled them, when and why.

A retry takes the event from the event store at the dead letter's position (the message was
only its copy, and may be the part that was broken), and applies it through the projection's
own rules in one transaction with the dead letter's settlement and the runner's counts: a
crash applies nothing, and nothing twice. That transaction takes the projection's switch lock
exclusively, as a rebuild's switch does: it waits for the runner's batch in flight and holds
its next batch (and its tick) until the retry commits, so the retry and the live runner never
interleave. (A live runner holds its partitions' leases for as long as it runs; a retry that
waited for them would wait for the runner to stop.)

In order. Each read-model row records the position of the last event applied to it and
declines an event at or below it, so the parked event cannot simply be applied now: rows that
took later events would decline it, and rows that could not take later events without it (a
ticket whose opening was parked) have passed over them. So a retry builds the contract's rows
again: it deletes them from every table of the read model (they are all keyed by contract) and
applies, in store order, the contract's events the runner has consumed, the parked one in its
place; the contract's events still parked are left out (retry them together to have them
all). The rows are then what a clean run of those events gives. Notices are decided again:
one already in the outbox keeps its id and is not sent twice, one the retry newly decides
(a balance that crosses a line only with the parked entry) is published; what the runner's
tick decides (breaches, spent budgets) is decided again at its next tick. Several dead letters
are retried in store-position order, each in a transaction of its own.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from consumers.ports import Headers
from infra.postgres import leases
from infra.postgres.checkpoints import is_fault, switch_lock
from infra.postgres.rebuild import BOOKKEEPING
from infra.postgres.store import ApplicationHost
from infra.postgres.views import ProjectionSpec
from projections.envelope import Envelope

Decoder = Callable[[bytes, Headers | None], Envelope]
PAGE = 5000  # events applied and written at a time, as a runner's batch
COLUMNS = ("id, topic, partition, kafka_offset, position, reason, value, headers, parked_at, attempts,"
           " retried_at, status, settled_at, settled_by, settled_why")


class EventStore(Protocol):
    """What a retry reads of the event store (`StoreEvents` over infra/postgres/store.py)."""

    def event_at(self, position: int) -> Envelope | None: ...

    def envelopes_of(self, contract_id: str) -> list[Envelope]: ...


class StoreEvents:
    """The event store's events by position, and a contract's in store order."""

    def __init__(self, host: ApplicationHost) -> None:
        self.host = host

    def event_at(self, position: int) -> Envelope | None:
        page = self.host.recorder.select_notifications(start=position, limit=1, stop=position)
        if not page or page[0].id != position:
            return None
        return self.host.published(page)[0]  # as the relay published it

    def envelopes_of(self, contract_id: str) -> list[Envelope]:
        return self.host.envelopes_of(contract_id, erased_as="")  # as the relay published them


@dataclass(frozen=True)
class Letters:
    """A projection's dead letters: its spec, the schema of its tables and its lease's name
    (a scratch copy in another schema has leases of its own, as in infra/process/wiring.py)."""

    spec: ProjectionSpec
    schema: str

    @classmethod
    def of(cls, spec: ProjectionSpec, schema: str | None = None) -> Letters:
        return cls(spec, schema or spec.schema)

    @property
    def lease(self) -> str:
        return self.spec.name if self.schema == self.spec.schema else f"{self.spec.name}@{self.schema}"


@dataclass(frozen=True)
class DeadLetter:
    """One parked message, and how it was settled, if it was."""

    projection: str
    id: int
    topic: str
    partition: int
    kafka_offset: int
    position: int | None
    reason: str
    value: bytes | None
    headers: list[list[str]] | None
    parked_at: datetime
    attempts: int
    retried_at: datetime | None
    status: str
    settled_at: datetime | None
    settled_by: str | None
    settled_why: str | None

    @property
    def ref(self) -> str:
        """How the CLI names it: ids are per projection."""
        return f"{self.projection}:{self.id}"

    def decoded(self, decode: Decoder) -> Envelope | None:
        if self.value is None:
            return None
        try:
            return decode(bytes(self.value), headers_of(self.headers))
        except Exception:  # noqa: BLE001 - an undecodable message is shown as its bytes
            return None

    def as_json(self, decode: Decoder) -> dict[str, Any]:
        env = self.decoded(decode)
        event: dict[str, Any] = ({"decoded": True, **env.as_json(), "contract_id": env.contract_id}
                                 if env is not None else
                                 {"decoded": False, "base64": base64.b64encode(bytes(self.value or b"")).decode(),
                                  "headers": dict(self.headers or [])})
        stamps = {k: (v.isoformat() if v is not None else None) for k, v in
                  (("parked_at", self.parked_at), ("retried_at", self.retried_at), ("settled_at", self.settled_at))}
        return {"id": self.id, "ref": self.ref, "projection": self.projection, "topic": self.topic,
                "partition": self.partition, "offset": self.kafka_offset, "position": self.position,
                "status": self.status, "reason": self.reason, "attempts": self.attempts, **stamps,
                "settled_by": self.settled_by, "settled_why": self.settled_why, "event": event}


def headers_of(stored: list[list[str]] | None) -> Headers | None:
    return None if stored is None else [(key, base64.b64decode(value)) for key, value in stored]


def _letters(conn: psycopg.Connection, target: Letters, where: str, params: Sequence[Any],
             lock: bool = False) -> list[DeadLetter]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {COLUMNS} FROM {target.schema}.dead_letter WHERE {where}"
                           " ORDER BY position NULLS LAST, id" + (" FOR UPDATE" if lock else ""), params).fetchall()
    return [DeadLetter(target.spec.name, **row) for row in rows]


def listing(url: str, target: Letters, settled: bool = False) -> list[DeadLetter]:
    """The projection's dead letters in store-position order: those parked, or all of them."""
    with psycopg.connect(url, autocommit=True) as conn:
        return _letters(conn, target, "TRUE" if settled else "status = 'parked'", ())


def discard(url: str, target: Letters, ids: Iterable[int], by: str, why: str) -> dict[int, str | None]:
    """Mark parked dead letters discarded (kept, with who, when and why); per id, None when
    done, else why not. The row's lock orders it against a retry of the same dead letter."""
    refused: dict[int, str | None] = {}
    with psycopg.connect(url) as conn:
        for i in ids:
            with conn.transaction():
                row = conn.execute(f"SELECT status FROM {target.schema}.dead_letter WHERE id = %s FOR UPDATE",
                                   (i,)).fetchone()
                if row is None or row[0] != "parked":
                    refused[i] = "no such dead letter" if row is None else f"already {row[0]}"
                    continue
                conn.execute(f"UPDATE {target.schema}.dead_letter SET status = 'discarded', settled_at = now(),"
                             " settled_by = %s, settled_why = %s WHERE id = %s", (by, why, i))
                refused[i] = None
    return refused


@dataclass(frozen=True)
class RetryOutcome:
    """What a retry did with one dead letter: `applied`, `failed` (applying it failed again),
    `refused` (it cannot be retried) or `unknown`/`settled`; `replayed`: how many events of its
    contract were applied again in store order, this one included."""

    id: int
    position: int | None
    result: str
    detail: str
    replayed: int = 0

    @property
    def ok(self) -> bool:
        return self.result == "applied"


class Retry:
    """Retries dead letters of one projection, each in a transaction of its own, in order."""

    def __init__(self, url: str, target: Letters, store: EventStore, decode: Decoder, by: str) -> None:
        self.url, self.target, self.store, self.decode, self.by = url, target, store, decode, by
        self.projection = target.spec.make()
        self.table = f"{target.schema}.dead_letter"

    def parked_ids(self) -> list[int]:
        return [d.id for d in listing(self.url, self.target)]

    def run(self, ids: Iterable[int]) -> list[RetryOutcome]:
        """Retry these dead letters in store-position order (an unknown id: last)."""
        with leases.connect(self.url) as conn:
            known = {d.id: d for d in _letters(conn, self.target, "id = ANY(%s)", (list(ids),))}
            conn.commit()
            ordered = [*known, *(i for i in dict.fromkeys(ids) if i not in known)]
            return [self.one(conn, i) for i in ordered]

    def one(self, conn: psycopg.Connection, dead_letter_id: int) -> RetryOutcome:
        with conn.transaction():
            switch_lock(conn, self.target.lease, shared=False)
            found = _letters(conn, self.target, "id = %s", (dead_letter_id,), lock=True)
            if not found:
                return RetryOutcome(dead_letter_id, None, "unknown", "no such dead letter")
            letter = found[0]
            if letter.status != "parked":
                return RetryOutcome(letter.id, letter.position, "settled", f"already {letter.status}")
            env, consumed = self._event(conn, letter)
            if isinstance(env, str):
                return RetryOutcome(letter.id, letter.position, "refused", env)
            try:
                replayed = self._apply(conn, env, letter, consumed)
            except Exception as exc:  # poison is kept parked; a database fault ends the command
                if is_fault(exc, conn):
                    raise
                return self._attempt(conn, letter, "failed", f"retry failed: {exc!r}")
            conn.execute(f"UPDATE {self.table} SET status = 'applied', attempts = attempts + 1, retried_at = now(),"
                         " settled_at = now(), settled_by = %s, settled_why = 'retried' WHERE id = %s",
                         (self.by, letter.id))
            conn.execute(f"INSERT INTO {self.target.schema}.tally (topic, applied, ignored) VALUES (%s, 1, 0)"
                         f" ON CONFLICT (topic) DO UPDATE SET applied = {self.target.schema}.tally.applied + 1",
                         (letter.topic,))
            return RetryOutcome(letter.id, letter.position, "applied",
                                f"{env.type} of {env.aggregate_id} applied in its place among the {replayed} events"
                                f" of contract {env.contract_id} replayed in store order", replayed)

    def _event(self, conn: psycopg.Connection, letter: DeadLetter) -> tuple[Envelope | str, int]:
        """The store's event the dead letter stands for, and the position its partition has
        consumed up to; or why it cannot be retried."""
        row = conn.execute(f"SELECT position FROM {self.target.schema}.checkpoint WHERE topic = %s AND partition = %s",
                           (letter.topic, letter.partition)).fetchone()
        consumed = int(row[0]) if row else 0
        if letter.position is None:
            return "it names no store position: there is nothing to retry it from (discard it)", consumed
        if letter.position > consumed:
            return (f"its position {letter.position} is beyond what the runner consumed on partition"
                    f" {letter.partition} ({consumed}): it was never trusted (discard it)"), consumed
        env = self.store.event_at(letter.position)
        if env is None:
            return f"the store holds no event at position {letter.position} (discard it)", consumed
        sent = letter.decoded(self.decode)
        if sent is not None and (sent.position, sent.type, sent.aggregate_id) != (env.position, env.type,
                                                                                    env.aggregate_id):
            return (f"its message was {sent.type} of {sent.aggregate_id} at {sent.position}, not the store's"
                    f" event at {letter.position} (discard it)"), consumed
        return env, consumed

    def _apply(self, conn: psycopg.Connection, env: Envelope, letter: DeadLetter, consumed: int) -> int:
        """Build the contract's rows again from the store, in a savepoint (undone if anything
        fails): its rows deleted from every table of the read model, then its events the
        runner consumed applied in store order, this one included and those still parked left
        out, a page at a time; how many events were applied."""
        spec, schema, contract_id = self.target.spec, self.target.schema, env.contract_id
        with conn.transaction():
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = %s"
                " AND column_name = 'contract_id' AND NOT table_name = ANY(%s) ORDER BY table_name",
                (schema, sorted(BOOKKEEPING))).fetchall()]  # the read model's rows, not the runner's books
            for table in tables:
                conn.execute(f'DELETE FROM {schema}."{table}" WHERE contract_id = %s', (contract_id,))
            parked = {int(r[0]) for r in conn.execute(
                f"SELECT position FROM {self.table} WHERE status = 'parked' AND position IS NOT NULL AND id <> %s",
                (letter.id,)).fetchall()}
            history = [e for e in self.store.envelopes_of(contract_id)
                       if e.position <= consumed and e.position not in parked]
            for first in range(0, len(history), PAGE):
                view = spec.view(conn, schema)
                for e in history[first:first + PAGE]:
                    self.projection.apply(e, view)
                view.flush()
            return len(history)

    def _attempt(self, conn: psycopg.Connection, letter: DeadLetter, result: str, reason: str) -> RetryOutcome:
        """Keep it parked, with the new reason and one more attempt."""
        conn.execute(f"UPDATE {self.table} SET reason = %s, attempts = attempts + 1, retried_at = now()"
                     " WHERE id = %s", (reason, letter.id))
        return RetryOutcome(letter.id, letter.position, result, reason)
