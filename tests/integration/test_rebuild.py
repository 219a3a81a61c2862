"""Rebuilding a projection from the store while its runner keeps consuming, or while it lags
behind: new tables are filled up to what the runner applied, switched atomically, the runner
goes on into them with what it had not applied yet, and nothing is lost or doubled."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from infra.postgres import rebuild
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from projections.ledger import InMemoryLedgerView, LedgerProjection
from tests.factories import contract, post, ticket
from tests.integration.helpers import clean_rebuild, read_model
from tests.integration.test_ledger_view import expected, found
from tests.processes import Processes


def test_a_rebuild_switches_to_equal_tables_and_the_live_runner_writes_into_them(
    backend: Processes, store: ApplicationHost, base_url: str
) -> None:
    settings = backend.settings
    url = settings.database_url or ""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        cid = contract(client)
        tids = [ticket(client, cid) for _ in range(30)]
        position = post(client, f"/tickets/{tids[0]}/pause")["position"]
        assert client.get(f"/tickets/{tids[0]}", params={"wait_for": position}).status_code == 200
        with psycopg.connect(url, autocommit=True) as conn:  # a row only the broken old rules had
            conn.execute("UPDATE proj_tickets.tickets SET title = 'tampered' WHERE ticket_id = %s", (tids[1],))

        report = rebuild.rebuild(wiring.PROJECTIONS["tickets"], store, url, settings.events_topic,
                                 settings.partitions, show_progress=False)

        assert report.events >= 31
        assert report.changed["tickets"]["only_before"] == 1 and report.changed["tickets"]["only_after"] == 1
        assert read_model(url, "proj_tickets")[tids[1]]["title"] == "Login fails"
        # The live runner goes on, into the new tables (with statements it had prepared before).
        later = [ticket(client, cid) for _ in range(6)]
        position = post(client, f"/tickets/{tids[2]}/resolve")["position"]
        answer = client.get(f"/tickets/{tids[2]}", params={"wait_for": position})
        assert answer.status_code == 200 and answer.json()["status"] == "resolved"
        assert all(client.get(f"/tickets/{t}").status_code == 200 for t in later)
    assert read_model(url, "proj_tickets") == clean_rebuild(store, upto=position)
    assert rebuild.drop_old(url, wiring.PROJECTIONS["tickets"]) == [report.old_schema]


LAGGING = ("tickets", "ledger")


def answered(client: httpx.Client, path: str, position: int, within: float = 60) -> dict[str, Any]:
    """The read model's answer once it has consumed `position` (a restarted runner may take
    longer than one `wait_for`)."""
    deadline = time.monotonic() + within
    while (response := client.get(path, params={"wait_for": position})).status_code == 504:
        assert time.monotonic() < deadline, response.text
    assert response.status_code == 200, response.text
    return response.json()


def ledger_tables(url: str, contract_id: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        tables = {t: conn.execute(f"SELECT * FROM proj_ledger.{t} WHERE contract_id = %s",
                                  (contract_id,)).fetchall()
                  for t in ("periods", "entries", "tickets", "statements", "contracts")}
        tables["outbox"] = conn.execute("SELECT * FROM proj_ledger.outbox WHERE key = %s", (contract_id,)).fetchall()
    return tables


def test_a_rebuild_while_the_runners_lag_neither_doubles_minutes_nor_repeats_a_ledger_entry(
    backend: Processes, store: ApplicationHost, client: httpx.Client
) -> None:
    settings, cid = backend.settings, contract(client)
    tids = [ticket(client, cid) for _ in range(3)]
    first = [post(client, f"/tickets/{t}/time", minutes=30, kind="work")["position"] for t in tids][-1]
    answered(client, f"/tickets/{tids[0]}", first)
    answered(client, f"/contracts/{cid}/ledger", first)
    for name in LAGGING:
        backend.kill(f"consume-{name}")  # stopped: the live runners lag behind what follows
    for t in tids:
        post(client, f"/tickets/{t}/time", minutes=45, kind="work")
    last = post(client, f"/tickets/{tids[0]}/resolve")["position"]
    url = settings.database_url or ""
    olds = [rebuild.rebuild(wiring.PROJECTIONS[name], store, url, settings.events_topic, settings.partitions,
                            show_progress=False).old_schema for name in LAGGING]
    for name in LAGGING:
        backend.start(f"consume-{name}")  # it applies, into the new tables, what the rebuild left to it
    assert answered(client, f"/tickets/{tids[0]}", last)["minutes"] == 75
    ledger = answered(client, f"/contracts/{cid}/ledger", last)
    assert (ledger["used"], len(ledger["entries"])) == (3 * 75, 6)
    clean, built = clean_rebuild(store, upto=last), read_model(url, "proj_tickets")
    assert {t: built[t] for t in tids} == {t: clean[t] for t in tids}
    view, projection = InMemoryLedgerView(), LedgerProjection()
    for env in store.envelopes_of(cid):
        projection.apply(env, view)
    assert found(ledger_tables(url, cid)) == expected(view)
    with psycopg.connect(url) as conn:
        for name in LAGGING:
            assert conn.execute(f"SELECT reason FROM proj_{name}.dead_letter WHERE position >= %s",
                                (first,)).fetchall() == []
    assert [rebuild.drop_old(url, wiring.PROJECTIONS[name]) for name in LAGGING] == [[old] for old in olds]
