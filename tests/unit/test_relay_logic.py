"""The relay's and the outbox publisher's logic, driven from lists: the ports (consumers/ports.py)
are played by a broker that keeps messages in lists and refuses what a test tells it to, and
a relay log in memory. The store is the library's in-memory one, so the events are real."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from consumers.backoff import Backoff
from consumers.outbox import OutboxPublisher
from consumers.ports import Blocked, BrokerUnavailable, Message, Outcome, RelayState
from consumers.relay import Relay
from domain.application import TicketingApplication
from domain.wallclock import FixedClock
from infra.process.catalog import load_catalog
from tests.unit.bells import RecordingBell

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOPIC = "events"


class ListBroker:
    """Topics as lists of messages per partition; `refuse(n)` refuses the n-th send from now on
    (counting from 0), `away` makes it unreachable, `forget()` loses what it held."""

    def __init__(self, partitions: int = 2) -> None:
        self.count = partitions
        self.topics: dict[str, list[list[Message]]] = {}
        self.refusing: int | None = None
        self.away = False
        self.resets = 0

    def partitions(self, topic: str) -> int:
        if self.away:
            raise BrokerUnavailable("broker: away")
        return self.count

    def partition_of(self, key: bytes, partitions: int) -> int:
        return sum(key) % partitions

    def publish(self, topic: str, messages: Sequence[Message], between: Callable[[], None]) -> Outcome:
        if self.away:
            return Outcome(0, "broker: away")
        held = self.topics.setdefault(topic, [[] for _ in range(self.count)])
        for index, m in enumerate(messages):
            if self.refusing is not None and self.refusing == index:
                return Outcome(index, "refused: too large")
            held[m.partition or 0].append(m)
        return Outcome(len(messages))

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        return 0 <= offset < len(self.topics.get(topic, [[]] * self.count)[partition])

    def ensure_topic(self, topic: str, partitions: int) -> None:
        if self.away:
            raise BrokerUnavailable("broker: away")
        self.topics.setdefault(topic, [[] for _ in range(self.count)])

    def forget(self) -> None:
        self.topics.clear()

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass

    def positions(self, topic: str = TOPIC) -> list[int]:
        """The store positions published, in the order of each partition, partitions in turn."""
        return [int(dict(m.headers)["ticketing-position"]) for p in self.topics.get(topic, []) for m in p]


class MemoryRelayLog:
    def __init__(self) -> None:
        self.held, self.state, self.blocked, self.beats = False, RelayState(), None, 0

    def acquire(self, stop: Callable[[], bool]) -> bool:
        self.held = True
        return True

    def load(self) -> tuple[RelayState, Blocked | None]:
        return RelayState(self.state.position, self.state.published,
                          {p: list(v) for p, v in self.state.partitions.items()}), self.blocked

    def store(self, state: RelayState, blocked: Blocked | None) -> None:
        self.state, self.blocked = state, blocked

    def confirm(self) -> None:
        assert self.held

    def beat(self) -> None:
        self.beats += 1

    def release(self) -> None:
        self.held = False


def encode(env) -> tuple[bytes, list[tuple[str, bytes]]]:
    if env.type == "Ticket.Cancelled":
        raise ValueError("this test's encoder cannot carry a cancellation")
    return env.type.encode(), [("ticketing-position", str(env.position).encode())]


@pytest.fixture
def app() -> TicketingApplication:
    return TicketingApplication(load_catalog(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                                clock=FixedClock(NOW), usage=lambda cid: [])


def history(app: TicketingApplication, tickets: int = 3) -> int:
    """Contracts with tickets; the last position."""
    for _ in range(2):
        cid = app.sign_contract("Acme", "crm-experts/gold", "2026-01-01", at="2026-01-01T00:00:00Z").aggregate_id
        for _ in range(tickets):
            app.open_ticket(cid, "t", "r")
    return app.recorder.max_notification_id() or 0


def relay_of(app: TicketingApplication, broker: ListBroker, log: MemoryRelayLog, batch: int = 4) -> Relay:
    return Relay(app.recorder, app.mapper, encode, log, broker, TOPIC, partitions=2, batch_size=batch,
                 backoff=Backoff(first=0.0))


def drain(relay: Relay) -> None:
    relay.take_lease()
    while relay.step():
        pass


def test_the_relay_publishes_every_event_once_in_store_order_per_contract(app: TicketingApplication) -> None:
    head = history(app)
    broker, log = ListBroker(), MemoryRelayLog()
    drain(relay_of(app, broker, log))
    assert sorted(broker.positions()) == list(range(1, head + 1))
    for partition in broker.topics[TOPIC]:
        positions = [int(dict(m.headers)["ticketing-position"]) for m in partition]
        assert positions == sorted(positions)
    assert log.state.position == head and log.state.published == head
    assert sum(count for count, _ in log.state.partitions.values()) == head


def test_a_refused_event_blocks_the_relay_there_and_later_ones_wait_for_it(app: TicketingApplication) -> None:
    history(app)
    broker, log = ListBroker(), MemoryRelayLog()
    broker.refusing = 2
    relay = relay_of(app, broker, log)
    relay.take_lease()
    assert relay.step() == 2
    assert log.state.position == 2 and log.blocked is not None
    assert (log.blocked.position, log.blocked.reason) == (3, "refused: too large")
    assert relay.step() == 2  # refused again at the third of the next batch: position 5
    assert log.blocked is not None and log.blocked.position == 5
    assert broker.resets == 2, "a broker-side failure drops the producer"


def test_an_event_that_cannot_be_encoded_blocks_without_dropping_the_producer(app: TicketingApplication) -> None:
    history(app, tickets=1)
    tid = app.open_ticket(app.recorder.select_notifications(1, 1)[0].originator_id, "t", "r").aggregate_id
    app.cancel_ticket(tid)
    head = app.recorder.max_notification_id()
    broker, log = ListBroker(), MemoryRelayLog()
    relay = relay_of(app, broker, log, batch=100)
    drain(relay)
    assert log.blocked is not None and log.blocked.position == head
    assert log.blocked.reason.startswith("cannot encode") and not log.blocked.broker
    assert log.state.position == head - 1 and broker.resets == 0
    attempts = log.blocked.attempts
    assert relay.step() == 0
    assert log.blocked.attempts == attempts + 1, "the same event blocks again, one attempt more"


def test_a_broker_that_is_away_blocks_and_the_relay_catches_up_when_it_is_back(app: TicketingApplication) -> None:
    head = history(app)
    broker, log = ListBroker(), MemoryRelayLog()
    broker.away = True
    relay = relay_of(app, broker, log)
    relay.take_lease()
    assert relay.step() == 0
    assert log.blocked is not None and log.blocked.reason == "broker: away" and log.state.position == 0
    broker.away = False
    drain(relay)
    assert log.blocked is None and sorted(broker.positions()) == list(range(1, head + 1))


def test_a_restarted_relay_does_not_publish_again_what_the_topic_still_holds(app: TicketingApplication) -> None:
    head = history(app)
    broker, log = ListBroker(), MemoryRelayLog()
    drain(relay_of(app, broker, log))
    log.release()
    drain(relay_of(app, broker, log))
    assert sorted(broker.positions()) == list(range(1, head + 1))


def test_a_topic_that_lost_its_history_is_published_again_from_the_start(app: TicketingApplication) -> None:
    head = history(app)
    broker, log = ListBroker(), MemoryRelayLog()
    drain(relay_of(app, broker, log))
    broker.forget()
    log.release()
    drain(relay_of(app, broker, log))
    assert sorted(broker.positions()) == list(range(1, head + 1))
    assert log.state.published == head


class ListOutbox:
    def __init__(self, rows: list[tuple[int, str, str, str, bytes, dict[str, str]]]) -> None:
        self.rows, self.marked = rows, []  # type: list[int]

    def pending(self, limit: int) -> list[tuple[int, str, str, str, bytes, dict[str, str]]]:
        return [r for r in self.rows if r[0] not in self.marked][:limit]

    def mark(self, ids: list[int]) -> None:
        self.marked += ids

    def close(self) -> None:
        pass


def test_the_outbox_marks_only_what_the_broker_took_in_order_across_topics() -> None:
    rows = [(1, "n1", "a", "k", b"x", {}), (2, "n2", "a", "k", b"x", {}), (3, "n3", "b", "k", b"x", {}),
            (4, "n4", "b", "k", b"x", {}), (5, "n5", "a", "k", b"x", {})]
    outbox, broker = ListOutbox(rows), ListBroker(partitions=1)
    broker.refusing = 1  # the second message of a publish
    publisher = OutboxPublisher(outbox, broker, "test", backoff=Backoff(first=0.0))
    assert publisher.publish() == 1 and outbox.marked == [1]
    assert publisher.publish() == 2 and outbox.marked == [1, 2, 3]  # n2 alone on "a", then n3 of "b"
    broker.refusing = None
    assert publisher.publish() == 2 and outbox.marked == [1, 2, 3, 4, 5]
    ids = [dict(m.headers)["ticketing-notice-id"] for t in ("a", "b") for m in broker.topics[t][0]]
    assert ids == [b"n1", b"n2", b"n5", b"n3", b"n4"]


def test_an_idle_relay_waits_for_the_stores_doorbell_and_a_busy_one_paces_batches_that_are_not_full(
        app: TicketingApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("consumers.relay.time.sleep", slept.append)
    last = history(app, tickets=3)  # 8 events: batches of 4, 4
    broker, bell = ListBroker(), RecordingBell()
    relay = Relay(app.recorder, app.mapper, encode, MemoryRelayLog(), broker, TOPIC, partitions=2, batch_size=4,
                  doorbell=bell, idle_wait=0.7, pace=0.5)
    relay._turn(lambda: False)
    relay._turn(lambda: False)
    assert relay.state.position == last and slept == [] and bell.waits == [], "full batches go out back to back"
    relay._turn(lambda: False)
    assert bell.waits == [0.7] and slept == [], "nothing new: wait for the store's news"
    app.open_ticket(app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id, "t", "r")
    relay._turn(lambda: False)  # a batch of 2: the next one waits out the pace
    app.open_ticket(app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id, "t", "r")
    relay._turn(lambda: False)
    assert len(slept) == 1 and 0 < slept[0] <= 0.5
    assert sorted(broker.positions()) == list(range(1, last + 5)), "every event out once"
