"""Rebuild a projection without downtime: fill fresh tables straight from the event store
while the old ones keep serving, then switch atomically and say what changed.

The fill runs in pages of the notification log, one transaction per page. The switch takes
the projection's switch lock exclusively (each of the runner's transactions takes it shared,
so the switch waits for the batch in flight and the next batch for the switch), applies from
the store the events the live runner had applied since the fill (per partition, by its
checkpoint), copies its checkpoint and notices, and swaps the two schemas by renaming them
in the same transaction: readers see the old tables or the new, never a mix, and the runner
goes on from the same offsets. If the runner lagged behind the fill, it reads again events
the new tables already hold: each row knows the last position applied to it, so the
projection ignores them. Notices the rebuild decides again are not published again:
a notice already sent keeps its id, and one the new rules decide about history is recorded
as sent (a rebuild does not re-announce the past). The old schema is kept, renamed, for
comparison, until `--drop-old`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from rich.progress import Progress

from infra import postgres
from infra.kafka.publisher import partition_for
from infra.postgres.checkpoints import switch_lock
from infra.postgres.store import ApplicationHost
from infra.postgres.views import ProjectionSpec
from projections.envelope import Envelope

log = structlog.get_logger("rebuild")
PAGE = 5000
BOOKKEEPING = {"checkpoint", "outbox", "watermark", "heartbeat", "dead_letter", "tally"}


@dataclass
class Report:
    projection: str
    events: int
    seconds: float
    changed: dict[str, dict[str, int]]
    old_schema: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


class Rebuild:
    """One rebuild of one projection into a fresh schema."""

    def __init__(self, spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str) -> None:
        self.spec, self.store, self.url, self.topic = spec, store, url, topic
        self.live = spec.schema
        self.fresh = f"{spec.schema}__new"
        self.projection = spec.make()
        self.position = 0
        self.applied = 0

    def prepare(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.fresh} CASCADE")
            for name in ("checkpoint", "outbox", *self.spec.sql_files):
                postgres.execute_file(conn, name, self.fresh)

    def _pages(self, upto: int) -> Any:
        start = self.position + 1
        while start <= upto:
            page = self.store.recorder.select_notifications(start=start, limit=PAGE, stop=upto)
            if not page:
                return
            yield self.store.published(page)
            start = page[-1].id + 1

    def _apply(self, conn: psycopg.Connection, envelopes: list[Envelope]) -> None:
        view = self.spec.view(conn, self.fresh)
        for env in envelopes:
            self.projection.apply(env, view)
        view.flush()
        self.applied += len(envelopes)

    def fill(self, upto: int, progress: Progress | None = None) -> None:
        """Apply every event up to `upto`, one transaction per page."""
        task = progress.add_task(f"rebuild {self.spec.name}", total=upto - self.position) if progress else None
        with psycopg.connect(self.url) as conn:
            for envelopes in self._pages(upto):
                with conn.transaction(), conn.pipeline():
                    self._apply(conn, envelopes)
                self.position = envelopes[-1].position
                if progress and task is not None:
                    progress.update(task, completed=self.position)

    def switch(self, partitions: int) -> str:
        """Catch up to exactly what the live runner applied, then swap the schemas."""
        old = f"{self.live}__old_{int(time.time())}"
        with psycopg.connect(self.url) as conn, conn.transaction():
            switch_lock(conn, self.spec.name, shared=False)  # runners hold it shared per transaction
            cursors: dict[int, int] = dict(conn.execute(
                f"SELECT partition, position FROM {self.live}.checkpoint WHERE topic = %s",
                (self.topic,),
            ).fetchall())
            upto = max(cursors.values(), default=0)
            for envelopes in self._pages(upto):
                caught = [e for e in envelopes
                          if e.position <= cursors.get(partition_for(e.contract_id.encode(), partitions), 0)]
                self._apply(conn, caught)
                self.position = envelopes[-1].position
            self._carry_bookkeeping(conn)
            conn.execute(f"ALTER SCHEMA {self.live} RENAME TO {old}")
            conn.execute(f"ALTER SCHEMA {self.fresh} RENAME TO {self.live}")
        return old

    def _carry_bookkeeping(self, conn: psycopg.Connection) -> None:
        new, live = self.fresh, self.live
        # The live runner's counts carry on (a metric's counter does not restart at a switch).
        conn.execute(f"DELETE FROM {new}.tally")
        for table in ("checkpoint", "watermark", "heartbeat", "dead_letter", "tally"):
            conn.execute(f"INSERT INTO {new}.{table} SELECT * FROM {live}.{table}")
        conn.execute(f"DELETE FROM {new}.outbox n USING {live}.outbox o WHERE n.notice_id = o.notice_id")
        conn.execute(f"UPDATE {new}.outbox SET published_at = now() WHERE published_at IS NULL")
        conn.execute(f"INSERT INTO {new}.outbox SELECT * FROM {live}.outbox")
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{new}.outbox', 'id'),"
                     f" greatest((SELECT max(id) FROM {new}.outbox), 1))")

    def diff(self, old: str) -> dict[str, dict[str, int]]:
        """Per read-model table: rows before, after, and rows that differ either way."""
        out: dict[str, dict[str, int]] = {}
        with psycopg.connect(self.url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.live,)
            ).fetchall() if r[0] not in BOOKKEEPING]
            for t in sorted(tables):
                def count(query: str) -> int:
                    row = conn.execute(query).fetchone()
                    return int(row[0]) if row else 0

                out[t] = {
                    "before": count(f"SELECT count(*) FROM {old}.{t}"),
                    "after": count(f"SELECT count(*) FROM {self.live}.{t}"),
                    "only_before": count(f"SELECT count(*) FROM (SELECT * FROM {old}.{t} EXCEPT ALL SELECT * FROM {self.live}.{t}) d"),
                    "only_after": count(f"SELECT count(*) FROM (SELECT * FROM {self.live}.{t} EXCEPT ALL SELECT * FROM {old}.{t}) d"),
                }
        return out


def rebuild(spec: ProjectionSpec, store: ApplicationHost, url: str, topic: str, partitions: int,
            show_progress: bool = True) -> Report:
    job = Rebuild(spec, store, url, topic)
    job.prepare()
    started = time.perf_counter()
    with Progress(disable=not show_progress) as progress:
        job.fill(store.head(), progress)
    old = job.switch(partitions)
    seconds = time.perf_counter() - started
    report = Report(spec.name, job.applied, seconds, job.diff(old), old)
    log.info("rebuilt", projection=spec.name, events=job.applied, seconds=round(seconds, 2),
             rate=round(report.rate), old_schema=old, changed=report.changed)
    return report


def drop_old(url: str, spec: ProjectionSpec) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        olds = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{spec.schema}__old_%",)
        ).fetchall()]
        for schema in olds:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return olds
