"""Group commit: concurrent commands share one event-store transaction.

The store appends under a table lock, so one transaction per command caps the API at a few
hundred commands a second; here the request threads take turns as the leader: the thread
that finds no commit under way appends, in a single transaction, everything that arrived
meanwhile (its own command first among them), while the others wait for their turn or for
their answer. There is no committer thread to hand work to and wake again: a command that
arrives alone is appended by its own thread, and a busy API still commits in batches (the
leader-follower group commit of database logs). Every command keeps its own events until it
hears back, so when a batch fails (one command lost a race with another writer, decided on
a state another writer has changed since, or repeats one whose answer is kept) the batch is
appended again one command at a time: only the command at fault hears of it, and nobody's
events are lost. A connection that breaks while committing leaves the outcome unknown; the
leader then reads the events back before it answers either way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from uuid import UUID

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
        self.turn = threading.Condition()
        self.leading = False  # whether a thread is committing (guarded by `turn`)
        self.held: Pending | None = None  # taken from `pending` for the next batch (the leader's)

    def commit(self, append: Append) -> list[int]:
        future: Future[list[int]] = Future()
        self.pending.put((append, future))
        with self.turn:
            while self.leading and not future.done():
                self.turn.wait()
            if future.done():  # a leader committed it meanwhile
                return future.result()
            self.leading = True
        try:
            # Everything waiting, in batches, until this command's own answer is in; a command
            # that arrives after that finds the lead free (or a waiter takes it: see below).
            while not future.done():
                batch = self._batch()
                try:
                    self._commit(batch)
                except BaseException as exc:  # every command taken must hear back, or a leader waits forever
                    for _, taken in batch:
                        if not taken.done():
                            taken.set_exception(exc)
                    raise
        finally:
            with self.turn:
                self.leading = False
                self.turn.notify_all()  # the answered return; one of the others leads next
        return future.result()

    def _batch(self) -> list[Pending]:
        """What is waiting, in order, up to `max_batch` commands; it ends before a command that
        read (without writing) an aggregate an earlier command of the batch writes: the store
        checks what a batch read before its events go in, so that command goes in the next batch,
        and its check then sees the change (StaleRead: it decides again)."""
        batch: list[Pending] = []
        written: set[UUID | str] = set()
        while len(batch) < self.max_batch:
            if self.held is not None:
                waiting, self.held = self.held, None
            else:
                try:
                    waiting = self.pending.get_nowait()
                except queue.Empty:
                    break
            append = waiting[0]
            if batch and not written.isdisjoint(append.read):
                self.held = waiting
                break
            batch.append(waiting)
            written.update(e.originator_id for e in append.events)
        return batch

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
