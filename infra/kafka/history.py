"""The events topic read from its start, for a rebuild that reads the topic instead of the store
(`ticketing rebuild P --from kafka`): every partition assigned by hand (no consumer group, so
no rebalance wait), read from offset 0, each message decoded into its envelope.

Where to stop is told by the relay (what it stored as acknowledged), not by the broker's end
offsets, which some brokers (Tansu) report short: a partition is read until it yields a
position at or beyond the last one the relay published into it up to `upto`, or one beyond
`upto`. A topic that holds less than the relay acknowledged (a broker that lost its memory
and has not been fed again yet) is an error, not a short rebuild. The relay is at-least-once,
so positions may repeat: each is kept once, and the whole is given in store order. A message
that does not decode is skipped and logged (the live runner parks it as a dead letter).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog
from kafka import KafkaConsumer, TopicPartition

from infra.kafka.avro import Codec, DecodeError
from projections.envelope import Envelope

log = structlog.get_logger("rebuild")
IDLE = 5.0  # seconds without a message before a partition that has not reached its target is an error


class TopicShort(Exception):
    """The topic holds less than the relay acknowledged (it was emptied and is being fed again)."""


def read(bootstrap: str, topic: str, after: int, upto: int, last_published: Mapping[int, int],
         seen: Callable[[int], None] = lambda _: None) -> list[Envelope]:
    """The envelopes with positions in (after, upto], in store order, each once. `last_published`
    is the relay's last position per partition; `seen` is called with each position read."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    codec, found = Codec(), dict[int, Envelope]()
    try:
        partitions = _partitions(consumer, topic)
        targets = {p: min(last_published.get(p, 0), upto) for p in partitions}
        pending = {p for p in partitions if targets[p] > after}  # a partition's positions grow: none wanted there
        if not pending:
            return []
        consumer.assign([TopicPartition(topic, p) for p in pending])
        for p in pending:
            consumer.seek(TopicPartition(topic, p), 0)
        quiet_since = time.monotonic()
        while pending:
            polled = consumer.poll(timeout_ms=200, max_records=5000)
            if not polled:
                if time.monotonic() - quiet_since > IDLE:
                    raise TopicShort(f"{topic} holds less than the relay acknowledged (partitions {sorted(pending)})")
                continue
            quiet_since = time.monotonic()
            for tp, records in polled.items():
                for record in records:
                    try:
                        env = codec.decode(record.value, record.headers)
                    except DecodeError as poison:  # the live runner parks it: so does the rebuild, in the log
                        log.warning("undecodable message skipped", topic=topic, partition=tp.partition,
                                    offset=record.offset, reason=str(poison))
                        continue
                    if after < env.position <= upto:
                        found.setdefault(env.position, env)
                    seen(env.position)
                    if env.position >= targets[tp.partition]:
                        pending.discard(tp.partition)
                if tp.partition not in pending:
                    consumer.pause(tp)
    finally:
        consumer.close()
    return [found[p] for p in sorted(found)]


def _partitions(consumer: KafkaConsumer, topic: str, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        time.sleep(0.2)
    raise TopicShort(f"topic {topic} did not appear within {timeout} s")
