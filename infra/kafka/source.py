"""The events topic as a projection runner reads it (`consumers.ports.MessageSource`), on
kafka-python: partitions assigned by hand, no consumer group and no offsets committed to the
broker (the runner keeps its checkpoints in PostgreSQL, in the transaction of its rows).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition

# A fetch waits up to 20 ms for 256 KiB: idle, a runner asks the broker about 50 times a second;
# under load it takes what came in those 20 ms as one batch (one transaction), instead of
# fetching, and committing, a few events at a time. That cut the broker's, the runners' and
# PostgreSQL's work per command enough to raise `make bench`'s command rate by about a sixth,
# for at most 20 ms more before a read model shows a command.
CONSUMER = {"enable_auto_commit": False, "fetch_max_wait_ms": 20, "fetch_min_bytes": 256 * 1024}


class KafkaSource:
    """One consumer on one topic; the records of a poll keep kafka-python's own type (they
    have `offset`, `value` and `headers`), so a batch costs no copying."""

    def __init__(self, bootstrap: str, topic: str, max_records: int = 5000) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=max_records,
                                      max_partition_fetch_bytes=8 * 1024 * 1024, **CONSUMER)
        self.tps: dict[int, TopicPartition] = {}

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
