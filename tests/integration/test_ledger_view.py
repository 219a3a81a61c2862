"""The PostgreSQL ledger view against the in-memory one: the same history gives the same
periods, entries, ticket totals, statements and notices, whether it arrives in one batch or
in many small ones (the view caches per batch and writes at flush), redelivered, and in
pipeline mode."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from bench.ledger import history
from infra import postgres
from infra.kafka.notices import decode_balance as decode_notice
from infra.postgres.views.ledger import SQL_FILES, PgLedgerView
from infra.settings import Settings
from projections.envelope import Envelope
from projections.ledger import InMemoryLedgerView, LedgerProjection


def mixed_history() -> list[Envelope]:
    """Signings, credits, time entries, a renewal of every bank and some resolutions."""
    setup, entries = history(events=3000, contracts=9, seed=3)
    banks = [e.contract_id for e in setup if e.type == "Contract.Signed" and e.data["plan_id"].startswith("crm")]
    events: list[Envelope] = list(setup)
    for i, env in enumerate(entries):
        events.append(env)
        if i == 1500:
            events += [dataclasses.replace(env, type="Contract.Renewed", aggregate_id=cid, contract_id=cid,
                                           data={"reason": None, "period_starts_on": "2026-01-01"})
                       for cid in banks]
        if i % 97 == 0:
            events.append(dataclasses.replace(env, type="Ticket.Resolved",
                                              data={"contract_id": env.contract_id, "reason": None}))
    return [dataclasses.replace(e, position=n) for n, e in enumerate(events, 1)]


def in_memory(events: list[Envelope]) -> InMemoryLedgerView:
    view, projection = InMemoryLedgerView(), LedgerProjection()
    for env in events:
        projection.apply(env, view)
    return view


def on_postgres(url: str, events: list[Envelope], batch: int, pipeline: bool) -> dict[str, Any]:
    schema, projection = f"test_ledger_{uuid.uuid4().hex[:8]}", LedgerProjection()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for name in ("outbox", *SQL_FILES):
            postgres.execute_file(conn, name, schema)
        for n, first in enumerate(range(0, len(events), batch)):
            with conn.pipeline() if pipeline else contextlib.nullcontext():
                view = PgLedgerView(conn, schema)
                # Each batch comes after the one before it again (a redelivery): dropped.
                delivered = events[max(0, first - batch):first] + events[first:first + batch]
                if n % 2:  # rows read ahead, as the runner does, or when first got
                    view.prefetch({env.contract_id for env in delivered})
                for env in delivered:
                    projection.apply(env, view)
                view.flush()
            conn.commit()
        tables = {t: conn.execute(f"SELECT * FROM {schema}.{t}").fetchall()
                  for t in ("periods", "entries", "tickets", "statements", "outbox", "contracts")}
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return tables


def expected(view: InMemoryLedgerView) -> dict[str, Any]:
    return {
        "periods": {(p.contract_id, p.label): (p.granted, p.used, p.minutes, p.entries, p.low, p.exhausted,
                                               p.low_crossings, p.exhausted_crossings)
                    for p in view.periods.values()},
        "entries": Counter((e.position, e.period, e.charge, e.overage) for e in view.entries),
        "tickets": {t: (c.minutes, c.charge, c.overage, c.position) for t, c in view.tickets.items()},
        "statements": Counter((s.ticket_id, s.position, s.charge, s.balance_after) for s in view.statements),
        "notices": sorted(n.notice_id for n in view.notices),
        "renews_at": {c: b.renews_at for c, b in view.books.items()},
    }


def found(tables: dict[str, Any]) -> dict[str, Any]:
    period_cols = ("granted", "used", "minutes", "entries", "low", "exhausted", "low_crossings",
                   "exhausted_crossings")
    return {
        "periods": {(p["contract_id"], p["label"]): tuple(p[c] for c in period_cols) for p in tables["periods"]},
        "entries": Counter((e["position"], e["period"], e["charge"], e["overage"]) for e in tables["entries"]),
        "tickets": {t["ticket_id"]: (t["minutes"], t["charge"], t["overage"], t["position"]) for t in tables["tickets"]},
        "statements": Counter((s["ticket_id"], s["position"], s["charge"], s["balance_after"])
                              for s in tables["statements"]),
        "notices": sorted(n["notice_id"] for n in tables["outbox"]),
        "renews_at": {c["contract_id"]: c["renews_at"] for c in tables["contracts"]},
    }


@pytest.mark.parametrize(("batch", "pipeline"), [(100_000, False), (7, False), (500, True)],
                         ids=["one batch", "batches of 7", "pipeline mode"])
def test_the_postgres_view_agrees_with_the_in_memory_view(servers: Settings, batch: int, pipeline: bool) -> None:
    events = mixed_history()
    want = expected(in_memory(events))
    assert want["notices"] and want["statements"]  # the history exercises both
    tables = on_postgres(servers.database_url or "", events, batch, pipeline)
    assert found(tables) == want
    name, record = decode_notice(bytes(tables["outbox"][0]["value"]),
                                 [(k, str(v).encode()) for k, v in tables["outbox"][0]["headers"].items()])
    assert name in ("ticketing.v1.LowBalanceReached", "ticketing.v1.BalanceExhausted")
    assert record["notice_id"] == tables["outbox"][0]["notice_id"]
