"""Ledger projection throughput: a rebuild from 100,000 `Ticket.TimeConsumed` envelopes.

Sixty contracts (hour banks, credits, quarterly allowances) sign first; then their tickets'
time entries, spread over two years so banks run out and allowances roll over quarters, are
applied through `LedgerProjection` twice: with the in-memory view, and with the PostgreSQL
view in one transaction per 5,000 events, as the runner does. The database is DATABASE_URL
if set, else an embedded PostgreSQL in a temporary folder; the tables live in a throwaway
schema. `run()` prints and returns events per second for both.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from infra import postgres
from infra.postgres.views.ledger import SQL_FILES, PgLedgerView
from infra.process import embedded
from infra.process.catalog import load_catalog
from projections.envelope import Envelope
from projections.ledger import InMemoryLedgerView, LedgerProjection

EVENTS = 100_000
BATCH = 5_000
PLANS = {"crm-experts/gold": ("work", "query"), "dolibarr/credits": ("query", "intervention", "update"),
         "datacrm/standard": ("guidance", "work")}
START = datetime(2025, 1, 1, 12, tzinfo=UTC)


def history(events: int = EVENTS, contracts: int = 60, seed: int = 7) -> tuple[list[Envelope], list[Envelope]]:
    """The contracts' setup envelopes, and `events` time entries in store order."""
    rng, catalog, setup = random.Random(seed), load_catalog(), []
    plans = list(PLANS)
    cids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(contracts)]
    for i, cid in enumerate(cids):
        plan = plans[i % len(plans)]
        terms = catalog[plan].to_dict()
        setup.append(Envelope(len(setup) + 1, "Contract.Signed", cid, 1, cid, START, START, {
            "customer": f"c{i}", "plan_id": plan, "terms": terms, "starts_on": "2025-01-01",
            "time_zone": terms["time_zone"], "holidays": []}))
        if plan == "dolibarr/credits":
            setup.append(Envelope(len(setup) + 1, "Contract.CreditsAdded", cid, 2, cid, START, START,
                                  {"credits": 50_000}))
    tickets = [(cids[i % contracts], str(uuid.UUID(int=rng.getrandbits(128)))) for i in range(contracts * 30)]
    entries, step = [], timedelta(days=730) / events
    for n in range(events):
        cid, tid = rng.choice(tickets)
        plan = plans[cids.index(cid) % len(plans)]
        at = START + step * n
        entries.append(Envelope(len(setup) + n + 1, "Ticket.TimeConsumed", tid, 2, cid, at, at, {
            "contract_id": cid, "minutes": rng.randint(1, 120), "kind": rng.choice(PLANS[plan]),
            "engineer": "eve"}))
    return setup, entries


def in_memory(setup: list[Envelope], entries: list[Envelope]) -> tuple[float, tuple[int, int]]:
    projection, view = LedgerProjection(), InMemoryLedgerView()
    for env in setup:
        projection.apply(env, view)
    started = time.perf_counter()
    for env in entries:
        projection.apply(env, view)
    rate = len(entries) / (time.perf_counter() - started)
    return rate, (len(view.entries), sum(e.charge for e in view.entries))


def on_postgres(url: str, setup: list[Envelope], entries: list[Envelope]) -> tuple[float, tuple[int, int]]:
    schema = f"bench_ledger_{uuid.uuid4().hex[:8]}"
    projection = LedgerProjection()
    with psycopg.connect(url) as conn:
        for name in ("outbox", *SQL_FILES):
            postgres.execute_file(conn, name, schema)
        conn.commit()
        try:
            view = PgLedgerView(conn, schema)
            for env in setup:
                projection.apply(env, view)
            view.flush()
            conn.commit()
            started = time.perf_counter()
            for first in range(0, len(entries), BATCH):
                view = PgLedgerView(conn, schema)
                for env in entries[first:first + BATCH]:
                    projection.apply(env, view)
                view.flush()
                conn.commit()
            rate = len(entries) / (time.perf_counter() - started)
            row = conn.execute(f"SELECT count(*), sum(charge) FROM {schema}.entries").fetchone()
            return rate, (int(row[0]), int(row[1])) if row else (0, 0)
        finally:
            conn.rollback()
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.commit()


def _database() -> tuple[str, Path | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    data = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    return embedded.start_postgres(data), data


def run() -> dict[str, Any]:
    setup, entries = history()
    memory, expected = in_memory(setup, entries)
    url, data = _database()
    try:
        pg, stored = on_postgres(url, setup, entries)
    finally:
        if data is not None:
            embedded.stop_postgres(data)
            shutil.rmtree(data, ignore_errors=True)
    assert stored == expected, f"PostgreSQL kept (entries, charges) {stored}, the reference {expected}"
    result = {"ledger.events": len(entries), "ledger.memory_events_per_s": round(memory),
              "ledger.postgres_events_per_s": round(pg)}
    print(f"ledger projection, {len(entries):,} time entries: in-memory view {round(memory):,} events/s,"
          f" PostgreSQL view {round(pg):,} events/s ({BATCH:,} per transaction)")
    return result


if __name__ == "__main__":
    run()
