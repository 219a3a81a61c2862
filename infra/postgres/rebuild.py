"""Rebuild a projection without downtime: fill fresh tables from the event store (or from the
events topic) while the old ones keep serving, see what the new rules change, then switch
atomically, or drop the prepared tables.

The fill runs in pages, one transaction per page, into the schema `proj_<name>__new`, whose
`built` row records the rules version of this code, where it reads from, and the position
applied so far and aimed at (GET /metrics shows both). It heads for the live runner's
watermark, never beyond: the events the live runner has not applied yet are its own to apply
and announce, so every notice the fill decides is one about the past. `--dry-run` stops there
and compares: in one snapshot of the live tables and the live runner's checkpoint (committed
together, so they agree; the runner goes on meanwhile) it applies from the store what the live
runner had applied beyond the fill (per partition, by its checkpoint), compares the business
figures of the two schemas (infra/postgres/changes.py) at exactly the same events, then rolls
that catch-up back: the prepared tables stay where the fill stopped, and nothing is switched.
`--switch` fills on from there to the live runner's watermark and switches.

The switch takes the projection's switch lock exclusively (each of the runner's transactions
takes it shared, so the switch waits for the batch in flight and the next batch for the
switch), does the same catch-up, compares the same way, copies the runner's checkpoint and
notices, records in the new outbox one `Projection.Rebuilt` notice (sent once by the runner's
outbox publisher, like every notice: decided in the transaction that switches, so a crash
either switches and sends, or neither), and swaps the two schemas by renaming them in the same
transaction: readers see the old tables or the new, never a mix, and the runner goes on from the
same offsets, into tables that hold exactly what it had applied, and decides and sends the
notices of what follows. (A live runner that never committed has no watermark: the fill goes
to the head, and the runner reads again events the new tables already hold; each row knows
the last position applied to it, so the projection ignores them.) Notices the rebuild decides
again are not published again: a notice already sent keeps its id, and one the new rules
decide about history is recorded as sent (a rebuild does not re-announce the past). The old
schema is kept, renamed, for comparison, until `--drop-old`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import structlog
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from consumers.ports import View
from domain.rules import RULES_VERSION
from infra import postgres
from infra.kafka import history
from infra.kafka.notices import REBUILD_TOPIC, encode_rebuilt
from infra.kafka.publisher import partition_for
from infra.postgres import changes, leases
from infra.postgres.changes import Change
from infra.postgres.checkpoints import switch_lock
from infra.postgres.outbox import enqueue
from infra.postgres.store import ApplicationHost
from infra.postgres.views import ProjectionSpec
from projections.envelope import Envelope

log = structlog.get_logger("rebuild")
PAGE = 5000
# A fill applies this many pages in one transaction through one view, which writes its rows
# once at the end, as a runner's batch does (the fresh tables have no other writer, so what
# the view keeps stays true; an erasure blanks rows at that write, after the upserts): a
# ticket that events of many pages touch is read, derived and written once. Then it starts
# afresh, so memory stays bounded.
KEEP_PAGES = 20
BOOKKEEPING = {"checkpoint", "outbox", "watermark", "heartbeat", "dead_letter", "tally", "built"}
SOURCES = ("store", "kafka")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Page:
    """A page of the history: the envelopes the projection reads, the last position it went
    through and how many events it went through (those the projection does not read too)."""

    envelopes: list[Envelope]
    last: int
    events: int


class NotPrepared(Exception):
    """No prepared rebuild of this projection: `ticketing rebuild P --dry-run` prepares one."""


class PreparedWithOtherRules(Exception):
    """The prepared rebuild was built by code of other rules: `--abort` it and prepare again."""


class RebuildRunning(Exception):
    """Another rebuild of this projection is running (its tables are one prepared schema)."""


@contextmanager
def alone(url: str, spec: ProjectionSpec) -> Iterator[None]:
    """Hold the lease `rebuild:<name>` meanwhile: one rebuild of a projection at a time."""
    conn, role = leases.connect(url, autocommit=True), f"rebuild:{spec.name}"
    try:
        if not leases.try_lock(conn, role):
            raise RebuildRunning(f"another rebuild of {spec.name} is running (server pid"
                                 f" {leases.holder(conn, role)} holds its lease)")
        try:
            yield
        finally:
            # Released before closing: the server frees a closed session's locks only once its
            # process has ended, which may come after the next rebuild (an `--abort`) tried. (A
            # broken connection has lost the lease already.)
            with suppress(psycopg.Error):
                leases.unlock(conn, role)
    finally:
        conn.close()


@dataclass
class Report:
    projection: str
    events: int
    seconds: float
    changed: dict[str, dict[str, int]]
    old_schema: str
    business: list[Change] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


@dataclass
class DryRun:
    """What switching the prepared tables would change, as of the live runner's `position`."""

    projection: str
    events: int
    seconds: float
    position: int
    changed: dict[str, dict[str, int]]
    business: list[Change]


class Rate(ProgressColumn):
    """Things (events, or tickets, periods, contracts compared) per second."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f}/s", style="progress.data.speed")


@contextmanager
def collected_per_window() -> Iterator[Callable[[], object]]:
    """The cyclic garbage collector paused while a fill runs; what this yields collects the
    young generations, which the caller runs once after each window, when the window's view is
    dropped: they then hold the window's objects and no more (nothing is promoted while the
    collector is paused), and the process's old heap is never walked. A window holds some
    100,000 events' objects, and the collector's automatic passes over them, each full one
    over the whole heap, took a third of an SLA fill of 1,000,000 events (74 against 49 us of
    CPU per event)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        if enabled:
            gc.enable()


def bars(show: bool = True) -> Progress:
    """A progress display with rate and time left (on stderr, like logs: stdout stays the report)."""
    from rich.console import Console

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeRemainingColumn(), disable=not show, console=Console(stderr=True))


class Rebuild:
    """One rebuild of one projection into the schema `proj_<name>__new`."""

    def __init__(self, spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str, partitions: int = 1,
                 bootstrap: str | None = None) -> None:
        self.spec, self.store, self.url, self.topic = spec, store, url, topic
        self.partitions, self.bootstrap = partitions, bootstrap
        self.live = spec.schema
        self.fresh = f"{spec.schema}__new"
        self.projection = spec.make()
        self.position = 0
        self.applied = 0

    # -- preparing --------------------------------------------------------------------------

    def prepare(self, source: str = "store") -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.fresh} CASCADE")
            for name in ("checkpoint", "dead_letter", "outbox", *self.spec.sql_files):
                postgres.execute_file(conn, name, self.fresh)
            conn.execute(f"INSERT INTO {self.fresh}.built (rules_version, source, position, target)"
                         " VALUES (%s, %s, 0, 0)", (RULES_VERSION, source))

    def resume(self) -> None:
        """Go on with the rebuild a dry run prepared, from where its fill stopped."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            try:
                row = conn.execute(f"SELECT rules_version, position FROM {self.fresh}.built").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
        if row is None:
            raise NotPrepared(f"no prepared rebuild of {self.spec.name}: run `ticketing rebuild {self.spec.name}"
                              " --dry-run` first")
        if row[0] != RULES_VERSION:
            raise PreparedWithOtherRules(f"the prepared rebuild of {self.spec.name} was built with rules {row[0]},"
                                         f" this code has rules {RULES_VERSION}: `--abort` it and prepare it again")
        self.position = int(row[1])

    def target(self, source: str) -> int:
        """Where a fill heads: the store's head, or all the topic is known to hold (the relay's
        acknowledged position), but no further than the live runner consumed on every
        partition (its watermark): the events beyond are the runner's to apply, and their
        notices its to send (a fill that went past them would decide those notices, which the
        switch takes for the past, and the runner, finding the rows ahead, would not)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            upto = self.store.head() if source == "store" else self._relayed(conn)[0]
            row = conn.execute(f"SELECT position FROM {self.live}.watermark WHERE topic = %s",
                               (self.topic,)).fetchone()
        return min(upto, int(row[0])) if row and row[0] else upto

    def _relayed(self, conn: psycopg.Connection) -> tuple[int, dict[int, int]]:
        row = conn.execute("SELECT position, partitions FROM relay.position WHERE topic = %s", (self.topic,)).fetchone()
        if row is None:
            return 0, {}
        return int(row[0]), {int(p): int(last) for p, (_, last) in row[1].items()}

    # -- filling ----------------------------------------------------------------------------

    def _store_pages(self, upto: int) -> Iterator[Page]:
        """The store's events up to `upto` in pages, decoded only where the projection reads
        them (`reads`): it acts on no other type, so the rest are passed over undecoded."""
        start = self.position + 1
        while start <= upto:
            page = self.store.recorder.select_notifications(start=start, limit=PAGE, stop=upto)
            if not page:
                return
            yield Page(self.store.published(page, self.projection.reads), page[-1].id, len(page))
            start = page[-1].id + 1

    def _topic_pages(self, upto: int, progress: Progress) -> Iterator[Page]:
        assert self.bootstrap, "reading the topic needs the broker's address (KAFKA_BOOTSTRAP_SERVERS)"
        task = progress.add_task(f"read {self.topic}", total=max(upto - self.position, 0))
        after = self.position
        with psycopg.connect(self.url, autocommit=True) as conn:
            _, last = self._relayed(conn)
        read = history.read(self.bootstrap, self.topic, after, upto, last,
                            seen=lambda p: progress.update(task, completed=max(0, min(p, upto) - after)))
        progress.update(task, completed=max(upto - after, 0))
        for i in range(0, len(read), PAGE):
            chunk = read[i:i + PAGE]
            yield Page(chunk, chunk[-1].position, len(chunk))

    def _apply(self, conn: psycopg.Connection, envelopes: list[Envelope], view: View | None = None,
               flush: bool = True) -> None:
        view = view or self.spec.view(conn, self.fresh)
        view.prefetch({env.contract_id for env in envelopes})
        for env in envelopes:
            self.projection.apply(env, view)
        if flush:
            view.flush()

    def fill(self, upto: int, progress: Progress | None = None, source: str = "store") -> None:
        """Apply every event up to `upto`, one transaction per window of pages, each recording the position."""
        progress = progress or bars(show=False)
        pages = self._store_pages(upto) if source == "store" else self._topic_pages(upto, progress)
        task = progress.add_task(f"rebuild {self.spec.name} from the {source}", total=max(upto - self.position, 0))
        start = self.position
        with psycopg.connect(self.url) as conn, collected_per_window() as collect:
            with conn.transaction():
                conn.execute(f"UPDATE {self.fresh}.built SET target = %s", (upto,))
            page = next(pages, None)
            while page is not None:  # one transaction, and one view, per window of pages
                with conn.transaction():
                    view = self.spec.view(conn, self.fresh)
                    for _ in range(KEEP_PAGES):
                        self._apply(conn, page.envelopes, view, flush=False)
                        self.position, self.applied = page.last, self.applied + page.events
                        progress.update(task, completed=self.position - start)
                        page = next(pages, None)
                        if page is None:
                            break
                    with conn.pipeline():
                        view.flush()
                        conn.execute(f"UPDATE {self.fresh}.built SET position = %s", (self.position,))
                del view
                collect()
            with conn.transaction():  # nothing beyond the last page: the fill stands at its target
                self.position = max(self.position, upto)
                conn.execute(f"UPDATE {self.fresh}.built SET position = %s", (self.position,))
        progress.update(task, completed=max(upto - start, 0))

    # -- at the switch lock: compare, switch ---------------------------------------------------

    def _catch_up(self, conn: psycopg.Connection, lock: bool = True) -> int:
        """In the caller's transaction: hold the switch lock (or read one snapshot) and apply
        exactly what the live runner applied beyond the fill; the live runner's position."""
        if lock:
            switch_lock(conn, self.spec.name, shared=False)  # runners hold it shared per transaction
        cursors: dict[int, int] = dict(conn.execute(
            f"SELECT partition, position FROM {self.live}.checkpoint WHERE topic = %s", (self.topic,)).fetchall())
        upto = max(cursors.values(), default=0)
        for page in self._store_pages(upto):
            caught = [e for e in page.envelopes
                      if e.position <= cursors.get(partition_for(e.contract_id.encode(), self.partitions), 0)]
            self._apply(conn, caught)
            self.position, self.applied = page.last, self.applied + len(caught)
        return upto

    def compare(self, now: datetime, progress: Progress | None = None) -> tuple[int, list[Change], dict[str, dict[str, int]]]:
        """What the switch would change, at the live runner's events; nothing is kept. One
        snapshot (repeatable read) shows the live tables with the checkpoint committed with them,
        so the comparison need not hold the runner up with the switch lock."""
        kept = self.position, self.applied
        with psycopg.connect(self.url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                position = self._catch_up(conn, lock=False)
                found = changes.compare(conn, self.spec.name, self.live, self.fresh, now, _advance(progress, conn, self))
                counts = table_diff(conn, self.live, self.fresh)
            finally:
                conn.rollback()  # the catch-up too: the prepared tables stay where the fill stopped
        self.position, self.applied = kept
        return position, found, counts

    def switch(self, now: datetime, progress: Progress | None = None) -> tuple[str, list[Change]]:
        """Catch up to exactly what the live runner applied, announce, then swap the schemas."""
        with psycopg.connect(self.url) as conn, conn.transaction():
            position = self._catch_up(conn)
            stamp = int(time.time())  # two switches within a second: the later one takes the next number
            while conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (f"{self.live}__old_{stamp}",)).fetchone():
                stamp += 1
            old = f"{self.live}__old_{stamp}"
            found = changes.compare(conn, self.spec.name, self.live, self.fresh, now, _advance(progress, conn, self))
            self._carry_bookkeeping(conn)
            self._announce(conn, position, found, now)
            conn.execute(f"ALTER SCHEMA {self.live} RENAME TO {old}")
            conn.execute(f"ALTER SCHEMA {self.fresh} RENAME TO {self.live}")
        return old, found

    def _announce(self, conn: psycopg.Connection, position: int, found: list[Change], now: datetime) -> None:
        """The switch's notice, in its transaction, in the new outbox (sent once by the runner)."""
        try:
            with conn.transaction():
                previous = conn.execute(f"SELECT rules_version FROM {self.live}.built").fetchone()
        except psycopg.errors.UndefinedTable:  # tables set up before rules were recorded
            previous = None
        conn.execute(f"UPDATE {self.fresh}.built SET switched_at = %s, position = greatest(position, %s)",
                     (now, position))
        notice_id = f"rebuild:{self.spec.name}:{RULES_VERSION}:{now.isoformat()}"
        record = {"notice_id": notice_id,
                  "projection": self.spec.name, "rules_version": RULES_VERSION,
                  "previous_rules_version": previous[0] if previous else None, "position": position,
                  "changes": len(found), "verdicts_flipped": changes.flipped(found), "switched_at": now}
        value, headers = encode_rebuilt(record)
        enqueue(conn, self.fresh, notice_id, REBUILD_TOPIC, self.spec.name, value, headers)

    def _carry_bookkeeping(self, conn: psycopg.Connection) -> None:
        new, live = self.fresh, self.live
        # The live runner's counts carry on (a metric's counter does not restart at a switch).
        conn.execute(f"DELETE FROM {new}.tally")
        for table in ("checkpoint", "watermark", "heartbeat", "dead_letter", "tally"):
            conn.execute(f"INSERT INTO {new}.{table} SELECT * FROM {live}.{table}")
        conn.execute(f"DELETE FROM {new}.outbox n USING {live}.outbox o WHERE n.notice_id = o.notice_id")
        conn.execute(f"UPDATE {new}.outbox SET published_at = now() WHERE published_at IS NULL")
        # Left are the notices only the rebuild decided, under ids of its own outbox, which the
        # live one may hold for other notices (its runner's, earlier switches' announcements):
        # they move past both outboxes' highest ids (read under the switch lock), in order.
        conn.execute(f"UPDATE {new}.outbox SET id = id + (SELECT coalesce(greatest("
                     f"(SELECT max(id) FROM {new}.outbox), (SELECT max(id) FROM {live}.outbox)), 0))")
        conn.execute(f"INSERT INTO {new}.outbox SELECT * FROM {live}.outbox")
        for table in ("outbox", "dead_letter"):  # copied ids: the next one must come after them
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{new}.{table}', 'id'),"
                         f" greatest((SELECT max(id) FROM {new}.{table}), 1))")

    def diff(self, old: str) -> dict[str, dict[str, int]]:
        """Per read-model table: rows before, after, and rows that differ either way."""
        with psycopg.connect(self.url) as conn:
            return table_diff(conn, old, self.live)


def table_diff(conn: psycopg.Connection, before: str, after: str) -> dict[str, dict[str, int]]:
    """Per read-model table of `after`: rows before, after, and rows that differ either way."""
    out: dict[str, dict[str, int]] = {}
    tables = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (after,)
    ).fetchall() if r[0] not in BOOKKEEPING]

    def count(query: str) -> int:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    for t in sorted(tables):
        out[t] = {
            "before": count(f"SELECT count(*) FROM {before}.{t}"),
            "after": count(f"SELECT count(*) FROM {after}.{t}"),
            "only_before": count(f"SELECT count(*) FROM (SELECT * FROM {before}.{t} EXCEPT ALL SELECT * FROM {after}.{t}) d"),
            "only_after": count(f"SELECT count(*) FROM (SELECT * FROM {after}.{t} EXCEPT ALL SELECT * FROM {before}.{t}) d"),
        }
    return out


def _advance(progress: Progress | None, conn: psycopg.Connection, job: Rebuild) -> Callable[[int], None]:
    """A bar for the comparison (on large read models, the long step after the fill)."""
    if progress is None:
        return lambda _: None
    total = sum(changes.size(conn, job.spec.name, schema) for schema in (job.live, job.fresh))
    task = progress.add_task(f"compare {job.spec.name}", total=total)
    return lambda n: progress.advance(task, n)


def _now() -> datetime:
    return datetime.now(UTC)


def rebuild(spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str, partitions: int,
            show_progress: bool = True, source: str = "store", bootstrap: str | None = None,
            clock: Clock = _now) -> Report:
    """Build and switch at once (`ticketing rebuild P`)."""
    job = Rebuild(spec, store, url, topic, partitions, bootstrap)
    with alone(url, spec):
        job.prepare(source)
        return _fill_and_switch(job, source, show_progress, clock)


def switch_prepared(spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str, partitions: int,
                    show_progress: bool = True, source: str = "store", bootstrap: str | None = None,
                    clock: Clock = _now) -> Report:
    """Switch the rebuild a dry run prepared, filled on from where it stopped (`--switch`)."""
    job = Rebuild(spec, store, url, topic, partitions, bootstrap)
    with alone(url, spec):
        job.resume()
        return _fill_and_switch(job, source, show_progress, clock)


def _fill_and_switch(job: Rebuild, source: str, show_progress: bool, clock: Clock) -> Report:
    started = time.perf_counter()
    with bars(show_progress) as progress:
        job.fill(job.target(source), progress, source)
        old, found = job.switch(clock(), progress)
    seconds = time.perf_counter() - started
    report = Report(job.spec.name, job.applied, seconds, job.diff(old), old, found)
    log.info("rebuilt", projection=job.spec.name, events=job.applied, seconds=round(seconds, 2),
             rate=round(report.rate), old_schema=old, changed=report.changed, rules=RULES_VERSION,
             business_changes=len(found), verdicts_flipped=changes.flipped(found))
    return report


def dry_run(spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str, partitions: int,
            show_progress: bool = True, source: str = "store", bootstrap: str | None = None,
            clock: Clock = _now) -> DryRun:
    """Prepare the new tables and say what switching them would change (`--dry-run`)."""
    job = Rebuild(spec, store, url, topic, partitions, bootstrap)
    started = time.perf_counter()
    with alone(url, spec), bars(show_progress) as progress:
        job.prepare(source)
        job.fill(job.target(source), progress, source)
        position, found, counts = job.compare(clock(), progress)
    seconds = time.perf_counter() - started
    log.info("rebuild prepared", projection=spec.name, events=job.applied, position=position, rules=RULES_VERSION,
             business_changes=len(found), verdicts_flipped=changes.flipped(found))
    return DryRun(spec.name, job.applied, seconds, position, counts, found)


def abort(url: str, spec: ProjectionSpec) -> bool:
    """Drop the prepared rebuild (`--abort`); whether there was one."""
    with alone(url, spec), psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (f"{spec.schema}__new",)).fetchone()
        conn.execute(f"DROP SCHEMA IF EXISTS {spec.schema}__new CASCADE")
    return found is not None


def drop_old(url: str, spec: ProjectionSpec) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        olds = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{spec.schema}__old_%",)
        ).fetchall()]
        for schema in olds:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return olds
