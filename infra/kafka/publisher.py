"""The broker as publishers use it (`consumers.ports.Publisher`), on kafka-python.

Flushing is no acknowledgement: each send's future says whether its message was taken, and
only the run of sends from the first that all succeeded counts. Waits are bounded, so that a
caller's heartbeat keeps beating while the broker is away. Idempotence keeps each
partition's batches in order across the producer's own retries, so an acknowledged message
never stands behind one that failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from consumers.ports import BrokerUnavailable, Message, Outcome

# Bounded waits: a caller's heartbeat (fresh for 10 s, see GET /health) keeps beating while
# the broker is away.
PRODUCER = {"acks": "all", "enable_idempotence": True, "linger_ms": 2, "max_block_ms": 4000,
            "request_timeout_ms": 4000, "delivery_timeout_ms": 8000, "reconnect_backoff_max_ms": 1000}


@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed message (murmur2), remembered per key:
    computing it in pure Python for every message costs more than encoding the message."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def acknowledged(futures: Sequence[Any]) -> tuple[int, str | None]:
    """How many of the sends, from the first, the broker acknowledged; and why the next did not go."""
    for index, future in enumerate(futures):
        if not future.succeeded():
            return index, repr(future.exception) if future.is_done else "not acknowledged in time"
    return len(futures), None


def flush(producer: KafkaProducer, timeout: float, between: Callable[[], None] = lambda: None) -> None:
    """Wait up to `timeout` for every send to complete, calling `between` about every second."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            producer.flush(timeout=1.0)
            return
        except KafkaTimeoutError:
            if time.monotonic() >= deadline:
                return  # the futures left undone count as not acknowledged
            between()


def close_quietly(producer: KafkaProducer | None) -> None:
    """Drop a producer at once: what it still holds was not acknowledged and is sent again."""
    with suppress(KafkaError):
        if producer is not None:
            producer.close(timeout=0)


class KafkaPublisher:
    """One idempotent producer, made on first use and dropped by `reset` after a failure (a
    restarted broker does not know the old producer's id)."""

    def __init__(self, bootstrap: str, ack_timeout: float = 15.0, options: dict[str, Any] | None = None) -> None:
        self.bootstrap, self.ack_timeout = bootstrap, ack_timeout
        self.options = PRODUCER | (options or {})
        self.producer: KafkaProducer | None = None

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, **self.options)
        return self.producer

    def partitions(self, topic: str) -> int:
        try:
            return len(self._producer().partitions_for(topic))
        except KafkaError as exc:  # no broker, or no metadata within max_block_ms
            raise BrokerUnavailable(f"broker: {exc!r}") from exc

    def partition_of(self, key: bytes, partitions: int) -> int:
        return partition_for(key, partitions)

    def publish(self, topic: str, messages: Sequence[Message], between: Callable[[], None]) -> Outcome:
        futures: list[Any] = []
        refused: tuple[int, str] | None = None
        try:
            producer = self._producer()
            for m in messages:
                future = producer.send(topic, key=m.key, value=m.value, headers=m.headers, partition=m.partition)
                if future.failed():
                    refused = (len(futures), f"refused: {future.exception!r}")
                    break
                futures.append(future)
        except KafkaError as exc:  # too large for the producer, or no metadata (broker down)
            refused = (len(futures), f"refused: {exc!r}")
        if self.producer is not None:
            flush(self.producer, self.ack_timeout, between)
        done, reason = acknowledged(futures)
        if reason is not None:
            return Outcome(done, f"broker: {reason}")
        return Outcome(done, refused[1] if refused else None)

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        """Asked by fetching the message: some Kafka-compatible brokers (Tansu) report end
        offsets short of what they hold."""
        try:
            probe = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker: {exc!r}") from exc
        try:
            tp = TopicPartition(topic, partition)
            probe.assign([tp])
            probe.seek(tp, offset)
            return any(probe.poll(timeout_ms=100, max_records=1).get(tp) for _ in range(20))
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker: {exc!r}") from exc
        finally:
            probe.close()

    def ensure_topic(self, topic: str, partitions: int) -> None:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker: {exc!r}") from exc
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker: {exc!r}") from exc
        finally:
            admin.close()

    def reset(self) -> None:
        close_quietly(self.producer)
        self.producer = None

    def close(self) -> None:
        self.reset()
