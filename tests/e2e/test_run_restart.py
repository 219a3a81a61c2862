"""`ticketing run` as a user runs it: everything embedded, data kept across a restart; the
restarted broker is empty, so the relay publishes everything again and the read models
stay as they were, nothing applied twice."""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.process import embedded
from infra.settings import Settings
from tests.backends import launch, stop
from tests.factories import contract, post, ticket
from tests.processes import Processes


def test_a_restarted_backend_keeps_its_data_and_read_models(tmp_path: Path) -> None:
    data, port = tmp_path / "var", embedded.free_port()
    data.mkdir()
    waiter = Processes(Settings(data_dir=data, http_port=port))
    proc = launch(data, port)
    try:
        waiter.wait_healthy(90)
        with httpx.Client(base_url=waiter.base_url, timeout=30) as client:
            cid = contract(client)
            tid = ticket(client, cid)
            position = post(client, f"/tickets/{tid}/time", minutes=30, kind="work")["position"]
            before = client.get(f"/tickets/{tid}", params={"wait_for": position}).json()
    finally:
        stop(proc)
    assert before["minutes"] == 30

    proc = launch(data, port)
    try:
        waiter.wait_healthy(90)
        with httpx.Client(base_url=waiter.base_url, timeout=30) as client:
            position = post(client, f"/tickets/{tid}/time", minutes=15, kind="work")["position"]
            after = client.get(f"/tickets/{tid}", params={"wait_for": position}).json()
            assert after["minutes"] == 45, "the first entry was applied once, the new one once"
            assert [e["type"] for e in client.get(f"/contracts/{cid}/history").json()["events"]] == [
                "Contract.Signed", "Ticket.Opened", "Ticket.TimeConsumed", "Ticket.TimeConsumed",
            ]
    finally:
        stop(proc)
