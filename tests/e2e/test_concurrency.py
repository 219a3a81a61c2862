"""Concurrent commands on one ticket never lose an update: each one is recorded once,
retried on fresh state when it loses a race, or refused with 409."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.factories import contract, history, ticket


def test_twenty_concurrent_time_entries_on_one_ticket_are_all_recorded(base_url: str, client: httpx.Client) -> None:
    cid = contract(client, "crm-experts/gold")
    tid = ticket(client, cid)

    def entry(minutes: int) -> int:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            return c.post(f"/tickets/{tid}/time", json={"minutes": minutes, "kind": "work"}).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(entry, range(1, 21)))
    assert codes == [200] * 20
    entries = [e for e in history(client, cid) if e["type"] == "Ticket.TimeConsumed"]
    assert sorted(e["minutes"] for e in entries) == list(range(1, 21))
    assert sorted(e["aggregate_version"] for e in entries) == list(range(2, 22))


def test_racing_resolve_commands_record_one_resolution_and_refuse_the_rest(base_url: str, client: httpx.Client) -> None:
    cid = contract(client, "crm-experts/gold")
    tid = ticket(client, cid)

    def resolve(_: int) -> int:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            return c.post(f"/tickets/{tid}/resolve", json={}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(resolve, range(8)))
    assert sorted(codes) == [200] + [409] * 7
    assert [e["type"] for e in history(client, cid)].count("Ticket.Resolved") == 1
