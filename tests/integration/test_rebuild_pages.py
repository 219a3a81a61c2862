"""A fill applies a window of pages through one view that writes its rows once, at the window's
end (infra/postgres/rebuild.py, KEEP_PAGES): the tables it builds must be exactly those of a
fill that reads and writes every page's rows on its own, for tickets whose events lie pages
apart, across an erasure, and past the end of a window."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from infra.postgres import rebuild
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from tests.factories import contract, post, ticket
from tests.integration.helpers import checkpoint, eventually
from tests.processes import Processes

# The outbox stamps its rows with the wall clock: compared by content, and whether sent.
WHAT = {"outbox": "id, notice_id, topic, key, value, headers, published_at IS NULL"}


def fresh_tables(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name <> 'built'"
            " ORDER BY 1", (schema,))]  # `built` says when: only its position is compared
        found = {t: sorted(conn.execute(f"SELECT {WHAT.get(t, '*')} FROM {schema}.{t}").fetchall(), key=repr)
                 for t in tables}
        found["built"] = conn.execute(f"SELECT position FROM {schema}.built").fetchall()
        return found


def built(backend: Processes, store: ApplicationHost, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a dry run of `name` fills (then dropped)."""
    settings, spec = backend.settings, wiring.PROJECTIONS[name]
    url = settings.database_url or ""
    rebuild.dry_run(spec, store, url, settings.events_topic, settings.partitions, show_progress=False)
    try:
        return fresh_tables(url, f"{spec.schema}__new")
    finally:
        assert rebuild.abort(url, spec)


@pytest.mark.parametrize("name", sorted(wiring.PROJECTIONS))
def test_rows_kept_across_pages_build_what_rows_read_afresh_build(
    name: str, backend: Processes, store: ApplicationHost, base_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        erased = contract(client, "crm-experts/gold")
        kept = contract(client, "crm-experts/gold")
        tickets = [ticket(client, cid, priority="P2") for cid in (erased, kept, kept, erased)]
        for step in ("respond", "pause", "resume"):  # each ticket's events pages apart
            for tid in tickets:
                post(client, f"/tickets/{tid}/{step}")
        for tid in tickets:
            post(client, f"/tickets/{tid}/time", minutes=45, kind="work", engineer="Eve")
        post(client, f"/tickets/{tickets[0]}/resolve")
        post(client, f"/contracts/{erased}/cancel", reason="moving on")
        post(client, f"/contracts/{erased}/erase", reason="asked in writing")
        for tid in tickets[1:3]:
            post(client, f"/tickets/{tid}/time", minutes=30, kind="work", engineer="Eve")
            post(client, f"/tickets/{tid}/resolve")

    # A fill goes as far as the live runner has consumed: let it consume everything first, so
    # that every fill below reaches the same position.
    url, topic, head = backend.settings.database_url or "", backend.settings.events_topic, store.head()
    eventually(lambda: checkpoint(url, wiring.PROJECTIONS[name].schema, topic) >= head)
    afresh = built(backend, store, name)
    monkeypatch.setattr(rebuild, "PAGE", 3)
    monkeypatch.setattr(rebuild, "KEEP_PAGES", 4)
    assert built(backend, store, name) == afresh
    monkeypatch.setattr(rebuild, "KEEP_PAGES", 1)  # every page afresh: the same again
    assert built(backend, store, name) == afresh

