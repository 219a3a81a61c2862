"""The projection runner: poll the events topic, decode, apply, and store the position.

Exactly-once effect: the read-model rows a batch produced and the consumer's position
(topic, partition, offset, and the last store position consumed) are written in one
PostgreSQL transaction. Redelivery will happen (the relay is at-least-once, a crash loses an
uncommitted batch), so a message whose store position is not above the partition's is
dropped and counted as ignored; and every read-model row knows the last position applied to
it, so an overlap the partition's position cannot tell (a rebuild that ran ahead of the
runner) is ignored by the projection.

Poison and faults (consumers/batch.py). A batch that fails anywhere (decoding, applying, the
view's write at flush) is retried event by event, each in a savepoint of its own, so only the
event that fails is parked with the reason; a message whose position lies beyond the store's
head is parked too. A database fault is not poison: the runner ends its session, reconnects
with backoff, takes its leases again, reloads its checkpoints and reads on from there.

Leases. The runner's session holds `apply:<projection>:<partition>` for each partition before
applying it: with partitions assigned by hand, it waits for all of them (`take`), and a second
runner of the projection waits as a hot standby. The tick and the outbox publisher run only
while it holds `tick:<projection>` too, tried on each heartbeat. Every transaction takes the
rebuild's switch lock shared.

Consumer groups (`group=True`). The broker spreads the partitions over the group's runners and
moves them when one comes or goes. Only the lease decides who applies a partition, never the
broker's word: between two polls the runner releases the lease of each partition the group
revoked, or moved at all (its read position may have been reset), and takes that of each one
the group assigned it, reading the checkpoint from PostgreSQL and seeking after it; a lease
still held elsewhere (its runner has not yet seen the rebalance, or is dead on a machine that
keepalives have not yet found out) leaves the partition paused, tried again every half second.
Records of a partition that moved during a poll are dropped unapplied. So a rebalance never
applies an event twice nor skips one. The watermark is the least position consumed over all
the topic's partitions: this runner's cursors for its own, the others' checkpoints. After
each batch the runner commits its offsets to the group as well, for the broker's lag
monitoring only.

Rules. A rebuilt read model records the rules version it was built with (`ticketing rebuild`).
A runner given its code's rules version looks at the tables' at the start of a session, in
each batch's transaction (after the switch lock, so a switch cannot slip in between) and on
each heartbeat; while they differ it refuses: it writes no row, no checkpoint, no tick and
publishes nothing, logs why once, and beats with the reason (GET /health shows it), looking
again until the tables are rebuilt for its rules. It keeps its leases meanwhile: a standby of
the right code takes over once this runner is stopped.

Ports (consumers/ports.py). The runner reads a `MessageSource` (the topic; on Kafka,
infra/kafka/source.py) and writes through a `RunnerSession` (its connection, leases,
bookkeeping and view; on PostgreSQL, infra/postgres/checkpoints.py), which `connect` opens
anew for each session; tests/unit/test_runner_logic.py drives it from lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from consumers.batch import Applier, BatchResult, Decoder, PositionOf
from consumers.ports import Cursor, Doorbell, MessageSource, Projection, Record, RunnerSession
from projections.envelope import Envelope

log = structlog.get_logger("runner")
BACKOFF = (0.2, 5.0)  # seconds before reconnecting: first, and at most
REFUSED_WAIT = 0.5  # seconds between two looks at the tables' rules version while refusing


class RulesDiffer(Exception):
    """The read model's tables were built with rules other than this runner's code has."""


class Runner:
    """One consumer for one projection, on all (or the given) partitions of the source's topic."""

    def __init__(
        self,
        projection: Projection,
        source: MessageSource,
        connect: Callable[[], RunnerSession],
        decode: Decoder,
        position_of: PositionOf,
        partitions: list[int] | None = None,
        poll_ms: int = 50,
        max_records: int = 5000,
        after_commit: Callable[[list[Envelope]], None] | None = None,
        outbox: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: str | None = None,
        beat_every: float = 1.0,
        group: bool = False,
        claim_every: float = 0.5,
        rules_version: str | None = None,
        doorbell: Doorbell | None = None,
        idle_wait: float = 0.5,
        pace: float = 0.0,
    ) -> None:
        self.projection, self.source, self.connect = projection, source, connect
        self.topic = source.topic
        self.position_of = position_of
        self.applier = Applier(projection, decode, position_of)
        self.poll_ms, self.max_records = poll_ms, max_records
        self.after_commit, self.clock, self.outbox = after_commit, clock, outbox
        self.partitions = partitions
        self.lease = lease or projection.name
        self.beat_every = beat_every
        self.group, self.claim_every = group, claim_every
        self.subscribed = False
        self.everywhere: list[int] = []  # the topic's partitions
        self.waiting: set[int] = set()  # assigned by the group, their lease held elsewhere
        self.next_claim = 0.0
        self.session: RunnerSession | None = None
        self.cursors: dict[int, Cursor] = {}
        self.watermark = 0
        self.ticking = False
        self.last_beat = -float("inf")
        self.rules_version = rules_version  # None: write whatever the tables' rules
        self.refused: str | None = None  # why this runner refuses to write, while it does
        # Caught up, wait for the relay's doorbell (at most `idle_wait`) before polling again
        # (not in a consumer group); busy, start a batch at most every `pace` seconds (unless
        # the last one was full), so that a steady stream is applied in batches instead of a
        # transaction per few events.
        self.doorbell, self.idle_wait, self.pace = doorbell, idle_wait, pace
        self.paced_until = 0.0

    # -- a session: connection, leases, checkpoints ----------------------------------------

    def resume(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Start a session: connect, take each partition's lease (waiting as a standby while
        another runner holds it) and seek it after its checkpoint. False if stopped waiting.
        In a group: join it once, and take the leases of what it assigns, waiting for none."""
        self.session = session = self.connect()
        self.everywhere = self.source.wait_for_topic(60)
        if self.group:
            if not self.subscribed:
                self.source.subscribe()
                self.subscribed = True
            self.waiting, self.next_claim = set(), 0.0
            self._follow_group()
        else:
            partitions = self.everywhere if self.partitions is None else self.partitions
            self.source.assign(partitions)
            if not all(self.take(p, stop) for p in partitions):
                return False
        self.watermark = session.watermark()  # read once the leases are ours: it is current
        self._agrees(session.rules_version() if self.rules_version else None)
        session.commit()
        log.info("runner resumed", projection=self.projection.name, lease=self.lease,
                 cursors={p: vars(c) for p, c in self.cursors.items()})
        return True

    def take(self, partition: int, stop: Callable[[], bool] = lambda: False) -> bool:
        """Hold the partition's lease, then go on after its checkpoint."""
        assert self.session is not None
        if not self.session.acquire(f"apply:{self.lease}:{partition}", stop):
            return False
        self._start(partition)
        return True

    def claim(self, partition: int) -> bool:
        """Take the partition's lease if it is free and go on after its checkpoint; else leave
        the partition paused (with a consumer group: what to do when it is assigned)."""
        assert self.session is not None
        if not self.session.try_lock(f"apply:{self.lease}:{partition}"):
            self.source.pause([partition])
            if partition not in self.waiting:
                log.info("standby: another runner still holds the partition", projection=self.projection.name,
                         partition=partition)
            return False
        self._start(partition)
        self.source.resume([partition])
        log.info("partition taken", projection=self.projection.name, partition=partition,
                 cursor=vars(self.cursors[partition]))
        return True

    def _start(self, partition: int) -> None:
        """With the lease held: the checkpoint, as committed, is where the partition goes on."""
        assert self.session is not None
        self.cursors[partition] = cursor = self.session.cursor(partition)
        self.session.commit()
        self._seek_checkpoint(partition, cursor)

    def release(self, partition: int) -> None:
        """Stop applying the partition and free its lease (with a consumer group: what to do
        when the partition is revoked)."""
        assert self.session is not None
        self.cursors.pop(partition, None)
        self.session.unlock(f"apply:{self.lease}:{partition}")

    def _follow_group(self, claim: bool = True) -> None:
        """Release the partitions the group moved or no longer assigns us; then (`claim`) take
        those it assigns us whose lease is free: at once when new, every `claim_every`
        seconds while another runner holds it."""
        moved, assigned = self.source.rebalanced(), self.source.assignment()
        for p in [p for p in self.cursors if p in moved or p not in assigned]:
            self.release(p)
            log.info("partition released", projection=self.projection.name, partition=p)
        if not claim:
            return
        missing = sorted(p for p in assigned if p not in self.cursors)
        due = time.monotonic() >= self.next_claim
        for p in missing:
            if due or p in moved or p not in self.waiting:
                self.claim(p)
        self.waiting = {p for p in missing if p not in self.cursors}
        if due:
            self.next_claim = time.monotonic() + self.claim_every

    def _seek_checkpoint(self, partition: int, cursor: Cursor) -> None:
        """After the checkpoint if the topic still holds it, else from the topic's start (the
        broker lost its history): every row knows what it applied, so nothing applies twice.
        The message at the checkpoint's offset may be one the runner dropped or parked, whose
        position is at most the checkpoint's; a republished topic holds another one there."""
        found = self._position_at(partition, cursor.offset) if cursor.offset >= 0 else None
        if found is not None and found <= cursor.position:
            self.source.seek(partition, cursor.offset + 1)
            return
        self.source.seek_to_beginning(partition)
        if cursor.offset >= 0:
            log.warning("topic does not hold our checkpoint; reading it again from its start",
                        topic=self.topic, partition=partition, offset=cursor.offset, position=cursor.position)

    def _position_at(self, partition: int, offset: int) -> int | None:
        record = self.source.record_at(partition, offset)
        return self.position_of(record.headers) if record is not None else None

    def _end_session(self) -> None:
        """Forget the session (and with it the leases) and the cursors: a new session reloads
        them from the checkpoints."""
        if self.session is not None:
            self.session.close()
        self.session, self.cursors, self.ticking = None, {}, False

    # -- batches ----------------------------------------------------------------------------

    def step(self) -> BatchResult | None:
        """Poll once and apply what came, in one transaction; None if nothing came (or the
        runner refuses to write). In a group, follow its rebalances before the poll, and drop
        what came from partitions it moved during the poll (read from where the broker's policy
        put them, not from the runner's checkpoint)."""
        if self.refused is not None and not self._look_again():
            return None
        if self.group:
            self._follow_group()
        if (early := self.paced_until - time.monotonic()) > 0:
            time.sleep(early)
        polled = self.source.poll(self.poll_ms, self.max_records)
        if self.group:
            self._follow_group(claim=False)
        records = {p: batch for p, batch in polled.items() if p in self.cursors and batch}
        if not records:
            # In a group, the broker's group protocol (joins, syncs) only moves while the
            # runner polls: there it keeps polling instead of waiting on the bell.
            if self._idle() and self.doorbell is not None and not self.group:
                self.doorbell.wait(self.idle_wait)
            return None
        if sum(map(len, polled.values())) < self.max_records:
            self.paced_until = time.monotonic() + self.pace
        started = time.perf_counter()
        saved = {p: replace(c) for p, c in self.cursors.items()}
        try:
            result = self._commit(records, saved)
        except RulesDiffer:  # switched to tables of other rules: nothing of the batch is kept
            self._rewind(saved)
            return None
        except BaseException:
            self._rewind(saved)
            raise
        log.info("batch", projection=self.projection.name, applied=result.applied,
                 ignored=result.ignored, parked=result.parked,
                 position=max(c.position for c in self.cursors.values()),
                 ms=round((time.perf_counter() - started) * 1000, 1))
        if self.group:  # after the checkpoints: what the broker holds is never ahead of them
            self.source.commit({p: self.cursors[p].offset + 1 for p in records})
        if self.after_commit is not None and result.envelopes:
            self.after_commit(result.envelopes)
        self._publish()
        self._beat()
        return result

    def _commit(self, records: Mapping[int, Sequence[Record]], saved: dict[int, Cursor]) -> BatchResult:
        assert self.session is not None
        try:
            return self._write(records, isolate=False)
        except RulesDiffer:
            raise
        except Exception as exc:  # retried event by event to find the poison
            if self.session.is_fault(exc):
                raise
            self.session.rollback()
            self.cursors = {p: replace(c) for p, c in saved.items()}
            log.warning("batch failed; applying it event by event", error=repr(exc))
            return self._write(records, isolate=True)

    def _write(self, records: Mapping[int, Sequence[Record]], isolate: bool) -> BatchResult:
        assert self.session is not None
        book, result = self.session, BatchResult()
        # A whole batch's statements may go out without waiting for each answer; one event at
        # a time, each savepoint waits for its answer anyway.
        with book.batch() if not isolate else nullcontext():
            book.switch_lock(self.lease)
            if self.rules_version is not None and not self._agrees(book.rules_version()):
                raise RulesDiffer(self.refused)
            sort = self.applier.sort
            messages = [m for p, batch in records.items() for r in batch
                        if (m := sort(book, self.cursors[p], p, r, result)) is not None]
            if isolate:
                self.applier.apply_each(book, messages, result)
            else:
                self.applier.apply(book, messages, result)
            book.store({p: self.cursors[p] for p in records})
            book.tally(result.applied, result.ignored)
            watermark = self._raise_watermark(min(self._consumed().values()))
        book.commit()
        self.watermark = watermark
        return result

    def _rewind(self, saved: dict[int, Cursor]) -> None:
        """Undo a failed batch: the cursors as they were, the source back after them."""
        if self.session is not None:
            self.session.rollback()
        self.cursors = saved
        for p, cursor in saved.items():
            if cursor.offset >= 0:
                self.source.seek(p, cursor.offset + 1)
            else:
                self.source.seek_to_beginning(p)

    # -- watermark, heartbeat, tick ---------------------------------------------------------

    def _consumed(self) -> dict[int, int]:
        """The last position consumed on each of the topic's partitions: this runner's cursors
        on its own, the committed checkpoints on the others (other runners of its group apply
        them; what they committed they did consume)."""
        assert self.session is not None
        mine = {p: c.position for p, c in self.cursors.items()}
        others = [p for p in self.everywhere if p not in mine]
        stored = self.session.positions() if others else {}
        return {p: stored.get(p, 0) for p in others} | mine

    def _raise_watermark(self, candidate: int) -> int:
        """Raise the watermark (every partition has consumed all positions up to it) in the
        open transaction; the caller keeps the value once that commits."""
        if candidate <= self.watermark:
            return self.watermark
        assert self.session is not None
        self.session.store_watermark(candidate)
        return candidate

    def _idle(self) -> bool:
        """Nothing came: if every partition is past the last position the relay published
        into it, everything up to the relay's position is consumed. (Read from the relay's
        table, not from the broker's end offsets, which some brokers report short.) True if
        this runner's partitions hold nothing the relay published that it has not consumed."""
        assert self.session is not None
        self.session.switch_lock(self.lease)
        relayed, watermark, behind = self.session.relayed(), self.watermark, False
        if relayed is not None:
            published, last = relayed
            behind = any(c.position < last.get(p, 0) for p, c in self.cursors.items())
            if published > watermark and not behind:
                consumed = self._consumed()
                if all(consumed.get(p, 0) >= position for p, position in last.items()):
                    watermark = self._raise_watermark(published)
        self.session.commit()
        self.watermark = watermark
        self._beat()
        return not behind

    def _beat(self) -> None:
        """Once a second: the heartbeat, and the tick if this runner holds the tick's lease."""
        now = time.monotonic()
        if now - self.last_beat < self.beat_every:
            return
        assert self.session is not None
        self.last_beat = now
        self.ticking = self.ticking or self.session.try_lock(f"tick:{self.lease}")
        self.session.switch_lock(self.lease)
        allowed = self.rules_version is None or self._agrees(self.session.rules_version())
        if self.ticking and allowed:
            self.projection.tick(self.clock(), self.session.view())
        self.session.beat(self.projection.name, self.refused)
        self.session.commit()
        self._publish()

    def _publish(self) -> None:
        if self.outbox is not None and self.ticking and self.refused is None:
            self.outbox.publish()

    # -- the rules version ------------------------------------------------------------------

    def _agrees(self, built: str | None) -> bool:
        """Whether this runner may write into tables built with rules `built` (None: set up,
        not rebuilt, so any); if not, remember why and say it once."""
        if self.rules_version is None or built is None or built == self.rules_version:
            if self.refused is not None:
                log.info("rules version agrees; writing again", projection=self.projection.name, rules=built)
            self.refused = None
            return True
        refused = (f"the tables were built with rules {built}, this runner's code has rules {self.rules_version}:"
                   " run the code of the tables' rules, or rebuild them with this code")
        if refused != self.refused:
            log.error("runner refuses to write: rules version differs", projection=self.projection.name,
                      tables_rules=built, runner_rules=self.rules_version, why=refused)
        self.refused = refused
        return False

    def _look_again(self) -> bool:
        """While refusing: look at the tables' rules version again, and beat with the reason."""
        assert self.session is not None
        self.session.switch_lock(self.lease)
        agrees = self._agrees(self.session.rules_version())
        if not agrees:
            self.session.beat(self.projection.name, self.refused)
        self.session.commit()
        if not agrees:
            time.sleep(REFUSED_WAIT)
        return agrees

    # -- the process ------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Apply until stopped; a fault ends the session, never the runner."""
        delay = BACKOFF[0]
        while not stop():
            try:
                if self.session is None and not self.resume(stop):
                    continue
                self.step()
                delay = BACKOFF[0]
            except Exception as exc:  # noqa: BLE001 - the process's top-level loop
                log.warning("runner fault; reconnecting", projection=self.projection.name,
                            error=repr(exc), retry_in=delay)
                self._end_session()
                _sleep(delay, stop)
                delay = min(delay * 2, BACKOFF[1])

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        if self.doorbell is not None:
            self.doorbell.close()
        self.source.close()
        self._end_session()


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.1, seconds))
