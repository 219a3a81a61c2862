"""Audit over HTTP: the history as it was known at a commit time, and the proof of a
contract's hash chain."""

from __future__ import annotations

import httpx

from tests.factories import contract, post, ticket


def test_the_history_as_known_leaves_out_what_was_committed_later(client: httpx.Client) -> None:
    cid = contract(client)
    first = ticket(client, cid, at="2026-03-02T09:00:00Z")
    known = client.get(f"/contracts/{cid}/history").json()["events"][-1]["committed_at"]
    late = ticket(client, cid, at="2026-03-01T09:00:00Z")  # back-dated: it happened earlier, was recorded later
    then = client.get(f"/contracts/{cid}/history", params={"known_at": known})
    assert then.status_code == 200
    assert [t["ticket_id"] for t in then.json()["tickets"]] == [first] and then.json()["known_at"]
    now = client.get(f"/contracts/{cid}/history").json()
    assert {t["ticket_id"] for t in now["tickets"]} == {first, late}
    # business time and commit time combine: as of 1 March 12:00, as known then, nothing had happened yet
    both = client.get(f"/contracts/{cid}/history", params={"known_at": known, "as_of": "2026-03-01T12:00:00Z"})
    assert both.json()["tickets"] == []


def test_known_at_in_the_future_is_refused(client: httpx.Client) -> None:
    cid = contract(client)
    refused = client.get(f"/contracts/{cid}/history", params={"known_at": "2999-01-01T00:00:00Z"})
    assert refused.status_code == 422 and refused.json()["error"]


def test_the_proof_is_the_head_of_the_chain_the_history_shows(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    position = post(client, f"/tickets/{tid}/respond")["position"]
    proof = client.get(f"/contracts/{cid}/proof").json()
    events = client.get(f"/contracts/{cid}/history").json()["events"]
    assert proof == {"contract_id": cid, "head_hash": events[-1]["hash"], "events": len(events), "position": position}
    assert len({e["hash"] for e in events}) == len(events)
    assert client.get("/contracts/00000000-0000-4000-8000-000000000000/proof").status_code == 404
