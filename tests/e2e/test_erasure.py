"""Erasure by crypto-shredding, over HTTP, on the real store and broker (docs/audit.md).

Personal fields (customer, titles, reporters, engineers, reasons) are stored sealed under the
contract's key, so the store never holds them in clear. DataCRM's cancellation walks the whole
path its seed promises: the cancellation's answer offers the MySQL dump, the dump is fetched,
the contract is erased, and from then on nothing of that customer is readable anywhere in the
database (store, read models, dead letters, keys) or through the API, while every figure (SLA,
ledger, availability) answers as before and the hash chain still verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from infra.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN
from tests.factories import contract, history, post, ticket


def _marked(word: str) -> str:
    return f"{word}-{uuid.uuid4().hex[:10]}"


def _readable_anywhere(db: psycopg.Connection, needles: list[str]) -> list[str]:
    """Every (table.column) of the database whose text, JSON or bytes hold one of the needles."""
    columns = db.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        " AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')").fetchall()
    found = []
    for schema, table, column, kind in columns:
        as_text = f"encode({column}, 'escape')" if kind == "bytea" else f"{column}::text"
        for needle in needles:
            hit = db.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {as_text} LIKE %s',
                             (f"%{needle}%",)).fetchone()
            if hit and hit[0]:
                found.append(f"{schema}.{table}.{column} holds {needle}")
    return found


def _reports(client: httpx.Client, cid: str, wait: int) -> dict[str, Any]:
    got = {}
    for name, path, params in (("sla", f"/contracts/{cid}/sla", {"month": "2026-03"}),
                                ("availability", f"/contracts/{cid}/availability", {"month": "2026-03"}),
                                ("ledger", f"/contracts/{cid}/ledger", {"period": "2026-Q1"})):
        answer = client.get(path, params={**params, "wait_for": wait})
        assert answer.status_code == 200, answer.text
        got[name] = {k: v for k, v in answer.json().items() if k != "as_of"}  # the instant asked at
    return got


def _without_engineers(ledger: dict[str, Any]) -> dict[str, Any]:
    """The figures of a ledger answer, apart from the engineers' names and the contract's status."""
    return {**ledger, "status": None,
            "entries": [{k: v for k, v in e.items() if k != "engineer"} for e in ledger["entries"]]}


def test_personal_fields_are_stored_sealed_and_shown_opened(client: httpx.Client, db: psycopg.Connection) -> None:
    customer, title, reporter, engineer, reason = (_marked(w) for w in ("Cliente", "Titulo", "ana", "eng", "why"))
    cid = contract(client, "crm-experts/gold", customer=customer)
    tid = ticket(client, cid, title=title, reporter=reporter, at="2026-03-02T09:00:00Z")
    post(client, f"/tickets/{tid}/time", minutes=30, kind="work", engineer=engineer, at="2026-03-02T10:00:00Z")
    last = post(client, f"/tickets/{tid}/pause", reason=reason, at="2026-03-02T11:00:00Z")["position"]
    needles = [customer, title, reporter, engineer, reason]
    stored = db.execute("SELECT string_agg(convert_from(state, 'UTF8'), ' ') FROM es.ticketing_events"
                        " WHERE originator_id = %s OR es.contract_of(state) = %s", (uuid.UUID(cid), cid)).fetchone()
    assert stored and stored[0] and "sealed:v1:" in stored[0]
    assert not [n for n in needles if n in stored[0]], "a personal field is stored in clear"
    # Shown opened wherever people read them.
    assert client.get(f"/contracts/{cid}").json()["customer"] == customer
    shown = json.dumps(client.get(f"/contracts/{cid}/history").json())
    assert all(n in shown for n in needles)
    answer = client.get(f"/tickets/{tid}", params={"wait_for": last}).json()
    assert (answer["title"], answer["reporter"]) == (title, reporter)
    ledger = client.get(f"/contracts/{cid}/ledger", params={"wait_for": last}).json()
    assert [e["engineer"] for e in ledger["entries"]] == [engineer]


def test_datacrm_cancellation_offers_the_dump_and_erasure_leaves_nothing_of_the_customer_readable(
        client: httpx.Client, db: psycopg.Connection, servers: Settings, tmp_path: Path, guarded_api: str) -> None:
    customer, title, reporter, engineer, why, user = (_marked(w) for w in ("Cliente", "Caido", "ana", "eng", "motivo", "usr"))
    needles = [customer, title, reporter, engineer, why, user]
    cid = contract(client, "datacrm/standard", customer=customer, starts_on="2026-01-01")
    token = post(client, "/tokens", 201, role="customer", contracts=[cid], name=user)
    # Another API process reads the contract, and so caches its aggregate.
    other_api = httpx.Client(base_url=guarded_api, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert other_api.get(f"/contracts/{cid}").json()["customer"] == customer
    tid = ticket(client, cid, title=title, reporter=reporter, at="2026-03-02T09:00:00Z", priority="P1",
                 category="system-down", down_since="2026-03-02T08:30:00Z")
    post(client, f"/tickets/{tid}/respond", at="2026-03-02T09:20:00Z")
    post(client, f"/tickets/{tid}/time", minutes=150, kind="guidance", engineer=engineer, at="2026-03-02T10:00:00Z")
    post(client, f"/tickets/{tid}/restore", at="2026-03-02T11:00:00Z")
    post(client, f"/tickets/{tid}/pause", reason=why, at="2026-03-02T11:30:00Z")
    post(client, f"/tickets/{tid}/resume", at="2026-03-02T12:00:00Z")
    post(client, f"/contracts/{cid}/maintenance", starts_at="2026-03-10T02:00:00Z", ends_at="2026-03-10T03:00:00Z",
         reason=why, at="2026-03-03T00:00:00Z")
    last = post(client, f"/tickets/{tid}/resolve", reason=why, at="2026-03-02T15:00:00Z")["position"]
    before = _reports(client, cid, last)
    assert [e["engineer"] for e in before["ledger"]["entries"]] == [engineer]
    assert client.get(f"/tokens/{token['token_id']}").json()["name"] == user

    # An active contract cannot be erased: 409, and nothing is recorded or destroyed.
    events = len(history(client, cid))
    refused = client.post(f"/contracts/{cid}/erase", json={"reason": "asked"})
    assert refused.status_code == 409 and "cancel" in refused.json()["error"]
    assert len(history(client, cid)) == events and client.get(f"/contracts/{cid}").json()["customer"] == customer

    # The cancellation offers the dump the seed promises; it is the customer's whole database.
    cancelled = post(client, f"/contracts/{cid}/cancel", reason=why, at="2026-03-20T10:00:00Z")
    assert cancelled["export"] == {"format": "mysql", "href": f"/contracts/{cid}/export?format=mysql"}
    dump = client.get(cancelled["export"]["href"])
    assert dump.status_code == 200 and dump.headers["content-type"].startswith("application/sql")
    assert all(n in dump.text for n in needles if n != user)  # its data, not our access tokens
    # Another plan promises no export, and its cancellation offers none.
    other = contract(client, "crm-experts/gold")
    assert "export" not in post(client, f"/contracts/{other}/cancel")

    erased = post(client, f"/contracts/{cid}/erase", reason="erasure requested by the customer in writing")
    assert client.post(f"/contracts/{cid}/erase", json={}).status_code == 409  # once
    after = _reports(client, cid, erased["position"])

    # Every figure replays unchanged; only the engineer's name is gone from the entries.
    assert after["sla"] == before["sla"] and after["availability"] == before["availability"]
    assert _without_engineers(after["ledger"]) == _without_engineers(before["ledger"])
    assert [e["engineer"] for e in after["ledger"]["entries"]] == [None]
    # The API shows null for every personal field, and nothing of the customer.
    shown = client.get(f"/contracts/{cid}").json()
    assert shown["customer"] is None and shown["erased_at"] is not None and shown["status"] == "cancelled"
    assert other_api.get(f"/contracts/{cid}").json() == shown  # no process shows what it cached before
    named = client.get(f"/tokens/{token['token_id']}").json()
    assert named["name"] is None and [e["name"] for e in named["events"] if "name" in e] == [None]
    assert [t["name"] for t in client.get("/tokens").json()["tokens"] if t["token_id"] == token["token_id"]] == [None]
    answered = [client.get(p, params={"wait_for": erased["position"]}).json() for p in (
        f"/tickets/{tid}", f"/contracts/{cid}/tickets", f"/contracts/{cid}/history", f"/tickets/{tid}/statement")]
    assert answered[0]["title"] is None and answered[0]["reporter"] is None
    assert not [n for n in needles if n in json.dumps(answered)]
    last_event = answered[2]["events"][-1]
    assert last_event["type"] == "Contract.Erased" and last_event["reason"] == "erasure requested by the customer in writing"
    # Nothing of the customer is readable anywhere in the database: store, read models, keys.
    assert _readable_anywhere(db, needles) == []
    # The hash chain still verifies, over the very bytes stored before the erasure.
    env = servers.child_env()
    checked = subprocess.run([sys.executable, "-m", "infra.process.cli", "verify", "--store", cid], env=env,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # An export made after the erasure holds nothing of the customer and still verifies alone.
    exported = client.get(f"/contracts/{cid}/export", params={"format": "jsonl"})
    assert exported.status_code == 200 and not [n for n in needles if n in exported.text]
    path = tmp_path / "after.jsonl"
    path.write_bytes(exported.content)
    nowhere = tmp_path / "no-data-dir"
    alone = subprocess.run([sys.executable, "-m", "infra.process.cli", "verify", str(path)],
                           env={"PATH": "/usr/bin:/bin", "TICKETING_DATA_DIR": str(nowhere), "HOME": str(tmp_path)},
                           capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0 and "WHOLE" in alone.stdout, alone.stdout + alone.stderr
    # Nothing personal can be recorded on it any more.
    assert client.post(f"/tickets/{tid}/reopen", json={"reason": "again"}).status_code == 409
