"""Group commit (infra/postgres/group_commit.py) on the real store: commands that arrive while
one is being appended are appended together, each hears its own answer, and one that loses a
race fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.ticket import Ticket
from infra.postgres.group_commit import GroupCommitter
from infra.postgres.recorder import Append, StaleRead, TicketingRecorder
from infra.postgres.store import ApplicationHost

OPENED = datetime(2026, 6, 1, 12, tzinfo=UTC)  # after the contracts' start; any instant would do


class Held:
    """The store's recorder, counting the commands of each transaction; its first append
    waits until `hold` more commands are waiting, so that the next batch holds them."""

    def __init__(self, recorder: TicketingRecorder, hold: int) -> None:
        self.recorder, self.hold = recorder, hold
        self.batches: list[int] = []
        self.committer: GroupCommitter | None = None
        self.entered = threading.Event()  # the first append has begun

    def append(self, appends: Sequence[Append]) -> None:
        self.entered.set()
        if not self.batches and self.committer is not None:
            deadline = time.monotonic() + 20
            while self.committer.pending.qsize() < self.hold and time.monotonic() < deadline:
                time.sleep(0.005)
        self.batches.append(len(appends))
        self.recorder.append(appends)

    def drop_stale_connections(self) -> None:
        self.recorder.drop_stale_connections()

    def committed(self, events: Sequence[object]) -> list[int] | None:
        return self.recorder.committed(events)  # type: ignore[arg-type]


def committer(store: ApplicationHost, hold: int) -> tuple[GroupCommitter, Held]:
    held = Held(store.recorder, hold)
    group = GroupCommitter(held)  # type: ignore[arg-type]
    held.committer = group
    return group, held


def new_ticket(store: ApplicationHost, cid: str) -> Append:
    """A ticket opened on `cid`, as the application's saving would hand it over."""
    ticket = Ticket(cid, "grouped", "r", "portal", None, None, None, OPENED)
    sealed, _ = store.app.keys.seal_events(ticket.collect_events())
    return Append([store.app.mapper.to_stored_event(e) for e in sealed], [UUID(cid)])


def in_order(group: GroupCommitter, held: Held, first: Append, *then: tuple[str, Append]) -> dict[str, object]:
    """`first` committed (and held), then each of `then` queued in turn behind it: what each
    command heard (its ids, or the exception)."""
    outcomes: dict[str, object] = {}

    def send(name: str, append: Append) -> None:
        try:
            outcomes[name] = group.commit(append)
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = exc

    threads = [threading.Thread(target=send, args=("first", first))]
    threads[0].start()
    assert held.entered.wait(20)  # the first is being appended (and held)
    for name, append in then:
        threads.append(threading.Thread(target=send, args=(name, append)))
        threads[-1].start()
        time.sleep(0.05)  # in this order in the queue
    for t in threads:
        t.join(30)
    return outcomes


def test_commands_waiting_behind_a_commit_are_appended_together_and_each_hears_its_own_ids(
        other: ApplicationHost) -> None:
    cid = other.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    group, held = committer(other, hold=8)
    appends = [new_ticket(other, cid) for _ in range(9)]
    head = other.head()
    with ThreadPoolExecutor(9) as pool:
        alone = pool.submit(group.commit, appends[0])
        assert held.entered.wait(20)
        waiting = [pool.submit(group.commit, append) for append in appends[1:]]
        answers = [alone.result(), *(w.result() for w in waiting)]
    assert held.batches[0] == 1 and held.batches[1] == 8  # the first alone, the 8 that waited in one
    assert sorted(ids[0] for ids in answers) == list(range(head + 1, head + 10))
    for append, ids in zip(appends, answers, strict=True):
        stored = other.recorder.committed(append.events)
        assert stored == ids  # each command's ids are its own events'


def test_a_command_that_lost_a_race_fails_alone_and_the_rest_of_its_batch_is_recorded(
        other: ApplicationHost) -> None:
    cid = other.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    group, held = committer(other, hold=3)
    recorded = new_ticket(other, cid)
    other.recorder.append([recorded])  # another writer got there first
    again = Append(recorded.events, recorded.contracts)
    first, before, after = new_ticket(other, cid), new_ticket(other, cid), new_ticket(other, cid)
    outcomes = in_order(group, held, first, ("before", before), ("again", again), ("after", after))
    assert isinstance(outcomes["again"], IntegrityError)
    for name, append in (("first", first), ("before", before), ("after", after)):
        assert outcomes[name] == other.recorder.committed(append.events) and outcomes[name]
    assert held.batches[:2] == [1, 3]  # the three tried together, then one at a time
    assert held.batches[2:] == [1, 1, 1]


def test_a_leader_that_fails_unexpectedly_answers_every_command_it_took(other: ApplicationHost) -> None:
    class Interrupted(Held):
        """Holds the first append; the next one is interrupted (past every `except Exception`)."""

        def append(self, appends: Sequence[Append]) -> None:
            if self.batches:
                raise KeyboardInterrupt
            super().append(appends)

    cid = other.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    held = Interrupted(other.recorder, hold=2)
    group = GroupCommitter(held)  # type: ignore[arg-type]
    held.committer = group
    outcomes = in_order(group, held, new_ticket(other, cid), ("one", new_ticket(other, cid)),
                        ("two", new_ticket(other, cid)))
    assert isinstance(outcomes["first"], list)
    assert isinstance(outcomes["one"], KeyboardInterrupt) and isinstance(outcomes["two"], KeyboardInterrupt)
    assert group.leading is False and group.pending.empty()


def test_a_command_that_read_what_an_earlier_command_of_its_batch_writes_is_not_recorded_on_that_read(
        other: ApplicationHost) -> None:
    cid = other.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
    tid = other.app.open_ticket(cid, "read by others", "r").aggregate_id
    ticket = other.app.ticket(tid)
    ticket.respond(ticket.last_at + timedelta(minutes=5))
    sealed, _ = other.app.keys.seal_events(ticket.collect_events())
    writes = Append([other.app.mapper.to_stored_event(e) for e in sealed], [UUID(cid)])
    reads = new_ticket(other, cid)
    reads.read = {UUID(tid): 1}  # decided on the ticket as opened, before the response
    alongside = new_ticket(other, cid)
    alongside.read = {UUID(cid): other.app.repository.get(UUID(cid)).version}  # unchanged: fine
    group, held = committer(other, hold=3)
    outcomes = in_order(group, held, new_ticket(other, cid),
                        ("writes", writes), ("alongside", alongside), ("reads", reads))
    assert isinstance(outcomes["reads"], StaleRead)
    assert other.recorder.committed(reads.events) is None
    assert outcomes["writes"] == other.recorder.committed(writes.events)
    assert outcomes["alongside"] == other.recorder.committed(alongside.events)
    assert held.batches == [1, 2, 1]  # the reader waited for the next batch, where its check failed
