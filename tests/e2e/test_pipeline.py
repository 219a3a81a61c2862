"""Command -> store -> relay -> Kafka -> consumer -> read model, asserted over HTTP."""

from __future__ import annotations

import httpx

from tests.factories import contract, history, post, ticket


def test_a_ticket_opened_over_http_reaches_the_ticket_list(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid, priority="P2")
    position = post(client, f"/tickets/{tid}/pause", reason="waiting on customer")["position"]
    row = client.get(f"/tickets/{tid}", params={"wait_for": position}).json()
    assert row["status"] == "paused"
    assert row["priority"] == "P2"
    assert row["contract_id"] == cid


def test_history_lists_contract_and_ticket_events_in_store_order(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    post(client, f"/tickets/{tid}/respond")
    events = history(client, cid)
    assert [e["type"] for e in events] == ["Contract.Signed", "Ticket.Opened", "Ticket.Responded"]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
