"""The SLA's PostgreSQL view against the in-memory one, on the tick's side: after the same
history (in batches, each redelivered once) both stores answer the tick's question (which
clocks' alarms went off before an instant and were not noticed for it) with the same rows,
and the projection, judging those rows, notices the same breaches through either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.postgres.views.sla import PgSlaView
from infra.process import wiring
from infra.settings import Settings
from projections.envelope import Envelope
from projections.sla import InMemorySlaView, SlaProjection
from tests.integration.helpers import apply_in_batches
from tests.strategies import contract_histories

SCHEMA = "test_sla_ticks"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(envs=contract_histories(), batch=st.integers(1, 12),
       hours=st.lists(st.integers(0, 40 * 24), min_size=1, max_size=3).map(sorted))
def test_both_views_find_the_same_due_clocks_and_the_tick_notices_the_same_breaches(
    servers: Settings, envs: list[Envelope], batch: int, hours: list[int]
) -> None:
    assert servers.database_url
    wiring.create_tables(servers.database_url, "sla", SCHEMA)
    projection, memory = SlaProjection(), InMemorySlaView()
    for env in envs:
        projection.apply(env, memory)
    with psycopg.connect(servers.database_url) as conn:
        apply_in_batches(conn, SlaProjection(), lambda: PgSlaView(conn, SCHEMA, guard=False), envs, batch)
        for now in (START + timedelta(hours=h) for h in hours):
            assert PgSlaView(conn, SCHEMA, guard=False).due(now) == memory.due(now)
            projection.tick(now, PgSlaView(conn, SCHEMA, guard=False))
            projection.tick(now, memory)
            conn.commit()
            assert PgSlaView(conn, SCHEMA, guard=False).due(now) == memory.due(now) == []
        noticed = conn.execute(f"SELECT ticket_id, response_noticed, resolution_noticed"
                               f" FROM {SCHEMA}.sla_tickets").fetchall()
        sent = conn.execute(f"SELECT notice_id FROM {SCHEMA}.outbox").fetchall()
    assert {t: (r, s) for t, r, s in noticed} == {
        t: (r.noticed.get("response"), r.noticed.get("resolution")) for t, r in memory.tickets.items()}
    assert sorted(n for (n,) in sent) == sorted(n.notice_id for n in memory.notices)
