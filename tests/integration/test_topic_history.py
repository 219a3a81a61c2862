"""The events topic read from its start for a rebuild (`--from kafka`, infra/kafka/history.py):
across partitions, with repeats and a message nobody can decode, it gives each event of the
store once, in store order, as the store gives it."""

from __future__ import annotations

import dataclasses

from kafka import KafkaProducer

from infra.kafka import history
from infra.kafka.publisher import partition_for
from infra.postgres.store import ApplicationHost
from infra.settings import Settings
from projections.envelope import Envelope
from tests.integration.helpers import make_relay, message, relay_until, unique, write_tickets


def published(store: ApplicationHost, upto: int) -> list[Envelope]:
    out: list[Envelope] = []
    while page := store.recorder.select_notifications(start=(out[-1].position + 1) if out else 1, limit=5000,
                                                     stop=upto):
        out.extend(store.published(page))
    return out


def test_the_topic_read_from_its_start_gives_each_event_once_in_store_order_across_partitions(
    servers: Settings, store: ApplicationHost
) -> None:
    settings = dataclasses.replace(servers, partitions=3)
    for _ in range(4):
        write_tickets(store, 3)
    topic, head = unique("history"), store.head()
    relay = make_relay(settings, store, topic)
    relay.check_topic()
    relay_until(relay, head)
    last = {int(p): int(counts[1]) for p, counts in relay.state.partitions.items()}
    relay.close()
    assert len(last) > 1, "the contracts spread over several partitions"
    expected = published(store, head)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for env in expected[-7:]:  # published again (the relay is at-least-once), and one garbled message
        key, value, headers = message(env)
        producer.send(topic, key=key, value=value, headers=headers, partition=partition_for(key, 3))
    key, value, headers = message(expected[-1], garbled=True)
    producer.send(topic, key=key, value=value, headers=headers, partition=partition_for(key, 3))
    producer.flush()
    producer.close()

    assert history.read(settings.kafka_bootstrap or "", topic, 0, head, last) == expected
    middle = expected[len(expected) // 2].position
    upto = expected[-3].position
    assert history.read(settings.kafka_bootstrap or "", topic, middle, upto, last) == [
        e for e in expected if middle < e.position <= upto]
