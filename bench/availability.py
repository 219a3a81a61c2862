"""Availability projection throughput when rebuilding from 100,000 ticket events: the same
envelopes (tickets opened as system-down or not, restored, resolved, their events spread
over the stream as in real life) applied through the in-memory view and through the
PostgreSQL view, one transaction per 5,000 events; prints and returns events/s for each.
PostgreSQL is DATABASE_URL if set, else an embedded server in a temporary directory.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.stats import summary
from infra import postgres
from infra.postgres.views.availability import SQL_FILES, PgAvailabilityView
from infra.process import embedded
from infra.process.catalog import load_catalog
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope

EVENTS = 100_000
BATCH = 5_000
CONTRACTS = 50
SCHEMA = "bench_availability"
START = datetime(2026, 1, 1, tzinfo=UTC)


def contracts() -> list[Envelope]:
    terms = load_catalog()["datacrm/standard"].to_dict()
    data = {"customer": "bench", "plan_id": "datacrm/standard", "terms": terms,
            "starts_on": "2026-01-01", "time_zone": "America/Bogota", "holidays": []}
    return [Envelope(n + 1, "Contract.Signed", f"c{n}", 1, f"c{n}", START, START, data)
            for n in range(CONTRACTS)]


def tickets(count: int = EVENTS, seed: int = 5) -> list[Envelope]:
    """`count` ticket events: 40 % of tickets system-down (opened, restored, resolved), the
    rest opened and resolved; each ticket's later events come a few thousand events later."""
    rng = random.Random(seed)
    position, clock = CONTRACTS, START
    pending: list[tuple[str, str, list[str]]] = []
    out: list[Envelope] = []
    serial = 0
    while len(out) < count:
        clock += timedelta(seconds=rng.randint(1, 90))
        position += 1
        if pending and (rng.random() < 0.55 or len(pending) > 3000):
            tid, cid, steps = pending.pop(rng.randrange(len(pending)))
            kind = steps.pop(0)
            data: dict[str, Any] = {} if kind == "Restored" else {"reason": None}
            out.append(Envelope(position, f"Ticket.{kind}", tid, 2, cid, clock, clock, data))
            if steps:
                pending.append((tid, cid, steps))
            continue
        serial += 1
        tid, cid, down = f"t{serial}", f"c{rng.randrange(CONTRACTS)}", rng.random() < 0.4
        data = {"title": "x", "reporter": "r", "channel": "portal", "priority": None,
                "category": "system-down" if down else "incident", "down_since": None}
        out.append(Envelope(position, "Ticket.Opened", tid, 1, cid, clock, clock, data))
        pending.append((tid, cid, ["Restored", "Resolved"] if down else ["Resolved"]))
    return out


def in_memory(envs: list[Envelope]) -> tuple[float, InMemoryAvailabilityView]:
    projection, view = AvailabilityProjection(), InMemoryAvailabilityView()
    started = time.perf_counter()
    for env in envs:
        projection.apply(env, view)
    return time.perf_counter() - started, view


def in_postgres(url: str, envs: list[Envelope]) -> tuple[float, int]:
    projection = AvailabilityProjection()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        for name in ("outbox", *SQL_FILES):
            postgres.execute_file(conn, name, SCHEMA)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for i in range(0, len(envs), BATCH):
            with conn.pipeline():  # as the runner applies a batch
                view = PgAvailabilityView(conn, SCHEMA)
                for env in envs[i:i + BATCH]:
                    projection.apply(env, view)
                view.flush()
            conn.commit()
        elapsed = time.perf_counter() - started
        row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.availability_outages").fetchone()
    return elapsed, int(row[0]) if row else 0


def run() -> dict[str, Any]:
    head, body = contracts(), tickets()
    envs = head + body
    memory_s, view = in_memory(envs)
    expected = sum(len(t.segments()) for t in view.tickets.values())
    data_dir = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        data_dir = Path(tempfile.mkdtemp(prefix="bench-availability-"))
        url = embedded.start_postgres(data_dir)
    try:
        pg_s, outages = in_postgres(url, envs)
    finally:
        if data_dir is not None:
            embedded.stop_postgres(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)
    assert outages == expected, f"PostgreSQL kept {outages} outages, the reference {expected}"
    memory_rate = round(len(envs) / memory_s)
    print(f"availability projection, {len(body):,} ticket events: in-memory view {memory_rate:,} events/s,"
          f" PostgreSQL view {round(len(envs) / pg_s):,} events/s ({BATCH:,} per transaction)")
    return summary("availability projection, PostgreSQL view", len(envs), pg_s,
                   batch=BATCH, memory_events_per_s=memory_rate, outages=outages)


if __name__ == "__main__":
    run()
