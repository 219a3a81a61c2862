"""The relay: the event store's notification log, in order, to the events topic.

It encodes each event with its own Avro schema and publishes it with key = contract id (so a
contract's own and its tickets' events stay in order on one partition). It stores its new
position only over the events whose sends the broker acknowledged, up to the first that
failed; after a crash or a failed send it publishes again (at-least-once), and consumers
drop repeats by position. It never skips an event and never exits because of one: an event
it cannot encode, too large, refused, or a broker that is away blocks it there; it retries
with exponential backoff, keeps beating, and records why in `relay.position` (`blocked_*`,
read by GET /health). One relay per topic: it holds the topic's lease and writes its
position only while it holds it; a second relay is a standby. A broken connection is
reopened, the lease taken again, the position reloaded. A topic holding fewer messages than
were acknowledged lost its history (the embedded broker keeps nothing across restarts): the
relay then publishes again from the start of the store.

The logic here works against ports (consumers/ports.py): the notification log, a
`RelayLog` for lease and position, a `Publisher` for the broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from consumers.backoff import Backoff
from consumers.ports import (
    Blocked,
    BrokerUnavailable,
    Doorbell,
    Message,
    Notifications,
    Publisher,
    RelayLog,
    RelayState,
)
from projections.envelope import Envelope, from_domain_event

Encoder = Callable[[Envelope], tuple[bytes, list[tuple[str, bytes]]]]
log = structlog.get_logger("relay")


class Relay:
    """Moves events from the store to Kafka; one active instance per topic."""

    def __init__(
        self, notifications: Notifications, mapper: Any, encode: Encoder, relay_log: RelayLog,
        publisher: Publisher, topic: str, partitions: int = 1, batch_size: int = 2000, idle_sleep: float = 0.02,
        backoff: Backoff | None = None, faults: tuple[type[BaseException], ...] = (),
        reveal: Callable[[list[Envelope]], list[Envelope]] = lambda envelopes: envelopes,
        doorbell: Doorbell | None = None, idle_wait: float = 0.5, pace: float = 0.0,
    ) -> None:
        self.notifications, self.mapper, self.encode = notifications, mapper, encode
        self.reveal = reveal  # opens the personal fields the store keeps sealed ("" once erased)
        self.log, self.publisher = relay_log, publisher
        self.topic, self.batch_size, self.idle_sleep = topic, batch_size, idle_sleep
        self.partitions, self.backoff, self.faults = partitions, backoff or Backoff(), faults
        self.state: RelayState = RelayState()
        self.blocked: Blocked | None = None
        self.topic_checked, self.retry_at, self.last_beat, self.failures = False, 0.0, 0.0, 0
        # Idle, wait for the store's doorbell (at most `idle_wait`), else sleep `idle_sleep`;
        # busy, start a batch that is not full at most every `pace` seconds, so that a steady
        # stream of commands goes out in batches instead of a round of work per commit.
        self.doorbell, self.idle_wait, self.pace = doorbell, idle_wait, pace
        self.paced_until = 0.0

    # -- lease and position -----------------------------------------------------------------

    def take_lease(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Hold the topic's lease (waiting as a standby while another relay does), then load the
        position it stored and what blocked the previous holder (tried again at once): False
        only if stopped while waiting."""
        if self.log.held:
            return True
        if not self.log.acquire(stop):
            return False
        self.topic_checked = False
        self.state, self.blocked = self.log.load()
        self.retry_at = 0.0
        log.info("relay holds the topic", topic=self.topic, position=self.state.position)
        return True

    def _store(self, state: RelayState, blocked: Blocked | None) -> None:
        self.log.store(state, blocked)
        self.state, self.blocked = state, blocked

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last_beat >= 1.0:
            self.last_beat = now
            self.log.beat()

    # -- topic ------------------------------------------------------------------------------

    def check_topic(self) -> None:
        """Start again from the store's beginning if the topic lost what we published."""
        self.take_lease()
        self.publisher.ensure_topic(self.topic, self.partitions)
        lost = [p for p, (count, _) in self.state.partitions.items()
                if not self.publisher.holds(self.topic, int(p), count - 1)]
        if lost:
            log.warning(
                "topic lost its history; republishing from the start of the store",
                topic=self.topic, partitions=lost, published=self.state.published,
                position=self.state.position,
            )
            self._store(RelayState(), self.blocked)
        self.topic_checked = True

    # -- work -------------------------------------------------------------------------------

    def step(self) -> int:
        """Publish the next batch up to the first event that cannot go out; return how many went out."""
        try:
            if not self.topic_checked:
                self.check_topic()
        except BrokerUnavailable as exc:
            return self._advance(0, [], Blocked(self.state.position + 1, str(exc)))
        notifications = self.notifications.select_notifications(start=self.state.position + 1, limit=self.batch_size)
        if not notifications:
            return self._advance(0, [], None) if self.blocked else 0
        # Still ours? A relay whose lease connection died may have a successor by now: it
        # must not publish beside it (one round trip per batch).
        self.log.confirm()
        try:
            count = self.publisher.partitions(self.topic)
        except BrokerUnavailable as exc:
            return self._advance(0, [], Blocked(notifications[0].id, str(exc)))
        started = time.perf_counter()
        messages, failure = self._messages(notifications, count)
        outcome = self.publisher.publish(self.topic, messages, self.beat)
        if outcome.reason is not None:
            failure = Blocked(notifications[outcome.acknowledged].id, outcome.reason)
        moved = self._advance(outcome.acknowledged, list(zip(notifications, messages, strict=False)), failure)
        if moved:
            log.info("relayed", topic=self.topic, events=moved, position=self.state.position,
                     ms=round((time.perf_counter() - started) * 1000, 1))
        return moved

    def _messages(self, notifications: Sequence[Any], partitions: int) -> tuple[list[Message], Blocked | None]:
        """The batch's messages, up to the first event that cannot be encoded."""
        messages: list[Message] = []
        envelopes: list[Envelope] = []
        failure: Blocked | None = None
        for n in notifications:
            try:
                envelopes.append(from_domain_event(self.mapper.to_domain_event(n), n.id))
            except Exception as exc:  # noqa: BLE001 - whatever the store holds that we cannot decode blocks here
                failure = Blocked(n.id, f"cannot encode: {exc!r}", broker=False)
                break
        for n, env in zip(notifications, self.reveal(envelopes), strict=False):
            try:
                value, headers = self.encode(env)
            except Exception as exc:  # noqa: BLE001 - whatever the store holds that we cannot encode blocks here
                return messages, Blocked(n.id, f"cannot encode: {exc!r}", broker=False)
            key = env.contract_id.encode()
            messages.append(Message(key, value, headers, self.publisher.partition_of(key, partitions)))
        return messages, failure

    def _advance(self, done: int, sent: Sequence[tuple[Any, Message]], failure: Blocked | None) -> int:
        """Store the position over the first `done` events sent and what blocks the next one, if anything."""
        partitions = {p: list(v) for p, v in self.state.partitions.items()}
        for n, message in sent[:done]:
            counts = partitions.setdefault(str(message.partition), [0, 0])
            counts[0], counts[1] = counts[0] + 1, n.id
        state = RelayState(sent[done - 1][0].id, self.state.published + done, partitions) if done else self.state
        if failure is not None and self.blocked is not None and self.blocked.position == failure.position:
            failure.attempts = self.blocked.attempts + 1
        self._store(state, failure)
        if failure is not None:
            self._blocked(failure)
        return done

    def _blocked(self, failure: Blocked) -> None:
        """Schedule the next attempt; a broker-side failure gets a new producer and a topic check."""
        wait = self.backoff.delay(failure.attempts)
        self.retry_at = time.monotonic() + wait
        log.warning("relay blocked on an event; retrying", topic=self.topic, position=failure.position,
                    reason=failure.reason, attempt=failure.attempts, retry_in=wait)
        if failure.broker:
            self.publisher.reset()
            self.topic_checked = False

    # -- process ----------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Relay until stopped; no fault of the database, the broker or an event ends it."""
        while not stop():
            try:
                self._turn(stop)
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - the process's top-level loop: nothing may end it
                self.failures += 1
                self._pause(exc, stop)

    def _turn(self, stop: Callable[[], bool]) -> None:
        if not self.take_lease(stop):
            return
        if self.blocked is None or time.monotonic() >= self.retry_at:
            if (early := self.paced_until - time.monotonic()) > 0:
                time.sleep(early)
            started = time.monotonic()
            moved = self.step()
            if moved == 0 and self.blocked is None:
                self._wait()
            elif 0 < moved < self.batch_size:
                self.paced_until = started + self.pace
        else:
            time.sleep(min(0.2, max(0.0, self.retry_at - time.monotonic())))
        self.beat()

    def _wait(self) -> None:
        """Nothing new in the store: wait until it tells of news, or sleep."""
        if self.doorbell is None:
            time.sleep(self.idle_sleep)
        else:
            self.doorbell.wait(self.idle_wait)

    def _pause(self, exc: Exception, stop: Callable[[], bool]) -> None:
        """Drop the connection (and the lease with it) and the producer, then wait before starting over."""
        wait, expected = self.backoff.delay(self.failures), isinstance(exc, self.faults)
        log.warning("database fault; reconnecting" if expected else "unexpected fault; starting over",
                    topic=self.topic, error=repr(exc), retry_in=wait, exc_info=not expected)
        self.log.release()
        self.publisher.reset()
        deadline = time.monotonic() + wait
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self.publisher.close()
        self.log.release()
        if self.doorbell is not None:
            self.doorbell.close()
