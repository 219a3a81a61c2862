"""Group commit: concurrent commands share one event-store transaction.

The store appends under a table lock, so one transaction per command caps the API at a few
hundred commands a second; here each request thread hands its changed aggregates to one
committer thread, which saves everything that arrived meanwhile in a single transaction.
If that batch hits a version conflict (two commands on one aggregate), the batch is saved
again one command at a time, so only the command that lost the race sees the conflict and
the application retries it on fresh state, as it would without batching.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

Save = Callable[..., list[Any]]


class GroupCommitter:
    """Callable like `Application.save`, but batching concurrent calls."""

    def __init__(self, save: Save, max_batch: int = 200) -> None:
        self.save, self.max_batch = save, max_batch
        self.pending: queue.SimpleQueue[tuple[tuple[Aggregate, ...], Future[list[Any]]]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self.thread.start()

    def __call__(self, *aggregates: Aggregate) -> list[Any]:
        future: Future[list[Any]] = Future()
        self.pending.put((aggregates, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            batch = [self.pending.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[tuple[Aggregate, ...], Future[list[Any]]]]) -> None:
        if len(batch) > 1 and len({a.id for aggs, _ in batch for a in aggs}) == sum(len(a) for a, _ in batch):
            try:
                recordings = self.save(*(a for aggs, _ in batch for a in aggs))
            except IntegrityError:
                pass  # someone else won a race: fall back to one command at a time
            except Exception as exc:  # noqa: BLE001 - every waiting command must hear of it
                for _, future in batch:
                    future.set_exception(exc)
                return
            else:
                self._hand_out(batch, recordings)
                return
        for aggregates, future in batch:
            try:
                future.set_result(self.save(*aggregates))
            except Exception as exc:  # noqa: BLE001 - delivered to the waiting command
                future.set_exception(exc)

    @staticmethod
    def _hand_out(batch: list[tuple[tuple[Aggregate, ...], Future[list[Any]]]], recordings: list[Any]) -> None:
        by_aggregate: dict[Any, list[Any]] = {}
        for recording in recordings:
            by_aggregate.setdefault(recording.domain_event.originator_id, []).append(recording)
        for aggregates, future in batch:
            future.set_result([r for a in aggregates for r in by_aggregate.get(a.id, [])])
