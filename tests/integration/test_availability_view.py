"""The availability PostgreSQL view against the in-memory one, on the tick's side: after the
same history (in batches, each redelivered once) both stores hold the same contract rows
(with the instant from which each one's figures may have moved) and answer the tick's
question (which contracts to look at) the same way; the projection, judging them, notices the
same spent budgets through either and leaves nothing marked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.postgres.views.availability import PgAvailabilityView
from infra.process import wiring
from infra.settings import Settings
from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from tests.integration.helpers import apply_in_batches
from tests.strategies import contract_histories

SCHEMA = "test_availability_ticks"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(envs=contract_histories(), batch=st.integers(1, 12),
       hours=st.lists(st.integers(0, 60 * 24), min_size=1, max_size=3).map(sorted))
def test_both_views_name_the_same_contracts_to_check_and_the_tick_notices_the_same_budgets(
    servers: Settings, envs: list[Envelope], batch: int, hours: list[int]
) -> None:
    assert servers.database_url
    wiring.create_tables(servers.database_url, "availability", SCHEMA)
    projection, memory = AvailabilityProjection(), InMemoryAvailabilityView()
    for env in envs:
        projection.apply(env, memory)
    with psycopg.connect(servers.database_url) as conn:
        apply_in_batches(conn, AvailabilityProjection(), lambda: PgAvailabilityView(conn, SCHEMA), envs, batch)
        for now in (START + timedelta(hours=h) for h in hours):
            pg = PgAvailabilityView(conn, SCHEMA)
            assert [pg.contract(c) for c in memory.contracts] == list(memory.contracts.values())
            assert pg.candidates() == memory.candidates()
            projection.tick(now, pg)
            projection.tick(now, memory)
            conn.commit()
            after = PgAvailabilityView(conn, SCHEMA).candidates()
            assert after == memory.candidates()
            assert all(c.terms.dirty_since is None for c in after)
        sent = conn.execute(f"SELECT notice_id FROM {SCHEMA}.outbox").fetchall()
    assert sorted(n for (n,) in sent) == sorted(n.notice_id for n in memory.notices)
