"""The events topic as a projection runner reads it (`consumers.ports.MessageSource`), on
kafka-python: partitions assigned by hand, or by a consumer group; no offsets committed to the
broker either way (the runner keeps its checkpoints in PostgreSQL, in the transaction of its
rows, and seeks after them itself; in a group it also commits them to the broker after each
batch, for the broker's lag monitoring only).

In a group, kafka-python runs the rebalance listener on its IO thread, while the runner may be
in the middle of a batch: the listener only notes which partitions moved (and pauses those
newly assigned, so nothing is fetched before the runner seeks them); the runner, between two
polls, releases and takes the partitions' leases (consumers/runner.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition

# A fetch answers as soon as anything is there, else after 20 ms: an idle runner does not poll
# but waits for the relay's doorbell (infra/postgres/doorbell.py), and a busy one gathers its
# batches by pacing itself (consumers/runner.py), so a fetch is never left waiting long (a
# fetch in flight would hold back the next one a ring asks for).
CONSUMER = {"enable_auto_commit": False, "fetch_max_wait_ms": 20, "fetch_min_bytes": 1}




class KafkaSource:
    """One consumer on one topic; the records of a poll keep kafka-python's own type (they
    have `offset`, `value` and `headers`), so a batch costs no copying. With `group` (a group
    id, and `timeouts`: kafka-python's `max_poll_interval_ms`, `session_timeout_ms`,
    `heartbeat_interval_ms`) it may join that consumer group (`subscribe`)."""

    def __init__(self, bootstrap: str, topic: str, max_records: int = 5000, group: str | None = None,
                 timeouts: Mapping[str, int] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        # A partition the group assigns starts where the broker's policy says until the runner
        # seeks it: at the earliest offset, so that even a record read before the seek could
        # only be one the runner drops as already consumed, never one past an event unread.
        grouped = {"group_id": group, "auto_offset_reset": "earliest", **(timeouts or {})} if group else {}
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=max_records,
                                      max_partition_fetch_bytes=8 * 1024 * 1024, **CONSUMER, **grouped)
        self.tps: dict[int, TopicPartition] = {}
        self.moved: set[int] = set()
        self.lock = threading.Lock()

    def _tp(self, partition: int) -> TopicPartition:
        tp = self.tps.get(partition)
        if tp is None:
            tp = self.tps[partition] = TopicPartition(self.topic, partition)
        return tp

    def wait_for_topic(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.consumer.partitions_for_topic(self.topic)
            if found:
                return sorted(found)
            time.sleep(0.2)
        raise RuntimeError(f"topic {self.topic} did not appear within {timeout}s")

    def assign(self, partitions: list[int]) -> None:
        self.consumer.assign([self._tp(p) for p in partitions])

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], listener=_Listener(self))

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic}

    def rebalanced(self) -> set[int]:
        with self.lock:
            moved, self.moved = self.moved, set()
        return moved

    def _moved(self, tps: Any, assigned: bool) -> None:
        """On the IO thread: note the partitions; pause those assigned until the runner seeks them."""
        mine = [tp for tp in tps if tp.topic == self.topic]
        if assigned:
            self.consumer.pause(*mine)
        with self.lock:
            self.moved |= {tp.partition for tp in mine}

    def commit(self, offsets: Mapping[int, int]) -> None:
        self.consumer.commit_async({self._tp(p): OffsetAndMetadata(offset, "", -1) for p, offset in offsets.items()})

    def pause(self, partitions: list[int]) -> None:
        self.consumer.pause(*(self._tp(p) for p in partitions))

    def resume(self, partitions: list[int]) -> None:
        self.consumer.resume(*(self._tp(p) for p in partitions))

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[int, Sequence[Any]]:
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return {tp.partition: records for tp, records in polled.items()}

    def seek(self, partition: int, offset: int) -> None:
        self.consumer.seek(self._tp(partition), offset)

    def seek_to_beginning(self, partition: int) -> None:
        self.consumer.seek_to_beginning(self._tp(partition))

    def record_at(self, partition: int, offset: int) -> Any | None:
        """Fetched by a consumer of its own, so that the runner's position stays where it is."""
        probe = KafkaConsumer(bootstrap_servers=self.bootstrap, **CONSUMER)
        try:
            tp = self._tp(partition)
            probe.assign([tp])
            probe.seek(tp, offset)
            for _ in range(20):
                for record in probe.poll(timeout_ms=100, max_records=1).get(tp, []):
                    return record if record.offset == offset else None
            return None
        finally:
            probe.close()

    def close(self) -> None:
        self.consumer.close()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """A consumer group's rebalances, told to the source (on kafka-python's IO thread)."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.source._moved(revoked, assigned=False)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.source._moved(assigned, assigned=True)
