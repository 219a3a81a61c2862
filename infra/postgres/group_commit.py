"""Group commit: concurrent commands share one event-store transaction.

The store appends under a table lock, so one transaction per command caps the API at a few
hundred commands a second; here each request thread hands its command's stored events to
one committer thread, which appends everything that arrived meanwhile in a single
transaction. Every command keeps its own events until it hears back, so when a batch fails
(one command lost a race with another writer, or repeats one whose answer is kept) the
batch is appended again one command at a time: only the command at fault hears of it, and
nobody's events are lost. A connection that breaks while committing leaves the outcome
unknown; the committer then reads the events back before it answers either way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import structlog
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from infra.postgres.recorder import Append, KeyKept, TicketingRecorder

log = structlog.get_logger("group-commit")
Pending = tuple[Append, "Future[list[int]]"]


class StoreUnavailable(Exception):
    """The event store could not be reached; nothing was recorded."""


class GroupCommitter:
    """`commit(append)` blocks until the append is recorded (its ids) or refused."""

    def __init__(self, recorder: TicketingRecorder, max_batch: int = 200) -> None:
        self.recorder, self.max_batch = recorder, max_batch
        self.pending: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self.thread.start()

    def commit(self, append: Append) -> list[int]:
        future: Future[list[int]] = Future()
        self.pending.put((append, future))
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

    def _commit(self, batch: list[Pending]) -> None:
        if len(batch) > 1:
            try:
                self._append([a for a, _ in batch])
            except (IntegrityError, KeyKept):
                pass  # someone lost a race: find out who, one command at a time
            except Exception as exc:  # noqa: BLE001 - every waiting command must hear of it
                for _, future in batch:
                    future.set_exception(exc)
                return
            else:
                for append, future in batch:
                    future.set_result(append.ids)
                return
        for append, future in batch:
            try:
                self._append([append])
                future.set_result(append.ids)
            except Exception as exc:  # noqa: BLE001 - delivered to the waiting command
                future.set_exception(exc)

    def _append(self, appends: Sequence[Append]) -> None:
        """Append; when the connection broke on the way (a stale connection after the store
        restarted, or the store going away), find out whether it happened, and if it
        certainly did not, try again a few times."""
        for attempt in range(4):
            try:
                self.recorder.append(appends)
                return
            except (OperationalError, InterfaceError) as exc:
                log.warning("store fault while appending; checking what was written", error=str(exc))
                self.recorder.drop_stale_connections()
                written = self._written(appends)
                if written is None:
                    raise StoreUnavailable("the event store is unavailable; whether it recorded is unknown") from exc
                if written:
                    return
                time.sleep(0.1 * attempt)
        raise StoreUnavailable("the event store is unavailable; nothing was recorded")

    def _written(self, appends: Sequence[Append]) -> bool | None:
        """Whether the appends are in the store (their ids set), None if it cannot be told."""
        try:
            found = [self.recorder.committed(a.events) for a in appends]
        except (OperationalError, InterfaceError):
            return None
        if any(ids is None for ids in found):
            return False
        for append, ids in zip(appends, found, strict=True):
            append.ids = ids or []
        return True
