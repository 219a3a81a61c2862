"""A contract's MySQL dump loads into a real MariaDB server and reads back what it holds:
the contract, its tickets, its events with their hashes, the time entries and the figures,
whatever characters the text fields hold."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra.exports import mysql
from tests.mariadb import mariadb, rows

AWKWARD = "O'Brien \\ \"quoted\" ; -- not a comment\nnew line, tab\t, ünïcødé 🎫, %s, \\' end"


def _contents() -> mysql.Contents:
    cid, tid = "6b1f1c7e-1111-4a4a-8a8a-000000000001", "6b1f1c7e-2222-4a4a-8a8a-000000000002"
    events = [
        {"position": 1, "type": "Contract.Signed", "aggregate_id": cid, "aggregate_version": 1,
         "occurred_at": "2026-01-01T00:00:00+00:00", "committed_at": "2026-01-01T00:00:01.000001+00:00",
         "actor": {"kind": "bootstrap"}, "fields": {"customer": AWKWARD}, "hash": "ab" * 32},
        {"position": 2, "type": "Ticket.Opened", "aggregate_id": tid, "aggregate_version": 1,
         "occurred_at": "2026-01-02T09:00:00+00:00", "committed_at": "2026-01-02T09:00:00.5+00:00",
         "actor": {"kind": "token", "token_id": cid, "role": "customer"}, "fields": {"title": AWKWARD}, "hash": "cd" * 32},
        {"position": 3, "type": "Ticket.TimeConsumed", "aggregate_id": tid, "aggregate_version": 2,
         "occurred_at": "2026-01-02T10:00:00+00:00", "committed_at": "2026-01-02T10:00:00+00:00",
         "actor": {"kind": "open"}, "fields": {"minutes": 45, "kind": "work", "engineer": None}, "hash": "ef" * 32},
    ]
    return mysql.Contents(
        header={"contract_id": cid, "exported_at": "2026-02-01T00:00:00.000000Z", "rules_version": "2026.12.1",
                "head_hash": "ef" * 32, "events": 3, "position": 3},
        contract={"contract_id": cid, "customer": AWKWARD, "plan": "datacrm/basic", "status": "cancelled",
                  "time_zone": "America/Bogota", "starts_on": "2026-01-01", "terms": {"plan_id": "datacrm/basic"}},
        tickets=[{"ticket_id": tid, "title": AWKWARD, "reporter": "ana", "channel": "portal", "priority": "P2",
                  "category": None, "status": "open", "opened_at": "2026-01-02T09:00:00+00:00", "minutes": 45}],
        events=events,
        reports=[("ledger", "2026-01-01", {"unit": "minutes", "used": 45, "balance": 555}),
                 ("availability", "2026-01", {"availability_pct": 99.97, "met": True})],
    )



def test_a_dump_loads_into_mariadb_and_reads_back_every_row(tmp_path: Path) -> None:
    text = mysql.dump(_contents())
    with mariadb(tmp_path) as client:
        subprocess.run([*client, "-e", "CREATE DATABASE dump"], check=True)
        loaded = subprocess.run([*client, "dump"], input=text, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        # --raw keeps tabs and new lines inside values as they are: read the awkward text by its length and hash
        assert rows(client, "dump", "SELECT CHAR_LENGTH(customer), SHA2(customer, 256) = SHA2(%s, 256) FROM contract"
                     .replace("%s", mysql.literal(AWKWARD))) == [[str(len(AWKWARD)), "1"]]
        assert rows(client, "dump", "SELECT COUNT(*), SUM(title = " + mysql.literal(AWKWARD) + ") FROM tickets") == [["1", "1"]]
        assert rows(client, "dump", "SELECT position, type, hash FROM events ORDER BY position") == [
            ["1", "Contract.Signed", "ab" * 32], ["2", "Ticket.Opened", "cd" * 32], ["3", "Ticket.TimeConsumed", "ef" * 32]]
        assert rows(client, "dump", "SELECT ticket_id, minutes, kind, engineer IS NULL FROM time_entries") == [
            ["6b1f1c7e-2222-4a4a-8a8a-000000000002", "45", "work", "1"]]
        actor = rows(client, "dump", "SELECT actor FROM events WHERE position = 2")[0][0]
        assert json.loads(actor)["role"] == "customer"
        body = rows(client, "dump", "SELECT body FROM reports WHERE report = 'ledger'")[0][0]
        assert json.loads(body)["balance"] == 555
        assert rows(client, "dump", "SELECT head_hash, events, rules_version FROM export") == [["ef" * 32, "3", "2026.12.1"]]


@pytest.mark.parametrize("value", [None, True, 7, 2.5, "it's", {"a": ["b'c"]}])
def test_every_value_is_a_literal_mysql_reads_back(value: object) -> None:
    assert mysql.literal(value) in {"NULL", "1", "7", "2.5", "'it''s'", '\'{"a": ["b\'\'c"]}\''}
