"""The MySQL export over HTTP, loaded into a real MariaDB: the contract, every event up to the
export with the head a proof answers, the time entries, and the figures, equal to the API's
reports as known at the export's instant."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.factories import contract, post, ticket
from tests.mariadb import mariadb, rows


def test_a_mysql_export_loads_into_mariadb_with_the_figures_the_api_answered(client: httpx.Client,
                                                                               tmp_path: Path) -> None:
    cid = contract(client, "datacrm/standard", customer="Café O'Neil; DROP TABLE contract; --")
    tid = ticket(client, cid, title="Caído \\ el portal", at="2026-03-02T09:00:00Z", priority="P1",
                 category="system-down", down_since="2026-03-02T08:30:00Z")
    post(client, f"/tickets/{tid}/time", minutes=30, kind="work", at="2026-03-02T10:00:00Z")
    post(client, f"/tickets/{tid}/restore", at="2026-03-02T11:00:00Z")
    answer = client.get(f"/contracts/{cid}/export", params={"format": "mysql"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/sql")
    assert answer.headers["content-disposition"].endswith('.sql"')
    proof = client.get(f"/contracts/{cid}/proof").json()
    events = client.get(f"/contracts/{cid}/history").json()["events"]
    exported_at = events[-1]["committed_at"]
    assert events[-1]["type"] == "Contract.Exported" and events[-1]["format"] == "mysql"
    with mariadb(tmp_path) as db:
        subprocess.run([*db, "-e", "CREATE DATABASE dump"], check=True)
        loaded = subprocess.run([*db, "dump"], input=answer.text, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        assert rows(db, "dump", "SELECT head_hash, events, position FROM export") == [
            [proof["head_hash"], str(proof["events"]), str(proof["position"])]]
        assert rows(db, "dump", "SELECT customer, plan, status FROM contract") == [
            ["Café O'Neil; DROP TABLE contract; --", "datacrm/standard", "active"]]
        assert rows(db, "dump", "SELECT title FROM tickets") == [["Caído \\ el portal"]]
        assert [r[0] for r in rows(db, "dump", "SELECT hash FROM events ORDER BY position")] == [e["hash"] for e in events]
        assert rows(db, "dump", "SELECT ticket_id, minutes, kind FROM time_entries") == [[tid, "30", "work"]]
        for report, period, path, params in (
                ("availability", "2026-03", f"/contracts/{cid}/availability", {"month": "2026-03"}),
                ("sla", "2026-03", f"/contracts/{cid}/sla", {"month": "2026-03"})):
            kept = json.loads(rows(db, "dump", f"SELECT body FROM reports WHERE report = '{report}' AND period = '{period}'")[0][0])
            api = client.get(path, params={**params, "known_at": exported_at}).json()
            assert kept == api, report
        ledgers = {r[0]: json.loads(r[1]) for r in rows(db, "dump", "SELECT period, body FROM reports WHERE report = 'ledger'")}
        api_ledger = client.get(f"/contracts/{cid}/ledger", params={"known_at": exported_at}).json()
        assert ledgers[api_ledger["period"]] == api_ledger
