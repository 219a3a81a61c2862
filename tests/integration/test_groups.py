"""Runners as consumer groups: on a topic of six partitions, three runner processes per
projection (the ticket list and the ledger) share the partitions in their group on the
embedded broker (with short group timeouts); one of each is SIGKILLed mid-stream, the others
take over its partitions, and the read models equal what one runner builds cleanly from the
same topic, and the ticket list what the store gives: nothing applied twice, nothing skipped."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from infra.postgres.rebuild import BOOKKEEPING
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from tests.integration.helpers import (
    checkpoint,
    clean_rebuild,
    drive,
    eventually,
    lease_holder,
    read_model,
    relay_from_here,
    stream_ticket,
    unique,
)

PARTITIONS, MEMBERS = 6, ("a", "b", "c")
CONTRACTS, TICKETS = 36, 8  # 288 tickets, 2,016 events, keyed by 36 contracts over 6 partitions
SHORT = {"group_poll_interval_ms": 4000, "group_session_timeout_ms": 6000, "group_heartbeat_ms": 1000}


def start(settings: Settings, name: str, schema: str, topic: str, member: str) -> subprocess.Popen[bytes]:
    """A runner of `name` in its consumer group, its database sessions named `member`."""
    env = settings.child_env() | {"PGAPPNAME": member, "TICKETING_JSON_LOGS": "1"}
    log = open(settings.data_dir / f"{member}-{schema}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.runner_process", name, schema, topic, "group"],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def holders(url: str, name: str, schema: str) -> dict[int, str | None]:
    """Which member holds each partition's lease."""
    return {p: lease_holder(url, f"apply:{name}@{schema}:{p}") for p in range(PARTITIONS)}


def write(store: ApplicationHost, contracts: range, contract_ids: list[str], pause: float = 0.0) -> None:
    for c in contracts:
        cid = store.app.sign_contract(f"Group {c} Ltd", "crm-experts/platinum", "2026-01-01").aggregate_id
        contract_ids.append(str(cid))
        store.app.save(*(stream_ticket(store, cid, c * TICKETS + i) for i in range(TICKETS)))
        time.sleep(pause)


def tables(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table of the schema (not the runner's bookkeeping), rows sorted."""
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)).fetchall()]
        return {t: sorted(conn.execute(f"SELECT * FROM {schema}.{t}").fetchall(), key=repr)
                for t in sorted(names) if t not in BOOKKEEPING}


def one_value(url: str, query: str, *args: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, args).fetchone()
    return row[0] if row else None


def committed(settings: Settings, group: str, topic: str) -> dict[int, int | None]:
    """The offsets the group committed to the broker (for its lag monitoring), per partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        consumer.close()


def clean_run(settings: Settings, name: str, topic: str, head: int) -> str:
    """One runner on every partition, from the topic's start, into a schema of its own."""
    url = settings.database_url or ""
    schema = unique(f"clean_{name}")
    wiring.create_tables(url, name, schema)
    runner = wiring.runner(settings, name, schema, topic)
    try:
        assert runner.resume()
        drive(runner.step, lambda: checkpoint(url, schema, topic) >= head, timeout=60)
    finally:
        runner.close()
    return schema


def test_three_runners_of_a_group_share_six_partitions_and_one_killed_mid_stream_applies_nothing_twice(
    servers: Settings, store: ApplicationHost
) -> None:
    settings = replace(servers, partitions=PARTITIONS, **SHORT)
    url, topic = settings.database_url or "", unique("events")
    schemas = {name: unique(f"group_{name}") for name in ("tickets", "ledger")}
    for name, schema in schemas.items():
        wiring.create_tables(url, name, schema)
    relay = relay_from_here(settings, store, topic, batch=200)
    relaying = threading.Event()
    relayer = threading.Thread(target=relay.run, args=(relaying.is_set,))
    relayer.start()
    runners = {(name, m): start(settings, name, schema, topic, f"{name}-{m}")
               for name, schema in schemas.items() for m in MEMBERS}
    contract_ids: list[str] = []
    try:
        write(store, range(CONTRACTS // 3), contract_ids)
        for name, schema in schemas.items():  # the group has settled: each member applies some partitions
            eventually(lambda n=name, s=schema: set(holders(url, n, s).values()) == {f"{n}-{m}" for m in MEMBERS},
                       timeout=60, alive=lambda: all(r.poll() is None for r in runners.values()))
        writer = threading.Thread(target=write, args=(store, range(CONTRACTS // 3, CONTRACTS), contract_ids, 0.1))
        writer.start()
        time.sleep(1.0)
        killed = {name: [p for p, held in holders(url, name, schema).items() if held == f"{name}-b"]
                  for name, schema in schemas.items()}
        for name in schemas:
            runners.pop((name, "b")).send_signal(signal.SIGKILL)
        writer.join()
        head = store.head()
        for name, schema in schemas.items():  # wait_for's watermark: every partition has consumed up to the head
            eventually(lambda s=schema: checkpoint(url, s, topic) >= head, timeout=90,
                       alive=lambda: all(r.poll() is None for r in runners.values()))
            survivors = holders(url, name, schema)
            assert killed[name], "the killed runner applied partitions"
            assert {survivors[p] for p in killed[name]} <= {f"{name}-a", f"{name}-c"}, "the others took them over"
    finally:
        for proc in runners.values():
            proc.send_signal(signal.SIGTERM)
        for proc in runners.values():
            proc.wait(30)
        relaying.set()
        relayer.join()
        relay.close()

    for name, schema in schemas.items():
        assert one_value(url, f"SELECT count(*) FROM {schema}.dead_letter") == 0
        with psycopg.connect(url) as conn:
            offsets = dict(conn.execute(f"SELECT partition, kafka_offset FROM {schema}.checkpoint").fetchall())
        broker = committed(settings, f"{topic}.{name}@{schema}", topic)
        assert all(broker[p] is not None and 0 < broker[p] <= offsets[p] + 1 for p in range(PARTITIONS)), \
            "the broker sees the group's offsets, never ahead of the checkpoints"
        assert tables(url, schema) == tables(url, clean_run(settings, name, topic, head)), name
    built = read_model(url, schemas["tickets"])
    clean = {k: v for k, v in clean_rebuild(store, upto=head).items() if v["contract_id"] in contract_ids}
    assert built == clean and len(built) == CONTRACTS * TICKETS
    minutes = 35 * CONTRACTS * TICKETS  # each stream ticket records 5 + 10 + 20 minutes
    assert sum(row["minutes"] for row in built.values()) == minutes
    assert one_value(url, f"SELECT sum(minutes) FROM {schemas['ledger']}.tickets") == minutes
