"""The pipeline's benchmarks, on the embedded PostgreSQL and broker of a fresh data dir.

Workloads (stated so the figures can be compared run to run):
- http: 16 concurrent clients send 4,000 ticket commands over HTTP (open, respond, time,
  pause, resume, classify, in a cycle) on 16 contracts; per-request latency; again with
  idempotency keys; both again with the relay and the runners stopped (then the time they
  take to catch up); each beside the same load on a bare no-op FastAPI app
  (bench/commands.py) measured just before and just after it.
- relay: 30,000 events already in the store, relayed by a fresh relay to a fresh topic.
- consumer: the ticket-list projection consumes those 30,000 events from the topic's start.
- rebuild: the ticket-list projection rebuilt straight from the store (30,000+ events).
- e2e: time entries paced at 200/s for 10 s (16 senders, open loop); latency from a
  command's answer until the ticket list has consumed its position (`wait_for`, which polls
  every 2 to 10 ms).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import commands
from bench.stats import summary
from domain.ticket import Ticket
from infra.postgres import rebuild
from infra.postgres.store import ApplicationHost
from infra.process import embedded, wiring
from infra.settings import Settings
from tests.processes import Processes

CLIENTS = 16
COMMANDS = 4000


def fill_store(store: ApplicationHost, events: int) -> None:
    app = store.app
    cid = app.sign_contract("Bulk Ltd", "crm-experts/platinum", "2026-01-01").aggregate_id
    batch: list[Ticket] = []
    for i in range(events // 6):
        now = app.clock.now()
        t = Ticket(cid, f"bulk {i}", "ops", "portal", "P3", None, None, now)
        t.respond(now)
        t.consume_time(15, "work", None, now)
        t.pause(None, now)
        t.resume(now)
        t.resolve(None, now)
        batch.append(t)
        if len(batch) == 20:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)


def relay_and_consumer(settings: Settings, store: ApplicationHost) -> list[dict[str, Any]]:
    url = settings.database_url or ""
    fill_store(store, 30000)
    head = store.head()
    topic, schema = f"bench_events_{uuid.uuid4().hex[:6]}", f"bench_tickets_{uuid.uuid4().hex[:6]}"
    wiring.create_tables(url, "tickets", schema)
    relay = wiring.relay(settings, store, topic)
    relay.check_topic()
    started = time.perf_counter()
    while relay.state.position < head:
        relay.step()
    rows = [summary("relay store -> Kafka", head, time.perf_counter() - started)]
    relay.close()
    runner = wiring.runner(settings, "tickets", schema, topic)
    runner.resume()
    started = time.perf_counter()
    while runner.watermark < head:
        runner.step()
    rows.append(summary("consumer Kafka -> ticket list", head, time.perf_counter() - started))
    runner.close()
    return rows


def rebuilds(settings: Settings, store: ApplicationHost) -> list[dict[str, Any]]:
    """Each projection rebuilt straight from the store (everything the benchmarks wrote)."""
    rows = []
    for name, spec in wiring.PROJECTIONS.items():
        report = rebuild.rebuild(spec, store, settings.database_url or "", settings.events_topic,
                                 settings.partitions, show_progress=False)
        rows.append(summary(f"rebuild {name} from the store", report.events, report.seconds))
        rebuild.drop_old(settings.database_url or "", spec)
    return rows


def end_to_end(base: str, rate: int = 200, seconds: int = 10) -> dict[str, Any]:
    """Open loop: a command every 1/rate s on 16 tickets, whoever is free sends it; each
    sender then waits on the ticket list for that command's position."""
    with httpx.Client(base_url=base, timeout=30) as c:
        cid = c.post("/contracts", json={"customer": "e2e", "plan": "crm-experts/gold",
                                         "starts_on": "2026-01-01"}).json()["contract_id"]
        tids = [c.post("/tickets", json={"contract_id": cid, "title": "e2e", "reporter": "b"}).json()["ticket_id"]
                for _ in range(16)]
    latencies: list[float] = []
    lock = threading.Lock()
    total = rate * seconds
    started = time.perf_counter()

    def sender(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(k, total, 16):
                if (pause := started + i / rate - time.perf_counter()) > 0:
                    time.sleep(pause)
                tid = tids[k]
                position = client.post(f"/tickets/{tid}/time", json={"minutes": 1, "kind": "work"}).json()["position"]
                answered = time.perf_counter()
                assert client.get(f"/tickets/{tid}", params={"wait_for": position}).status_code == 200
                with lock:
                    latencies.append((time.perf_counter() - answered) * 1000)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(f"end-to-end, commands paced at {rate}/s", len(latencies), time.perf_counter() - started,
                   latencies, unit="commands/s")


@contextlib.contextmanager
def consumers_stopped(procs: Processes, store: ApplicationHost, url: str) -> Iterator[None]:
    """Stop the relay and the runners for the span of the `with`; then start them again and
    print how long they take to bring every projection up to the store's head."""
    stopped = [name for name in procs.names if name != "api"]
    for name in stopped:
        procs.kill(name, signal.SIGTERM)
    try:
        yield
    finally:
        for name in stopped:
            procs.start(name)
        head, started = store.head(), time.perf_counter()
        marks = " UNION ALL ".join(f"SELECT position FROM proj_{p}.watermark" for p in wiring.PROJECTIONS)
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                reached = [row[0] for row in conn.execute(marks).fetchall()]
                if len(reached) == len(wiring.PROJECTIONS) and min(reached) >= head:
                    break
                time.sleep(0.05)
        print(f"relay and runners caught up {head:,} positions in {time.perf_counter() - started:.1f} s",
              flush=True)


def run() -> list[dict[str, Any]]:
    data = Path(tempfile.mkdtemp(prefix="ticketing-bench-"))
    url = embedded.start_postgres(data)
    broker = embedded.start_broker(data)
    settings = Settings(data_dir=data, http_port=embedded.free_port()).with_servers(url, broker.bootstrap)
    store = wiring.event_store(settings)
    wiring.setup_database(url)
    wiring.ensure_topic(settings)
    procs = Processes(settings)
    procs.start_all()
    try:
        quiet = functools.partial(consumers_stopped, procs, store, url)
        rows = [*commands.side_by_side(procs.base_url, quiet), end_to_end(procs.base_url)]
        rows += relay_and_consumer(settings, store)
        rows += rebuilds(settings, store)
        return rows
    finally:
        procs.stop_all()
        store.close()
        broker.stop()
        embedded.stop_postgres(data)
