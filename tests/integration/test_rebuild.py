"""Rebuilding a projection from the store while its runner keeps consuming: new tables are
filled, switched atomically, the runner goes on into them, and nothing is lost or doubled."""

from __future__ import annotations

import httpx
import psycopg

from infra import rebuild, wiring
from infra.processes import Processes
from infra.store import EventStore
from tests.factories import contract, post, ticket
from tests.integration.helpers import clean_rebuild, read_model


def test_a_rebuild_switches_to_equal_tables_and_the_live_runner_writes_into_them(
    backend: Processes, store: EventStore, base_url: str
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
