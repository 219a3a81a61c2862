"""Idempotency keys over HTTP (docs/design.md): a client that lost its answer may send the
same request again with the same key and gets the first answer, with nothing recorded twice."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from tests.factories import contract, history, ticket


def keyed(client: httpx.Client, path: str, key: str, body: object | None = None, raw: str | None = None
          ) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(path, content=content, headers={"Idempotency-Key": key, "Content-Type": "application/json"})


def test_a_repeated_time_entry_answers_the_kept_answer_and_is_recorded_once(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    key = f"entry-{uuid.uuid4()}"
    first = keyed(client, f"/tickets/{tid}/time", key, {"minutes": 59, "kind": "work"})
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = keyed(client, f"/tickets/{tid}/time", key, raw='{ "kind" : "work",\n "minutes": 59 }')
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    minutes = [e["minutes"] for e in history(client, cid) if e["type"] == "Ticket.TimeConsumed"]
    assert minutes == [59]


def test_a_repeated_creation_keeps_its_status_and_its_new_id(client: httpx.Client) -> None:
    cid = contract(client)
    key = str(uuid.uuid4())
    body = {"contract_id": cid, "title": "Login fails", "reporter": "ana"}
    first = keyed(client, "/tickets", key, body)
    again = keyed(client, "/tickets", key, body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and set(first.json()) == {"ticket_id", "position"}
    opened = [e for e in history(client, cid) if e["type"] == "Ticket.Opened"]
    assert [e["aggregate_id"] for e in opened] == [first.json()["ticket_id"]]


def test_a_repeat_that_the_first_run_made_impossible_still_answers_the_kept_answer(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    key = str(uuid.uuid4())
    first = keyed(client, f"/tickets/{tid}/resolve", key, {"reason": "fixed"})
    again = keyed(client, f"/tickets/{tid}/resolve", key, {"reason": "fixed"})  # resolving twice is a 409
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert [e["type"] for e in history(client, cid)].count("Ticket.Resolved") == 1


def test_the_same_key_on_another_request_is_refused_and_records_nothing(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    key = str(uuid.uuid4())
    assert keyed(client, f"/tickets/{tid}/time", key, {"minutes": 10, "kind": "work"}).status_code == 200
    before = len(history(client, cid))
    other = keyed(client, f"/tickets/{tid}/time", key, {"minutes": 11, "kind": "work"})
    assert other.status_code == 422 and "different request" in other.json()["error"]
    elsewhere = keyed(client, f"/contracts/{cid}/cancel", key, {})
    assert elsewhere.status_code == 422
    assert len(history(client, cid)) == before


def test_a_refused_first_request_keeps_nothing_so_the_corrected_one_may_reuse_the_key(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    key = str(uuid.uuid4())
    wrong = keyed(client, f"/tickets/{tid}/time", key, {"minutes": 10, "kind": "gardening"})
    assert wrong.status_code == 422
    fixed = keyed(client, f"/tickets/{tid}/time", key, {"minutes": 10, "kind": "work"})
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


def test_concurrent_repeats_record_once_and_the_others_wait_or_replay(base_url: str, client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    key = str(uuid.uuid4())

    def send(_: int) -> tuple[int, str | None]:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            r = keyed(c, f"/tickets/{tid}/time", key, {"minutes": 7, "kind": "work"})
            return r.status_code, r.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    assert [a for a in answers if a == (200, None)] == [(200, None)]
    assert all(a in ((200, "true"), (409, None)) for a in answers if a != (200, None)), answers
    assert [e["minutes"] for e in history(client, cid) if e["type"] == "Ticket.TimeConsumed"] == [7]


def test_a_key_must_be_visible_ascii_of_at_most_255_characters(client: httpx.Client) -> None:
    cid = contract(client)
    before = len(history(client, cid))
    for bad in (b"x" * 256, "caf\u00e9".encode(), b"two words", b"tab\there"):
        response = client.post(f"/contracts/{cid}/cancel", json={}, headers={"Idempotency-Key": bad})
        assert response.status_code == 422, bad
        assert response.json()["error"]
    assert len(history(client, cid)) == before


def test_only_a_hash_of_the_request_is_kept(client: httpx.Client, db: psycopg.Connection) -> None:
    cid = contract(client)
    key = str(uuid.uuid4())
    keyed(client, "/tickets", key, {"contract_id": cid, "title": "Secret outage", "reporter": "ana"})
    row = db.execute("SELECT request_hash, answer::text FROM es.idempotency WHERE key = %s", (key,)).fetchone()
    assert row is not None and len(bytes(row[0])) == 32
    assert "Secret" not in row[1] and "ana" not in row[1]
