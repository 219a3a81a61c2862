"""The credit check's port on PostgreSQL: a contract's time entries, counted from the events table.

The application asks `UsageReader` (domain/application.py) how many time entries of each
(kind, minutes) a contract's tickets hold before it opens one more on a credit plan. Reading
them all on every check would cost more as the contract's history grows, so each contract's
counts are kept here up to a store position, and a check reads only the entries stored after
it, in one statement that also answers the store's head, so the kept position moves on even
when nothing new was recorded.

Keeping counts is safe because a row with a lower position can never appear after a reader saw
a higher one. The append (sql/append.sql, as the library's own insert) locks the events table
in EXCLUSIVE mode, takes the rows' positions from the table's sequence (one value at a time: it
keeps no per-session cache) and holds the lock until it commits; PostgreSQL makes a commit
visible before it releases the transaction's locks (`CommitTransaction`, in its xact.c). So an
append's positions are handed out only once every earlier append is visible, and the one
snapshot a statement reads with holds every row up to the head it reads. The relay tails the
store on the same guarantee. Rows are never deleted nor rewritten, and an erasure seals only
personal fields (domain/personal.py): a time entry's kind and minutes stay readable.

Each process keeps its own counts, which changes nothing for concurrent writers: every check
still counts, from the store, every entry committed before it starts (as reading the whole
history did), only without reading again what it had counted. As before, an entry recorded
on another ticket while a ticket is being opened (in this process or another) is not seen by
that check: opening a ticket locks nothing of its contract's usage, and reserves nothing, so
such an entry may take the balance below zero, which the ledger shows as overage.

Counts up to a position hold for every reader, not only for the process that took them (the
guarantee above is the store's), so they are also saved, in `usage_counts` (sql/usage.sql):
a check that has read `SAVE_AFTER` of the contract's events past the saved counts saves its
own, and a saved row only moves forward. A process's first check of a contract starts from
the saved counts and reads only the events stored after their position, so a fresh API
process no longer pays for a long history on its first credit check. Counts are saved under
the time entry class's version (`class_version`): entries that a new upcasting decodes
otherwise are counted again, not taken from counts decoded the old way.

The rows are found by the contract index (`contract_of(state)`, with the position) and each is
decoded by the application's own mapper, then counted if it is a `Ticket.TimeConsumed`: no
topic is compared, so entries stored under an older topic of a renamed or moved class (one the
class was registered under with `register_topic`) still count, and a stored form the mapper
cannot read fails loudly rather than counting as no usage. A check decodes only the events
stored after the counts it starts from (kept in the process, else saved).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from types import MappingProxyType
from typing import Any, NamedTuple

from eventsourcing.application import Application, LRUCache
from eventsourcing.persistence import StoredEvent
from psycopg_pool import ConnectionPool

from domain.billing import Usage
from domain.ticket import Ticket
from infra import postgres

MAX_CONTRACTS = 10_000  # counts kept for this many contracts (the most recently checked)
SAVE_AFTER = 500  # a contract's events read past its saved counts before a check saves its own
Counts = Counter[tuple[str, int]]


class Kept(NamedTuple):
    """A contract's counts of every entry stored up to `position`, and how many of its events
    were read after the position of the counts saved in the table (what a fresh process reads)."""

    position: int
    counts: Counts
    unsaved: int


class StoredUsage:
    """`UsageReader` on the events table: `Ticket.TimeConsumed` entries counted by (kind,
    minutes), kept per contract and brought up to date with what was stored since."""

    event_class = Ticket.TimeConsumed  # type: ignore[attr-defined]  # made by the aggregate's @event decorator

    def __init__(self, app: Application[Any], pool: ConnectionPool, schema: str, table: str) -> None:
        self.mapper = app.mapper
        self.pool = pool
        # The head and the contract's new events in one statement, so from one snapshot.
        self.query = (
            f"WITH head AS (SELECT coalesce(max(notification_id), 0) AS position FROM {table})"
            " SELECT head.position, e.originator_id, e.originator_version, e.topic, e.state FROM head"
            f" LEFT JOIN {table} e ON {schema}.contract_of(e.state) = %s AND e.notification_id > %s"
        )
        self.version = getattr(self.event_class, "class_version", 1)  # the library's default
        self.saved = f"SELECT position, counts FROM {schema}.usage_counts WHERE contract_id = %s AND version = %s"
        self.save = (
            f"INSERT INTO {schema}.usage_counts AS saved VALUES (%s, %s, %s, %s) ON CONFLICT (contract_id, version)"
            " DO UPDATE SET position = EXCLUDED.position, counts = EXCLUDED.counts WHERE saved.position < EXCLUDED.position"
        )
        self.kept: LRUCache[str, Kept] = LRUCache(maxsize=MAX_CONTRACTS)
        self.lock = threading.Lock()

    def __call__(self, contract_id: str) -> Usage:
        position, counts, unsaved = self._kept(contract_id)
        rows = postgres.run(self.pool, lambda conn: conn.execute(self.query, (contract_id, position)).fetchall())
        head = rows[0][0]
        read = [row for row in rows if row[1] is not None]
        events = (self._decoded(*row[1:]) for row in read)
        new = Counter((e.kind, int(e.minutes)) for e in events if isinstance(e, self.event_class))
        if new:
            counts = counts + new  # a new Counter: what is kept is never changed in place
        unsaved += len(read)
        if unsaved >= SAVE_AFTER:
            triples = json.dumps([[kind, minutes, n] for (kind, minutes), n in sorted(counts.items())])
            postgres.run(self.pool, lambda conn: conn.execute(self.save, (contract_id, self.version, head, triples)))
            unsaved = 0
        with self.lock:
            if self._in_process(contract_id).position < head:  # another thread may have gone further meanwhile
                self.kept.put(contract_id, Kept(head, counts, unsaved))
        return MappingProxyType(counts)

    def _kept(self, contract_id: str) -> Kept:
        """The counts to start from: this process's, else the saved ones, else none."""
        kept = self._in_process(contract_id)
        if kept.position:
            return kept
        row = postgres.run(self.pool, lambda conn: conn.execute(self.saved, (contract_id, self.version)).fetchone())
        if row is None:
            return kept
        return Kept(row[0], Counter({(kind, minutes): n for kind, minutes, n in row[1]}), 0)

    def _in_process(self, contract_id: str) -> Kept:
        try:
            return self.kept.get(contract_id)
        except KeyError:
            return Kept(0, Counter(), 0)

    def _decoded(self, originator_id: Any, version: int, topic: str, state: bytes) -> Any:
        return self.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
