"""The relay: the event store's notification log, in order, to the events topic.

It reads from its stored position, encodes each event with its own Avro schema, publishes
with key = contract id (so a contract's own and its tickets' events stay in order on one
partition), waits for the broker's acknowledgement of the whole batch, and only then stores
the new position. It is at-least-once: after a crash it may publish a batch again, which
consumers drop by position. A topic that holds fewer messages than the relay has had
acknowledged lost its history (the embedded broker keeps nothing across restarts): the
relay then publishes again from the start of the store.
"""

from __future__ import annotations

import time
from functools import lru_cache
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from projections.envelope import Envelope, from_domain_event

@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed message (murmur2), remembered per contract:
    computing it in pure Python for every message costs more than encoding the message."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


Encoder = Callable[[Envelope], tuple[bytes, list[tuple[str, bytes]]]]
log = structlog.get_logger("relay")


@dataclass
class RelayState:
    """The last store position acknowledged, how many messages were acknowledged in all, and
    per partition how many and the last store position it holds (what runners compare with)."""

    position: int = 0
    published: int = 0
    partitions: dict[str, list[int]] = field(default_factory=dict)


class Relay:
    """Moves events from the store to Kafka; one instance per topic."""

    def __init__(
        self,
        recorder: Any,
        mapper: Any,
        encode: Encoder,
        db_url: str,
        bootstrap: str,
        topic: str,
        partitions: int = 1,
        batch_size: int = 2000,
        idle_sleep: float = 0.02,
    ) -> None:
        self.recorder, self.mapper, self.encode = recorder, mapper, encode
        self.topic, self.batch_size, self.idle_sleep = topic, batch_size, idle_sleep
        self.db = psycopg.connect(db_url, autocommit=True)
        self.bootstrap, self.partitions = bootstrap, partitions
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            batch_size=256 * 1024,
            max_in_flight_requests_per_connection=5,
        )
        self.state = self._load_state()
        self.last_beat = 0.0

    # -- position ---------------------------------------------------------------------------

    def _load_state(self) -> RelayState:
        row = self.db.execute(
            "SELECT position, published, partitions FROM relay.position WHERE topic = %s", (self.topic,)
        ).fetchone()
        return RelayState(*row) if row else RelayState()

    def _store_state(self) -> None:
        self.db.execute(
            "INSERT INTO relay.position (topic, position, published, partitions) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position,"
            " published = EXCLUDED.published, partitions = EXCLUDED.partitions, updated_at = now()",
            (self.topic, self.state.position, self.state.published, Jsonb(self.state.partitions)),
        )

    def _holds(self, partition: int, offset: int) -> bool:
        """Whether the topic still has a message at this offset. Asked by fetching it: some
        Kafka-compatible brokers (Tansu) report end offsets short of what they hold."""
        probe = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
        try:
            tp = TopicPartition(self.topic, partition)
            probe.assign([tp])
            probe.seek(tp, offset)
            for _ in range(20):
                if probe.poll(timeout_ms=100, max_records=1).get(tp):
                    return True
            return False
        finally:
            probe.close()

    def ensure_topic(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(self.topic, self.partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def check_topic(self) -> None:
        """Start again from the store's beginning if the topic lost what we published."""
        self.ensure_topic()
        lost = [p for p, (count, _) in self.state.partitions.items() if not self._holds(int(p), count - 1)]
        if lost:
            log.warning(
                "topic lost its history; republishing from the start of the store",
                topic=self.topic, partitions=lost, published=self.state.published,
                position=self.state.position,
            )
            self.state = RelayState()
            self._store_state()

    # -- work -------------------------------------------------------------------------------

    def step(self) -> int:
        """Publish the next batch; return how many events went out."""
        notifications = self.recorder.select_notifications(
            start=self.state.position + 1, limit=self.batch_size
        )
        if not notifications:
            return 0
        started = time.perf_counter()
        count = len(self.producer.partitions_for(self.topic))
        partitions = {p: list(v) for p, v in self.state.partitions.items()}
        for n in notifications:
            env = from_domain_event(self.mapper.to_domain_event(n), n.id)
            value, headers = self.encode(env)
            key = env.contract_id.encode()
            partition = partition_for(key, count)
            self.producer.send(self.topic, key=key, value=value, headers=headers, partition=partition)
            sent = partitions.setdefault(str(partition), [0, 0])
            sent[0], sent[1] = sent[0] + 1, n.id
        self.producer.flush()  # raises if the broker did not acknowledge
        self.state = RelayState(notifications[-1].id, self.state.published + len(notifications), partitions)
        self._store_state()
        log.info(
            "relayed", topic=self.topic, events=len(notifications), position=self.state.position,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return len(notifications)

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last_beat >= 1.0:
            self.last_beat = now
            self.db.execute(
                "INSERT INTO relay.heartbeat (topic, beat_at) VALUES (%s, now())"
                " ON CONFLICT (topic) DO UPDATE SET beat_at = now()", (self.topic,),
            )

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        self.check_topic()
        log.info("relay started", topic=self.topic, position=self.state.position)
        while not stop():
            if self.step() == 0:
                time.sleep(self.idle_sleep)
            self.beat()

    def close(self) -> None:
        self.producer.close()
        self.db.close()
