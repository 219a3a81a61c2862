"""The projection runner's logic, driven from lists: its ports (consumers/ports.py) are played
by a topic that keeps records in lists per partition, and by a database in memory whose
sessions hold leases and write in transactions (committed at once, or not at all; savepoints;
a session that lost its connection writes nothing). The projection is the real ticket list on
its real in-memory view; messages carry the store position in the relay's header."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from consumers.ports import Cursor
from consumers.runner import Runner
from infra.kafka.avro import H_POSITION, position_of
from projections.envelope import Envelope
from projections.tickets import InMemoryTicketsView, TicketsProjection
from tests.unit.bells import RecordingBell

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOPIC = "events"


class Rec(NamedTuple):
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] | None


class ListTopic:
    """A topic's partitions as lists of records; polls read on from each partition's place."""

    def __init__(self, partitions: int = 2) -> None:
        self.topic = TOPIC
        self.held: list[list[Rec]] = [[] for _ in range(partitions)]
        self.assigned: list[int] = []
        self.place: dict[int, int] = {}
        self.seeks: list[tuple[int, int | None]] = []  # (partition, offset); None: to the beginning

    def append(self, partition: int, value: bytes, position: int | None) -> None:
        headers = [(H_POSITION, str(position).encode())] if position is not None else []
        self.held[partition].append(Rec(len(self.held[partition]), value, headers))

    def wait_for_topic(self, timeout: float) -> list[int]:
        return list(range(len(self.held)))

    def assign(self, partitions: list[int]) -> None:
        self.assigned = list(partitions)
        self.place = {p: self.place.get(p, 0) for p in partitions}

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[int, Sequence[Rec]]:
        polled: dict[int, list[Rec]] = {}
        for p in self.assigned:
            records = self.held[p][self.place[p]:self.place[p] + max_records]
            if records:
                polled[p], self.place[p] = records, self.place[p] + len(records)
        return polled

    def seek(self, partition: int, offset: int) -> None:
        self.place[partition] = offset
        self.seeks.append((partition, offset))

    def seek_to_beginning(self, partition: int) -> None:
        self.place[partition] = 0
        self.seeks.append((partition, None))

    def record_at(self, partition: int, offset: int) -> Rec | None:
        records = self.held[partition]
        return records[offset] if 0 <= offset < len(records) else None

    def close(self) -> None:
        pass


class GroupTopic(ListTopic):
    """One group member's consumer of a topic (`held` may be shared with other members'):
    `rebalance` plays the broker, moving partitions to it and from it; a partition assigned
    (again) is read from `reset_to` (the broker's policy) and comes paused. `during_poll`, if
    set, runs inside the next poll, before it reads."""

    def __init__(self, held: list[list[Rec]] | None = None, reset_to: int = 0) -> None:
        super().__init__()
        if held is not None:
            self.held = held
        self.reset_to, self.moved, self.paused = reset_to, set[int](), set[int]()
        self.during_poll: Callable[[], None] | None = None
        self.committed: dict[int, int] = {}

    def subscribe(self) -> None:
        pass

    def rebalance(self, partitions: list[int], pause: bool = True) -> None:
        """`pause=False`: records come before the listener pauses them (kafka-python resets
        the positions, then calls the listener)."""
        self.moved |= set(self.assigned) | set(partitions)
        self.place = dict.fromkeys(partitions, self.reset_to)
        self.assigned, self.paused = list(partitions), set(partitions) if pause else set()

    def assignment(self) -> set[int]:
        return set(self.assigned)

    def rebalanced(self) -> set[int]:
        moved, self.moved = self.moved, set()
        return moved

    def pause(self, partitions: list[int]) -> None:
        self.paused |= set(partitions)

    def resume(self, partitions: list[int]) -> None:
        self.paused -= set(partitions)

    def commit(self, offsets: Mapping[int, int]) -> None:
        self.committed.update(offsets)

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[int, Sequence[Rec]]:
        if self.during_poll is not None:
            self.during_poll, during = None, self.during_poll
            during()
        polled = super().poll(timeout_ms, max_records)
        return {p: records for p, records in polled.items() if p not in self.paused}


class ConnectionLost(Exception):
    """The memory database's stand-in for a dropped connection."""


@dataclass
class Tables:
    """What a transaction can change: the ticket rows and the runner's bookkeeping."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[int, Cursor] = field(default_factory=dict)
    watermark: int = 0
    applied: int = 0
    ignored: int = 0
    parked: list[tuple[int, int, int | None, str]] = field(default_factory=list)  # partition, offset, position, why
    beats: int = 0


class MemoryDatabase:
    """The server: committed tables, session leases, the store's head and the relay's position.
    `fail_commit` makes the next commit lose the connection instead."""

    def __init__(self, head: int = 10**6) -> None:
        self.tables, self.head = Tables(), head
        self.locks: dict[str, MemorySession] = {}
        self.relayed: tuple[int, dict[int, int]] | None = None
        self.fail_commit = False
        self.switch_locks = 0
        self.rules_version: str | None = None  # what the tables were built with


class MemorySession:
    """A connection: leases, and one transaction at a time on a copy of the committed tables."""

    def __init__(self, db: MemoryDatabase) -> None:
        self.db, self.topic, self.closed = db, TOPIC, False
        self.open: Tables | None = None

    def _tx(self) -> Tables:
        if self.closed:
            raise ConnectionLost("the connection is closed")
        if self.open is None:
            self.open = copy.deepcopy(self.db.tables)
        return self.open

    def acquire(self, lease: str, stop: Callable[[], bool]) -> bool:
        while not stop():
            if self.try_lock(lease):
                return True
        return False

    def try_lock(self, lease: str) -> bool:
        self._tx()
        holder = self.db.locks.setdefault(lease, self)
        return holder is self

    def unlock(self, lease: str) -> None:
        if self.db.locks.get(lease) is self:
            del self.db.locks[lease]

    def switch_lock(self, name: str) -> None:
        self._tx()
        self.db.switch_locks += 1

    def cursor(self, partition: int) -> Cursor:
        found = self._tx().checkpoints.get(partition)
        return Cursor(found.offset, found.position) if found else Cursor()

    def positions(self) -> dict[int, int]:
        return {p: c.position for p, c in self._tx().checkpoints.items()}

    def store(self, cursors: Mapping[int, Cursor]) -> None:
        self._tx().checkpoints.update({p: Cursor(c.offset, c.position) for p, c in cursors.items()})

    def watermark(self) -> int:
        return self._tx().watermark

    def store_watermark(self, position: int) -> None:
        tx = self._tx()
        tx.watermark = max(tx.watermark, position)  # as PostgreSQL's: runners of a group raise it side by side

    def tally(self, applied: int, ignored: int) -> None:
        tables = self._tx()
        tables.applied, tables.ignored = tables.applied + applied, tables.ignored + ignored

    def relayed(self) -> tuple[int, dict[int, int]] | None:
        self._tx()
        return self.db.relayed

    def head(self) -> int:
        self._tx()
        return self.db.head

    def beat(self, runner: str, refused: str | None = None) -> None:
        self._tx().beats += 1

    def forget(self, contract_id: str) -> None:
        """Parked messages here keep no value."""

    def rules_version(self) -> str | None:
        self._tx()
        return self.db.rules_version

    def park(self, partition: int, record: Any, position: int | None, reason: str) -> None:
        self._tx().parked.append((partition, record.offset, position, reason))

    def view(self) -> InMemoryTicketsView:
        return InMemoryTicketsView(self._tx().rows)

    def batch(self) -> Any:
        return nullcontext()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        tx = self._tx()
        before = copy.deepcopy(tx)
        try:
            yield
        except BaseException:
            self.open = before
            raise

    def commit(self) -> None:
        tx = self._tx()
        if self.db.fail_commit:
            self.db.fail_commit = False
            self.close()
            raise ConnectionLost("connection lost at commit")
        self.db.tables, self.open = tx, None

    def rollback(self) -> None:
        self.open = None

    def is_fault(self, exc: BaseException) -> bool:
        return self.closed or isinstance(exc, ConnectionLost)

    def close(self) -> None:
        """The connection ends: its transaction is lost, its leases are free."""
        self.closed, self.open = True, None
        for lease in [name for name, holder in self.db.locks.items() if holder is self]:
            del self.db.locks[lease]


class Ticking(TicketsProjection):
    """The ticket list, counting its ticks (its own tick does nothing)."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self, now: datetime, view: Any) -> None:
        self.ticks += 1


@dataclass
class CountingOutbox:
    published: int = 0

    def publish(self) -> int:
        self.published += 1
        return 0

    def close(self) -> None:
        pass


def event(position: int, type_: str, ticket: str, **data: Any) -> Envelope:
    return Envelope(position, type_, ticket, 1, "c-1", T0, T0, data)


def opened(position: int, ticket: str) -> Envelope:
    return event(position, "Ticket.Opened", ticket, title="x", reporter="ana", channel="portal",
                 priority="P2", category=None)


def timed(position: int, ticket: str, minutes: Any) -> Envelope:
    return event(position, "Ticket.TimeConsumed", ticket, minutes=minutes, kind="work", engineer=None)


DECODED: list[int] = []  # the positions decoded, for a test to see what was dropped unread


def decode(value: bytes, headers: list[tuple[str, bytes]] | None) -> Envelope:
    env = pickle.loads(value)
    DECODED.append(env.position)
    assert isinstance(env, Envelope)
    return env


def publish(topic: ListTopic, partition: int, *envs: Envelope) -> None:
    for env in envs:
        topic.append(partition, pickle.dumps(env), env.position)


def runner_of(topic: ListTopic, db: MemoryDatabase, projection: TicketsProjection | None = None,
              outbox: CountingOutbox | None = None, **options: Any) -> Runner:
    return Runner(projection or TicketsProjection(), topic, lambda: MemorySession(db), decode, position_of,
                  outbox=outbox, clock=lambda: T0, lease="tickets", beat_every=0.0, **options)


def drain(runner: Runner) -> None:
    """Step until a poll brings nothing."""
    while runner.step() is not None:
        pass


def two_tickets(topic: ListTopic) -> None:
    """t-1 on partition 0 (positions 1, 3, 5), t-2 on partition 1 (2, 4)."""
    publish(topic, 0, opened(1, "t-1"), timed(3, "t-1", 10), timed(5, "t-1", 20))
    publish(topic, 1, opened(2, "t-2"), timed(4, "t-2", 7))


def minutes(db: MemoryDatabase) -> dict[str, int]:
    return {t: row["minutes"] for t, row in db.tables.rows.items()}


def test_each_event_is_applied_once_though_the_topic_delivers_it_again() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    two_tickets(topic)
    publish(topic, 0, timed(3, "t-1", 10), timed(5, "t-1", 20))  # the relay published them again
    runner = runner_of(topic, db)
    assert runner.resume()
    DECODED.clear()
    result = runner.step()
    assert result is not None and (result.applied, result.ignored, result.parked) == (5, 2, 0)
    assert sorted(DECODED) == [1, 2, 3, 4, 5], "a redelivery is dropped unread, by its header's position"
    assert minutes(db) == {"t-1": 30, "t-2": 7}
    runner.close()
    topic.place = {}  # a restarted runner's consumer knows nothing; its checkpoints do
    again = runner_of(topic, db)
    assert again.resume()
    assert sorted(topic.seeks[-2:]) == [(0, 5), (1, 2)], "each partition is read on after its checkpoint"
    publish(topic, 1, timed(4, "t-2", 7), timed(6, "t-2", 1))
    drain(again)
    assert minutes(db) == {"t-1": 30, "t-2": 8}
    assert (db.tables.applied, db.tables.ignored) == (6, 3), "each event counted once: redeliveries as ignored"


def test_a_checkpoint_the_topic_no_longer_holds_is_read_again_from_the_start_applying_nothing_twice() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    two_tickets(topic)
    runner = runner_of(topic, db)
    runner.resume()
    drain(runner)
    runner.close()
    fresh = ListTopic()  # the broker lost its history; the relay published it all again
    two_tickets(fresh)
    fresh.held[0] = fresh.held[0][:2]  # but not yet the last of partition 0
    again = runner_of(fresh, db)
    again.resume()
    assert sorted(fresh.seeks) == [(0, None), (1, 2)]
    drain(again)
    assert minutes(db) == {"t-1": 30, "t-2": 7}


def test_a_poison_message_is_parked_and_the_rest_of_its_batch_applied() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    two_tickets(topic)
    publish(topic, 0, timed(6, "t-1", "lots"))  # fails in the fold: applied, it raises
    topic.append(1, b"not a pickle", 7)  # fails to decode
    publish(topic, 1, timed(8, "t-2", 3))
    runner = runner_of(topic, db)
    runner.resume()
    result = runner.step()
    assert result is not None and (result.applied, result.parked) == (6, 2)
    assert minutes(db) == {"t-1": 30, "t-2": 10}
    (p1, o1, pos1, why1), (p2, o2, pos2, why2) = sorted(db.tables.parked)
    assert (p1, o1, pos1) == (0, 3, 6) and why1.startswith("apply failed")
    assert (p2, o2, pos2) == (1, 2, 7) and why2.startswith("undecodable")
    assert db.tables.checkpoints == {0: Cursor(3, 6), 1: Cursor(3, 8)}, "a parked message counts as consumed"


def test_a_message_beyond_the_stores_head_is_parked_and_moves_no_cursor() -> None:
    topic, db = ListTopic(), MemoryDatabase(head=5)
    two_tickets(topic)
    publish(topic, 1, timed(9, "t-2", 100))  # claims a position the store never reached
    runner = runner_of(topic, db)
    runner.resume()
    drain(runner)
    assert minutes(db) == {"t-1": 30, "t-2": 7}
    [(partition, offset, position, why)] = db.tables.parked
    assert (partition, offset, position) == (1, 2, 9) and "beyond the store's head 5" in why
    assert db.tables.checkpoints[1] == Cursor(2, 4) and db.tables.watermark == 4


def test_the_cursors_and_the_watermark_advance_with_each_batch_and_the_relays_position_when_idle() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    publish(topic, 0, opened(1, "t-1"))
    runner = runner_of(topic, db)
    runner.resume()
    runner.step()
    assert db.tables.checkpoints == {0: Cursor(0, 1)}
    assert db.tables.watermark == 0, "partition 1 has consumed nothing yet"
    publish(topic, 1, opened(2, "t-2"))
    publish(topic, 0, timed(3, "t-1", 5))
    runner.step()
    assert db.tables.checkpoints == {0: Cursor(1, 3), 1: Cursor(0, 2)}
    assert db.tables.watermark == runner.watermark == 2, "the least position every partition has consumed"
    db.relayed = (4, {0: 3, 1: 4})  # position 4 was relayed to partition 1 but has not come
    assert runner.step() is None and db.tables.watermark == 2
    publish(topic, 1, timed(4, "t-2", 1))
    runner.step()
    assert db.tables.watermark == 3
    assert runner.step() is None and db.tables.watermark == 4, "idle, past all the relay published"


def test_a_batch_whose_commit_fails_writes_nothing_and_the_topic_is_read_again_after_the_last_checkpoint() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    publish(topic, 0, opened(1, "t-1"))
    publish(topic, 1, opened(2, "t-2"))
    runner = runner_of(topic, db)
    runner.resume()
    runner.step()
    committed = copy.deepcopy(db.tables)
    publish(topic, 0, timed(3, "t-1", 10))
    publish(topic, 1, timed(4, "t-2", 7))
    db.fail_commit = True
    with pytest.raises(ConnectionLost):
        runner.step()
    assert db.tables == committed, "rows, checkpoints and watermark: none of the batch"
    assert sorted(topic.seeks[-2:]) == [(0, 1), (1, 1)] and runner.cursors == committed.checkpoints
    runner.run(stop=lambda: db.tables.checkpoints[1].position == 4)  # a new session, after a backoff
    assert minutes(db) == {"t-1": 10, "t-2": 7} and db.tables.checkpoints == {0: Cursor(1, 3), 1: Cursor(1, 4)}
    assert (db.tables.applied, db.tables.ignored) == (4, 0), "the counts commit with their batch: none twice"


def test_a_session_that_lost_its_connection_writes_nothing_and_its_leases_are_free() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    two_tickets(topic)
    runner = runner_of(topic, db)
    runner.resume()
    assert runner.session is not None
    runner.session.close()  # the server ended the connection
    with pytest.raises(ConnectionLost):
        runner.step()
    assert db.tables == Tables() and db.locks == {}


def test_a_second_runner_waits_as_a_standby_until_the_first_ones_leases_are_free() -> None:
    topic, db = ListTopic(), MemoryDatabase()
    two_tickets(topic)
    first, second = runner_of(topic, db), runner_of(ListTopic(), db)
    first.resume()
    tries = iter([False] * 5 + [True]).__next__
    assert not second.resume(tries), "it gave up waiting when stopped"
    first.close()
    assert second.resume()
    assert set(db.locks) == {"apply:tickets:0", "apply:tickets:1"}


def test_only_the_holder_of_the_tick_lease_ticks_and_publishes_the_outbox_until_it_is_gone() -> None:
    topic, elsewhere, db = ListTopic(), ListTopic(), MemoryDatabase()
    two_tickets(topic)
    elsewhere.held = topic.held  # another process's consumer of the same topic
    left, right = Ticking(), Ticking()
    left_outbox, right_outbox = CountingOutbox(), CountingOutbox()
    one = runner_of(topic, db, left, left_outbox, partitions=[0])
    other = runner_of(elsewhere, db, right, right_outbox, partitions=[1])
    one.resume()
    other.resume()
    for _ in range(3):
        one.step()
        other.step()
    assert left.ticks == 3 and right.ticks == 0
    assert left_outbox.published > 0 and right_outbox.published == 0
    assert db.tables.beats == 6, "both beat"
    one.close()
    other.step()
    assert right.ticks == 1 and right_outbox.published > 0 and "tick:tickets" in db.locks


def member(topic: GroupTopic, db: MemoryDatabase, **options: Any) -> Runner:
    runner = runner_of(topic, db, group=True, claim_every=0.0, **options)
    assert runner.resume()
    return runner


def three_tickets(topic: ListTopic) -> None:
    two_tickets(topic)
    publish(topic, 1, opened(6, "t-3"), timed(7, "t-3", 4), timed(8, "t-2", 2))


def test_in_a_group_a_runner_applies_only_what_the_group_assigns_it_and_whose_lease_it_holds() -> None:
    one, db = GroupTopic(), MemoryDatabase()
    other = GroupTopic(one.held)
    two_tickets(one)
    first, second = member(one, db), member(other, db)
    one.rebalance([0, 1])  # the first member alone
    drain(first)
    assert minutes(db) == {"t-1": 30, "t-2": 7}
    publish(one, 1, opened(6, "t-3"), timed(7, "t-3", 4))
    one.rebalance([0])  # the second joins: partition 1 moves to it
    other.rebalance([1])
    assert second.step() is None, "the first one still holds partition 1's lease: it waits"
    assert 1 in other.paused and second.cursors == {}
    assert first.step() is None and set(first.cursors) == {0} and "apply:tickets:1" not in db.locks
    drain(second)
    assert set(second.cursors) == {1} and (1, 2) in other.seeks, "on after partition 1's checkpoint"
    publish(one, 0, timed(9, "t-1", 1))
    publish(one, 1, timed(10, "t-2", 2))
    drain(first)
    drain(second)
    assert minutes(db) == {"t-1": 31, "t-2": 9, "t-3": 4}
    assert (db.tables.applied, db.tables.ignored) == (9, 0), "each event applied once, none twice"
    assert (one.committed[0], other.committed[1]) == (4, 5), "the group is told the next offsets, for its lag"


def test_a_partition_moved_during_a_poll_is_read_again_from_its_checkpoint_not_where_the_broker_put_it() -> None:
    topic, db = GroupTopic(), MemoryDatabase()
    two_tickets(topic)
    runner = member(topic, db)
    topic.rebalance([0, 1])
    drain(runner)
    publish(topic, 1, opened(6, "t-3"), timed(7, "t-3", 4), timed(8, "t-2", 2))  # offsets 2, 3, 4
    topic.reset_to = 4  # a policy that would skip offsets 2 and 3
    topic.during_poll = lambda: topic.rebalance([0, 1], pause=False)  # revoked and assigned again, mid-poll
    assert runner.step() is None, "what came of the moved partitions is dropped"
    assert runner.cursors == {}, "their leases released"
    drain(runner)
    assert (1, 2) in topic.seeks[-2:], "taken again, and read on after the checkpoint"
    assert minutes(db) == {"t-1": 30, "t-2": 9, "t-3": 4}
    assert db.tables.checkpoints == {0: Cursor(2, 5), 1: Cursor(4, 8)}


def test_in_a_group_the_watermark_is_the_least_position_over_every_partitions_checkpoint() -> None:
    one, db = GroupTopic(), MemoryDatabase()
    other = GroupTopic(one.held)
    two_tickets(one)
    first, second = member(one, db), member(other, db)
    one.rebalance([0])
    other.rebalance([1])
    drain(first)
    assert db.tables.checkpoints == {0: Cursor(2, 5)} and db.tables.watermark == 0, "partition 1: nothing yet"
    drain(second)
    assert db.tables.watermark == 4, "min(5, 4): the other runner's checkpoint counts"
    publish(one, 0, timed(9, "t-1", 1))
    drain(first)
    assert db.tables.watermark == 4, "partition 1 is still at 4"
    db.relayed = (9, {0: 9, 1: 4})
    assert first.step() is None and db.tables.watermark == 9, "idle, every partition past what was relayed to it"


def test_a_group_member_that_lost_its_session_takes_its_partitions_again_from_their_checkpoints() -> None:
    topic, db = GroupTopic(), MemoryDatabase()
    three_tickets(topic)
    runner = member(topic, db)
    topic.rebalance([0, 1])
    drain(runner)
    assert runner.session is not None
    runner.session.close()
    publish(topic, 1, timed(9, "t-3", 1))
    runner.run(stop=lambda: db.tables.checkpoints[1].position == 9)
    assert minutes(db) == {"t-1": 30, "t-2": 9, "t-3": 5}
    assert set(db.locks) >= {"apply:tickets:0", "apply:tickets:1"}


def test_a_runner_refuses_to_write_into_tables_built_with_other_rules_until_they_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("consumers.runner.REFUSED_WAIT", 0.0)
    topic, db, outbox = ListTopic(), MemoryDatabase(), CountingOutbox()
    publish(topic, 0, opened(1, "t-1"))
    projection = Ticking()
    runner = runner_of(topic, db, projection, outbox, rules_version="2026.12.3")
    assert runner.resume()
    drain(runner)
    assert minutes(db) == {"t-1": 0} and runner.refused is None  # tables set up, not rebuilt: it writes
    db.rules_version = "2026.12.4"  # switched to tables of newer rules while it ran
    publish(topic, 1, opened(2, "t-2"))
    ticks, published = projection.ticks, outbox.published
    for _ in range(3):
        assert runner.step() is None
    assert runner.refused is not None and "2026.12.4" in runner.refused and "2026.12.3" in runner.refused
    assert set(db.tables.rows) == {"t-1"} and 1 not in db.tables.checkpoints, "nothing of the batch is kept"
    assert (projection.ticks, outbox.published) == (ticks, published), "no tick, nothing published"
    db.rules_version = "2026.12.3"  # rebuilt for its rules again
    drain(runner)
    assert set(db.tables.rows) == {"t-1", "t-2"} and runner.refused is None
    runner.close()


def test_a_caught_up_runner_waits_for_the_doorbell_and_one_behind_the_relay_polls_again_at_once() -> None:
    topic, db, bell = ListTopic(partitions=1), MemoryDatabase(), RecordingBell()
    runner = runner_of(topic, db, doorbell=bell, idle_wait=0.7)
    runner.resume()
    publish(topic, 0, opened(1, "t-1"))
    assert runner.step() is not None and bell.waits == [], "a batch came: no waiting"
    db.relayed = (2, {0: 2})  # the relay published position 2, which the poll has not brought yet
    assert runner.step() is None and bell.waits == [], "behind the relay: poll again at once"
    publish(topic, 0, timed(2, "t-1", 5))
    runner.step()
    assert runner.step() is None and bell.waits == [0.7], "caught up: wait for the relay's news"
    assert db.tables.watermark == 2


def test_a_busy_runner_starts_a_batch_at_most_once_per_pace_unless_the_last_one_was_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("consumers.runner.time.sleep", slept.append)
    topic, db = ListTopic(partitions=1), MemoryDatabase()
    runner = runner_of(topic, db, pace=0.5, max_records=2)
    runner.resume()
    publish(topic, 0, opened(1, "t-1"), timed(2, "t-1", 5), timed(3, "t-1", 5))
    runner.step()  # 2 of 3: a full batch
    runner.step()  # the third at once
    assert slept == [] and db.tables.checkpoints[0].position == 3
    publish(topic, 0, timed(4, "t-1", 5))
    runner.step()  # after a batch of one, the next poll waits out the pace
    assert len(slept) == 1 and 0 < slept[0] <= 0.5
    assert db.tables.checkpoints[0].position == 4


def test_in_a_group_an_idle_runner_keeps_polling_the_broker_instead_of_waiting_on_the_bell() -> None:
    topic, db, bell = GroupTopic(), MemoryDatabase(), RecordingBell()
    runner = member(topic, db, doorbell=bell)
    topic.rebalance([0, 1])
    two_tickets(topic)
    drain(runner)
    assert runner.step() is None and minutes(db) == {"t-1": 30, "t-2": 7}
    assert bell.waits == [], "the group's joins and syncs move only while it polls"
