"""SLA: deadline computations/s of the pure calendar engine (`Calendar.add` of the seed plans'
targets, business days included, on their calendars: split shift, Saturdays, 24x7, national
holidays, DST), then SLA projection events/s when rebuilding from 100,000 ticket events of
tickets on 60 contracts of the SLA plan families (opened, classified, responded, paused and
resumed, resolved, sometimes reopened, with time entries; each ticket's events spread over the
stream as in real life): through the in-memory view, through the PostgreSQL view one
transaction per 5,000 events, and the same with the Avro decoding the runner does first.
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
from domain.sla.clock import SlaRules, business_time
from infra import postgres
from infra.kafka.avro import Codec
from infra.postgres.views.sla import SQL_FILES, PgSlaView
from infra.process import embedded
from infra.process.catalog import load_catalog
from projections.envelope import Envelope
from projections.sla import InMemorySlaView, SlaProjection

EVENTS = 100_000
BATCH = 5_000
CONTRACTS = 60
DEADLINES = 20_000
SCHEMA = "bench_sla"
START = datetime(2026, 1, 5, tzinfo=UTC)
PLANS = ("crm-experts/silver", "crm-experts/gold", "crm-experts/platinum", "bpm/basic", "bpm/business",
         "bpm/premium", "datacrm/standard", "sf-partner/silver", "sf-partner/platinum")


def deadlines(count: int = DEADLINES, seed: int = 3) -> dict[str, Any]:
    """`count` due instants: a random plan's clock target added to a random 2026 instant."""
    rng, catalog = random.Random(seed), load_catalog()
    jobs = []
    for plan in PLANS:
        rules = SlaRules.from_signed(catalog[plan].to_dict(), catalog[plan].time_zone)
        for priority in ("P1", "P2", "P3", "P4"):
            for clock in ("response", "resolution"):
                terms = rules.clock_terms(priority, "incident", clock)
                if terms.target is not None:
                    jobs.append((terms.calendar, business_time(terms.target, terms.calendar)))
    work = [(*rng.choice(jobs), START + timedelta(minutes=rng.randrange(340 * 24 * 60))) for _ in range(count)]
    latencies = []
    started = time.perf_counter()
    for cal, target, at in work:
        t0 = time.perf_counter_ns()
        cal.add(at, target)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    return summary("sla.deadlines (Calendar.add, pure)", count, time.perf_counter() - started, latencies,
                   unit="deadlines/s", targets=len(jobs))


def contracts() -> list[Envelope]:
    catalog, out = load_catalog(), []
    for n in range(CONTRACTS):
        plan = PLANS[n % len(PLANS)]
        data = {"customer": "bench", "plan_id": plan, "terms": catalog[plan].to_dict(), "starts_on": "2026-01-01",
                "time_zone": catalog[plan].time_zone, "holidays": ["2026-12-24"]}
        out.append(Envelope(n + 1, "Contract.Signed", f"c{n}", 1, f"c{n}", START, START, data))
    return out


def _steps(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = []
    if rng.random() < 0.5:
        steps.append(("Classified", {"priority": rng.choice(["P1", "P2", "P3", "P4"]), "category": None}))
    steps.append(("Responded", {}))
    steps += [("TimeConsumed", {"minutes": rng.randint(5, 90), "kind": "work", "engineer": None})] * rng.randint(0, 2)
    if rng.random() < 0.4:
        steps += [("Paused", {"reason": None}), ("Resumed", {})]
    steps.append(("Resolved", {"reason": None}))
    if rng.random() < 0.15:
        steps += [("Reopened", {"reason": None}), ("Resolved", {"reason": None})]
    return steps


def tickets(count: int = EVENTS, seed: int = 7) -> list[Envelope]:
    """`count` ticket events; each ticket's next event comes a few thousand events later."""
    rng = random.Random(seed)
    position, clock, serial = CONTRACTS, START, 0
    pending: list[tuple[str, str, int, list[tuple[str, dict[str, Any]]]]] = []
    out: list[Envelope] = []
    while len(out) < count:
        clock += timedelta(seconds=rng.randint(1, 60))
        position += 1
        if pending and (rng.random() < 0.8 or len(pending) > 3000):
            tid, cid, version, steps = pending.pop(rng.randrange(len(pending)))
            kind, data = steps.pop(0)
            out.append(Envelope(position, f"Ticket.{kind}", tid, version, cid, clock, clock, data))
            if steps:
                pending.append((tid, cid, version + 1, steps))
            continue
        serial += 1
        tid, cid = f"t{serial}", f"c{rng.randrange(CONTRACTS)}"
        data = {"title": "x", "reporter": "r", "channel": "portal", "down_since": None,
                "priority": rng.choice([None, "P1", "P2", "P3", "P4"]), "category": rng.choice([None, "incident"])}
        out.append(Envelope(position, "Ticket.Opened", tid, 1, cid, clock, clock, data))
        pending.append((tid, cid, 2, _steps(rng)))
    return out


def in_memory(envs: list[Envelope]) -> tuple[dict[str, Any], InMemorySlaView]:
    projection, view = SlaProjection(), InMemorySlaView()
    latencies = []
    started = time.perf_counter()
    for env in envs:
        t0 = time.perf_counter_ns()
        projection.apply(env, view)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    row = summary("sla.projection in-memory view", len(envs), time.perf_counter() - started, latencies)
    return row, view


def _schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        for name in ("outbox", *SQL_FILES):
            postgres.execute_file(conn, name, SCHEMA)


def in_postgres(url: str, envs: list[Envelope], decode: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Batches of 5,000 (decoded from Avro first if asked), one transaction each."""
    _schema(url)
    codec = Codec()
    messages = [codec.encode(env) for env in envs] if decode else []
    projection, latencies = SlaProjection(), []
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for i in range(0, len(envs), BATCH):
            t0 = time.perf_counter_ns()
            view = PgSlaView(conn, SCHEMA)
            batch = [codec.decode(v, h) for v, h in messages[i:i + BATCH]] if decode else envs[i:i + BATCH]
            for env in batch:
                projection.apply(env, view)
            view.flush()
            conn.commit()
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - started
        rows = conn.execute(f"SELECT ticket_id, response_due_at, resolution_due_at FROM {SCHEMA}.sla_tickets").fetchall()
    name = "sla.projection postgres view" + (" + avro decode" if decode else "")
    row = summary(name, len(envs), elapsed, latencies, batch=BATCH, latency="per batch")
    return row, {t: (r, s) for t, r, s in rows}


def run() -> list[dict[str, Any]]:
    rows = [deadlines()]
    envs = contracts() + tickets()
    memory_row, view = in_memory(envs)
    rows.append(memory_row)
    expected = {t: (r.derived.response.due_at, r.derived.resolution.due_at)
                for t, r in view.tickets.items() if r.derived is not None}
    data_dir, url = None, os.environ.get("DATABASE_URL")
    if not url:
        data_dir = Path(tempfile.mkdtemp(prefix="bench-sla-"))
        url = embedded.start_postgres(data_dir)
    try:
        for decode in (False, True):
            row, stored = in_postgres(url, envs, decode)
            assert stored == expected, "the PostgreSQL view disagrees with the in-memory one"
            rows.append(row)
    finally:
        if data_dir is not None:
            embedded.stop_postgres(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    run()
