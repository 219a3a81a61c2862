"""The application's host: the application on PostgreSQL, how its commands run, and the audit
reads that go straight to the stored events (a contract's history).

Commands (domain/commands.py) run through `ApplicationHost.handle`: one at a time per
aggregate in this process (keyed by the aggregate's canonical id), again on fresh state when
another writer (another API process, the renewals pass) recorded first, and with their
idempotency claim (if any) completed in the same transaction as their events. The host also
gives the application what it keeps out of the domain: the cache of parsed plan terms, and
the credit check's usage port (infra/postgres/usage.py). Every new event is encoded with its Avro
schema and checked against the broker's message size before it is stored, so whatever is
stored can be relayed.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import replace
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, Recording, StoredEvent
from eventsourcing.utils import resolve_topic

from domain import chain, personal
from domain.application import Recorded, TicketingApplication, _project
from domain.chain import Link
from domain.commands import Command, as_id
from domain.contract import Contract
from domain.errors import ConcurrentChange, DomainError, InvalidInput
from domain.plans import PlanTerms
from domain.wallclock import Clock
from infra import postgres
from infra.kafka.avro import Codec, EncodeError
from infra.postgres.group_commit import GroupCommitter
from infra.postgres.keys import ContractKeys, Opener, reveal_envelope
from infra.postgres.recorder import Append, Claim, TicketingRecorder
from infra.postgres.repository import CommittedCache
from infra.postgres.usage import StoredUsage
from projections.envelope import Envelope, from_domain_event

RETRIES = 5
MAX_MESSAGE_BYTES = 1_000_000  # below Kafka's default message.max.bytes (1,048,588)
T = TypeVar("T")
CLAIM: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("claim", default=None)


class EventCheck:
    """Refuses an event its Avro schema cannot carry or the broker would not take."""

    def __init__(self, codec: Codec, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.codec, self.max_bytes = codec, max_bytes

    def __call__(self, events: Iterable[Any]) -> None:
        for event in events:
            envelope = from_domain_event(event, 0)
            try:
                value, headers = self.codec.encode(envelope)
            except EncodeError as error:
                raise InvalidInput("the event does not fit its published schema", str(error)) from None
            size = len(value) + sum(len(k) + len(v) for k, v in headers) + 64  # key, position
            if size > self.max_bytes:
                raise InvalidInput("the event would be too large to publish", {"bytes": size})


class HostedApplication(TicketingApplication):
    """The application with PostgreSQL's saving: checked, group-committed, then cached; and
    each contract's terms parsed once (they never change after signing)."""

    name = TicketingApplication.name  # the store's tables are named after it

    repository: CommittedCache  # what construct_repository below makes
    check: Callable[[Iterable[Any]], None] = staticmethod(lambda events: None)
    commit: Callable[[Append], list[int]]
    keys: ContractKeys

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._terms: dict[UUID, PlanTerms] = {}
        super().__init__(*args, **kwargs)

    def terms_of(self, contract: Contract) -> PlanTerms:
        terms = self._terms.get(contract.id)
        if terms is None:
            terms = self._terms[contract.id] = super().terms_of(contract)
        return terms

    def construct_repository(self) -> CommittedCache:
        return CommittedCache(event_store=self.events, snapshot_store=self.snapshots,
                              cache_maxsize=int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or 20000))

    def save(self, *objs: Any, **_: Any) -> list[Recording[UUID]]:
        aggregates = [o for o in objs if o is not None]
        served = self.repository.served()
        # What the decision read from the cache unchecked and does not write: the append checks
        # that it is still the latest, in its transaction (StaleRead if not).
        written = {a.id for a in aggregates}
        unchecked = {i: v for i, v in (served or {}).items() if i not in written}
        pending = [(a, a.collect_events()) for a in aggregates]
        events = [e for _, collected in pending for e in collected]
        self.check(events)
        for event in events:
            if type(event).__qualname__ == personal.ERASED:
                # The key goes first, once the domain has accepted the erasure: a crash before
                # the event is stored leaves the data unreadable already, and a retry records it.
                self.keys.erase(event.originator_id)
        sealed, sealed_values = self.keys.seal_events(events)
        stored = [self.mapper.to_stored_event(e) for e in sealed]
        contracts = [UUID(str(getattr(e, "contract_id", None) or e.originator_id)) for e in events]
        ids = self.commit(Append(stored, contracts, CLAIM.get(), unchecked))
        for aggregate, collected in pending:
            # What is cached holds its personal fields as stored: sealed, never in clear.
            for name in personal.AGGREGATE_ATTRIBUTES.get(type(aggregate).__qualname__, ()):
                value = sealed_values.get((str(aggregate.id), name))
                if value is not None:
                    setattr(aggregate, name, value)
            self.repository.committed(aggregate)
            self._snapshot(aggregate, collected)
        return [Recording(e, _notification(s, i)) for e, s, i in zip(events, stored, ids, strict=True)]

    def _snapshot(self, aggregate: Any, events: Iterable[Any]) -> None:
        interval = self.snapshotting_intervals.get(type(aggregate))
        for event in events:
            if interval and event.originator_version % interval == 0:
                with suppress(IntegrityError):  # another process took the same snapshot
                    self.take_snapshot(event.originator_id, event.originator_version, _project)


def _link(contract_id: str, row: tuple[Any, ...]) -> Link:
    position, originator_id, version, topic, state, committed_at, stored_hash = row
    return Link(position, committed_at, contract_id, str(originator_id), version, topic, bytes(state),
                bytes(stored_hash) if stored_hash is not None else None)


def _notification(stored: StoredEvent, position: int) -> Notification:
    return Notification(id=position, originator_id=stored.originator_id,
                        originator_version=stored.originator_version, topic=stored.topic, state=stored.state)


class ApplicationHost:
    """The application, how its commands run, and the SQL reads of its events table."""

    usage: StoredUsage

    def __init__(
        self, url: str, catalog: Mapping[str, PlanTerms], clock: Clock | None = None,
        schema: str = postgres.STORE_SCHEMA, pool_size: int = 2, aux_pool: int = 2,
    ) -> None:
        self.schema = schema
        self.table = f"{schema}.ticketing_events"
        # Processes starting together must not create the same objects at once.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('ticketing-store-setup'))")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            env = postgres.store_env(url, schema, pool_size)
            self.app = HostedApplication(catalog, env=env, clock=clock)
            for name in ("event_index", "idempotency", "chain", "keys", "append", "usage"):
                conn.execute(postgres.sql(name, schema))
            conn.execute("SELECT pg_advisory_unlock(hashtext('ticketing-store-setup'))")
        self.app.check = EventCheck(Codec())
        recorder: TicketingRecorder = self.app.recorder  # type: ignore[assignment]  # the recorder the store environment names
        self.app.commit = GroupCommitter(recorder).commit
        self.pool = postgres.make_pool(url, max_size=aux_pool, name="store-reads")
        self.app.usage = self.usage = StoredUsage(self.app, self.pool, schema, self.table)
        self.app.keys = self.keys = ContractKeys(self.pool, schema)
        self._locks = [threading.Lock() for _ in range(256)]

    def close(self) -> None:
        self.pool.close()
        self.app.close()

    @property
    def recorder(self) -> Any:
        return self.app.recorder

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    # -- commands ---------------------------------------------------------------------------

    def handle(self, command: Command, claim: Claim | None = None) -> Recorded:
        """Run a command through the application, serialised on the aggregate it changes;
        its first attempt decides on cached states unchecked (infra/postgres/repository.py)."""
        return self.run(lambda: self.app.handle(command), command.aggregate_id, claim, trust_cache=True)

    def run(self, command: Callable[[], T], key: str | UUID | None = None, claim: Claim | None = None,
            trust_cache: bool = False) -> T:
        """Run a command (load, call, save), serialised per aggregate `key` in this process,
        again on fresh state when another writer recorded first. With `trust_cache`, the first
        attempt skips asking the store for newer events: a stale decision cannot be recorded
        (the store's version key refuses it, or `save` finds what it read but does not write
        changed), and a refusal is decided again on fresh state before it is answered."""
        lock = nullcontext() if key is None else self._locks[hash(as_id(key)) % len(self._locks)]
        repository = self.app.repository
        token = CLAIM.set(claim)
        try:
            with lock:
                for attempt in range(RETRIES):
                    trusting = trust_cache and attempt == 0
                    try:
                        scope: AbstractContextManager[dict[UUID, int]] = (
                            repository.trusting() if trusting else nullcontext({}))
                        with scope as served:
                            return command()
                    except IntegrityError:
                        continue  # another writer recorded first: decide again on its state
                    except DomainError:
                        if served:
                            continue  # refused on cached state: the refusal must stand on fresh state
                        raise
            raise ConcurrentChange("the aggregate kept changing under this command; try again")
        finally:
            CLAIM.reset(token)

    # -- audit reads ------------------------------------------------------------------------

    def envelopes_of(self, contract_id: str, known_at: datetime | None = None,
                     erased_as: str | None = None) -> list[Envelope]:
        """Every event of the contract and its tickets, in store order; with `known_at`, only
        those committed at or before it (what the store knew then). Erased personal fields
        read as `erased_as` (None, as the API shows them; "" as the topics carry them)."""
        return [envelope for envelope, _ in self.recorded_of(contract_id, known_at, erased_as)]

    def recorded_of(self, contract_id: str, known_at: datetime | None = None,
                    erased_as: str | None = None) -> list[tuple[Envelope, Link]]:
        """`envelopes_of`, each with its link in the contract's hash chain (domain/chain.py):
        its commit time, its stored bytes and the hash stored with it."""
        _, decoded = self._decoded_of(contract_id, known_at, erased_as)
        return [(envelope, link) for _, envelope, link in decoded]

    def _decoded_of(self, contract_id: str, known_at: datetime | None = None, erased_as: str | None = None,
                    ) -> tuple[Opener, list[tuple[Any, Envelope, Link]]]:
        """`recorded_of` with each event's domain event beside its envelope (both made of one
        decoding; the domain event's personal fields as stored, sealed), and the opener that
        opened the envelopes."""
        rows = self._query(
            f"SELECT notification_id, originator_id, originator_version, topic, state, committed_at, chain_hash"
            f" FROM {self.table} WHERE (originator_id = %s OR {self.schema}.contract_of(state) = %s)"
            " AND (%s::timestamptz IS NULL OR committed_at <= %s)",
            (UUID(contract_id), contract_id, known_at, known_at),
        )
        # In store order, sorted here: PostgreSQL sorts these wide rows (states and all) on disk
        # once they outgrow its work_mem (about ten thousand events at the default 4 MB).
        rows.sort(key=itemgetter(0))
        opener = self.keys.opener(contract_id)  # read now, after the events: an erasure since shows
        decoded = []
        for row in rows:
            event = self._domain_event(*row[1:5])
            envelope = reveal_envelope(from_domain_event(event, row[0]), opener, erased_as)
            decoded.append((event, envelope, _link(contract_id, row)))
        return opener, decoded

    def shown(self, kind: str, state: dict[str, Any], opener: Opener | None = None) -> dict[str, Any]:
        """An aggregate's `state()` as shown: its personal fields opened with its contract's key
        as it stands now (None once erased)."""
        cid = state.get("contract_id") or state.get("ticket_id")
        return self.keys.reveal_state(kind, state, opener or self.keys.opener(str(cid)))

    def proof(self, contract_id: str | UUID) -> dict[str, Any]:
        """The head of the contract's hash chain: what an auditor keeps to check an export later."""
        cid = as_id(contract_id)
        rows = self._query(f"SELECT head, events, position FROM {self.schema}.chain_heads WHERE contract_id = %s",
                           (cid,))
        if not rows:
            self.app.contract(cid)  # 404 for no such contract
            return {"contract_id": str(cid), "head_hash": chain.GENESIS.hex(), "events": 0, "position": 0}
        head, events, position = rows[0]
        return {"contract_id": str(cid), "head_hash": bytes(head).hex(), "events": events, "position": position}

    def verify_chains(self, contract_id: str | None = None) -> Iterator[chain.Verdict]:
        """Recompute the stored chains (one contract's, or all) from the stored bytes, in store
        order, and compare each link and each head with what is stored."""
        contracts = [str(as_id(contract_id))] if contract_id else [str(r[0]) for r in self._query(
            f"SELECT contract_id FROM {self.schema}.chain_heads ORDER BY contract_id", ())]
        for cid in contracts:
            verdict = chain.verify(cid, (link for _, link in self.recorded_of(cid)))
            stored = self.proof(cid)
            if verdict.ok and (verdict.head.hex(), verdict.events) != (stored["head_hash"], stored["events"]):
                verdict = replace(verdict, broken_at=stored["position"])  # the head was rewritten, or events dropped
            yield verdict

    def named_users(self, contract_id: UUID) -> int | None:
        """The named users the contract's plan supports (None: unlimited); NotFound for no contract."""
        return self.app.terms_of(self.app.contract(contract_id)).named_users

    def contract_of_ticket(self, ticket_id: str) -> str | None:
        """The contract a ticket belongs to (its opening event says), None for no such ticket."""
        rows = self._query(
            f"SELECT {self.schema}.contract_of(state) FROM {self.table}"
            " WHERE originator_id = %s AND originator_version = 1", (UUID(ticket_id),))
        return str(rows[0][0]) if rows and rows[0][0] else None

    def published(self, notifications: Iterable[Notification], reads: frozenset[str] | None = None,
                  ) -> list[Envelope]:
        """Notifications as the relay publishes them: envelopes whose personal fields are opened
        with their contract's key as it stands now ("" once erased). What a rebuild from the
        store applies, so that it equals a run from the topic. Given `reads` (event types, as
        envelopes name them), only those are decoded: the others, left out."""
        if reads is not None:
            notifications = [n for n in notifications if self.type_of(n.topic) in reads]
        return self.keys.reveal([self.to_envelope(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                                 for n in notifications], erased_as="")

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - topics are few; the host lives as long as the process
    def type_of(self, topic: str) -> str:
        """The envelope type of events stored under `topic` (a renamed class's old topic
        resolves to the class, as the mapper resolves it)."""
        return str(resolve_topic(topic).__qualname__)

    def to_envelope(self, position: int, originator_id: Any, version: int, topic: str, state: bytes) -> Envelope:
        return from_domain_event(self._domain_event(originator_id, version, topic, state), position)

    def _domain_event(self, originator_id: Any, version: int, topic: str, state: bytes) -> Any:
        return self.app.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))

    def history(self, contract_id: str | UUID, as_of: datetime, known_at: datetime | None = None) -> dict[str, Any]:
        """The audit view: events up to `as_of` (business time) that were committed by
        `known_at` (commit time; default: now), and the state they add up to."""
        cid = str(as_id(contract_id))
        opener, decoded = self._decoded_of(cid, known_at)
        recorded = [(e, link) for _, e, link in decoded if e.occurred_at <= as_of]
        known = {"known_at": known_at.isoformat() if known_at else None}
        if not any(e.aggregate_id == cid for e, _ in recorded):
            self.app.contract(cid)  # 404 when the contract does not exist at all
            return {"as_of": as_of.isoformat(), **known, "events": [], "contract": None, "tickets": []}
        versions: dict[str, int] = {}
        for e, _ in recorded:
            versions[e.aggregate_id] = e.aggregate_version
        states = self._states_at(versions, decoded)
        contract: Contract = states.pop(cid)
        return {
            "as_of": as_of.isoformat(),
            **known,
            "events": [{**e.as_json(), "committed_at": link.committed_at.isoformat(),
                        "hash": (link.stored_hash or b"").hex()} for e, link in recorded],
            "contract": self.shown("Contract", contract.state(), opener),
            "tickets": [self.shown("Ticket", ticket.state(), opener) for ticket in states.values()],
        }

    def _states_at(self, versions: dict[str, int], decoded: list[tuple[Any, Envelope, Link]]) -> dict[str, Any]:
        """Each aggregate at its version (in the order `versions` names them), replayed from
        the contract's events already read rather than loaded by a query each. Those hold
        every event of the contract and of its tickets (each carries the contract's id) that
        was committed by `known_at`; commit time follows the store's order, so that is each
        aggregate's first versions, and the replay is what the repository loads, snapshot or
        not. Only events stored before commit times were recorded (they have none, so
        `known_at` leaves them out) can be missing: such an aggregate loads from the repository."""
        events: dict[str, list[Any]] = {aggregate_id: [] for aggregate_id in versions}
        for event, envelope, _ in decoded:
            mine = events.get(envelope.aggregate_id)
            if mine is not None and envelope.aggregate_version <= versions[envelope.aggregate_id]:
                mine.append(event)
        return {aggregate_id: _project(None, mine) if len(mine) == versions[aggregate_id]
                else self.app.repository.get(UUID(aggregate_id), version=versions[aggregate_id])
                for aggregate_id, mine in events.items()}

    def _query(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return postgres.run(self.pool, lambda conn: conn.execute(query, params).fetchall())

