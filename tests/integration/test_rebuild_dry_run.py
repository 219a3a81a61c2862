"""`ticketing rebuild P --dry-run` shows, in business terms, what a rebuild would change and
switches nothing; `--switch` switches the prepared tables later (caught up first), `--abort`
drops them; `--from kafka` builds what `--from store` builds; tables record the rules they were
built with and a runner of other rules refuses to write into them; a switch is announced once.

The old rules are stood for by live rows set to what they would have derived (a response due
before it came: `missed` where today's rules say `met`; a balance with minutes the rules never
charged), so that the comparison has a known difference to find among everything else."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from consumers.outbox import NOTICE_ID
from domain.rules import RULES_VERSION
from infra.kafka.notices import REBUILD_TOPIC, decode_rebuilt
from infra.postgres import leases, rebuild
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from tests.factories import contract, post, ticket
from tests.integration.helpers import eventually, read_partition
from tests.integration.test_rebuild import answered
from tests.processes import Processes

TERMINAL = "terminal.txt"  # where `cli` keeps the last command's standard error (its summary, its bars)


def cli(settings: Settings, cwd: Path, *args: str, code: int = 0) -> str:
    """`ticketing ...` in its own process, in `cwd`; its standard output."""
    done = subprocess.run([sys.executable, "-m", "infra.process.cli", *args], env=settings.child_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == code, done.stderr
    (cwd / TERMINAL).write_text(done.stderr)
    return done.stdout


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def schema_exists(url: str, schema: str) -> bool:
    return bool(rows(url, "SELECT 1 FROM pg_namespace WHERE nspname = %s", schema))


def test_a_dry_run_names_each_flipped_verdict_switches_nothing_and_its_later_switch_equals_a_clean_rebuild(
    backend: Processes, store: ApplicationHost, client: httpx.Client, tmp_path: Path
) -> None:
    settings, url = backend.settings, backend.settings.database_url or ""
    cid = contract(client)
    t1, t2 = ticket(client, cid, priority="P2"), ticket(client, cid)
    last = post(client, f"/tickets/{t1}/respond")["position"]
    assert answered(client, f"/tickets/{t1}/sla", last)["response"]["status"] == "met"
    (real,) = rows(url, "SELECT response_due_at, response_stopped_at FROM proj_sla.sla_tickets WHERE ticket_id = %s",
                   t1)
    with psycopg.connect(url, autocommit=True) as conn:  # the old rules had it due an hour before it came
        conn.execute("UPDATE proj_sla.sla_tickets SET response_due_at = response_stopped_at - interval '1 hour'"
                     " WHERE ticket_id = %s", (t1,))
    old_due = (real["response_stopped_at"] - timedelta(hours=1)).isoformat()

    out = json.loads(cli(settings, tmp_path, "rebuild", "sla", "--dry-run"))

    assert out["switched"] is False and out["rules_version"] == RULES_VERSION and out["verdicts_flipped"] >= 1
    terminal = (tmp_path / TERMINAL).read_text()
    assert f"{out['verdicts_flipped']} verdicts flipped" in terminal and "status" in terminal
    csv_file, json_file = (Path(f) for f in out["files"])
    assert {csv_file.parent, json_file.parent} == {tmp_path} and csv_file.name.startswith("rebuild-sla-")
    listed = json.loads(json_file.read_text())["list"]
    mine = {(c["clock"], c["field"], c["before"], c["after"], c["verdict"]) for c in listed if c["ticket_id"] == t1}
    assert mine == {("response", "due_at", old_due, real["response_due_at"].isoformat(), False),
                    ("response", "status", "missed", "met", True)}
    assert not [c for c in listed if c["ticket_id"] == t2]
    with csv_file.open(newline="") as f:
        found = [r for r in csv.DictReader(f) if r["ticket_id"] == t1 and r["field"] == "status"]
    assert found == [{"projection": "sla", "contract_id": cid, "ticket_id": t1, "clock": "response", "period": "",
                      "field": "status", "before": "missed", "after": "met", "verdict": "true"}]
    # Nothing switched: the live row is as it was, the prepared tables wait, the runner serves on.
    (live,) = rows(url, "SELECT response_due_at FROM proj_sla.sla_tickets WHERE ticket_id = %s", t1)
    assert live["response_due_at"].isoformat() == old_due and schema_exists(url, "proj_sla__new")
    t3 = ticket(client, cid)
    last = post(client, f"/tickets/{t2}/respond")["position"]
    assert answered(client, f"/tickets/{t2}/sla", last)["response"]["status"] == "met"

    out = json.loads(cli(settings, tmp_path, "rebuild", "sla", "--switch"))

    assert out["switched"] is True and out["verdicts_flipped"] >= 1 and not schema_exists(url, "proj_sla__new")
    (notice,) = rows(url, "SELECT notice_id, value FROM proj_sla.outbox WHERE topic = %s ORDER BY id DESC LIMIT 1",
                     REBUILD_TOPIC)
    assert client.get(f"/tickets/{t1}/sla").json()["response"]["status"] == "met"
    (built,) = rows(url, "SELECT rules_version, switched_at FROM proj_sla.built")
    assert built["rules_version"] == RULES_VERSION and built["switched_at"] is not None
    last = post(client, f"/tickets/{t3}/respond")["position"]  # the live runner writes into the switched tables
    assert answered(client, f"/tickets/{t3}/sla", last)["response"]["status"] == "met"
    # They are what a clean rebuild gives: one more rebuild changes no row of the contract.
    again = rebuild.rebuild(wiring.PROJECTIONS["sla"], store, url, settings.events_topic, settings.partitions,
                            show_progress=False)
    for table in ("sla_tickets", "sla_contracts"):
        switched, clean = (rows(url, f"SELECT * FROM {schema}.{table} WHERE contract_id = %s ORDER BY 1", cid)
                           for schema in (again.old_schema, "proj_sla"))
        assert switched == clean and switched
    assert [c for c in again.business if c.contract_id == cid] == []
    # The switch was announced once, by the runner's outbox publisher.
    record = decode_rebuilt(bytes(notice["value"]))
    assert (record["projection"], record["rules_version"], record["verdicts_flipped"]) == (
        "sla", RULES_VERSION, out["verdicts_flipped"])

    def announced(messages: list[Any]) -> list[Any]:
        return [m for m in messages if (NOTICE_ID, notice["notice_id"].encode()) in m.headers]

    sent = read_partition(settings.kafka_bootstrap or "", REBUILD_TOPIC, 0, lambda ms: bool(announced(ms)))
    assert len(announced(sent)) == 1
    rebuild.drop_old(url, wiring.PROJECTIONS["sla"])


def test_a_dry_run_of_the_ledger_names_the_balance_shows_its_progress_and_abort_drops_it(
    backend: Processes, client: httpx.Client, tmp_path: Path
) -> None:
    settings, url = backend.settings, backend.settings.database_url or ""
    cid = contract(client)
    last = post(client, f"/tickets/{ticket(client, cid)}/time", minutes=30, kind="work")["position"]
    ledger = answered(client, f"/contracts/{cid}/ledger", last)
    with psycopg.connect(url, autocommit=True) as conn:  # the old rules charged ten hours more
        conn.execute("UPDATE proj_ledger.periods SET used = used + 600 WHERE contract_id = %s", (cid,))
    try:
        out = json.loads(cli(settings, tmp_path, "rebuild", "ledger", "--dry-run"))
        listed = json.loads(Path(out["files"][1]).read_text())["list"]
        mine = {(c["period"], c["field"], c["before"], c["after"]) for c in listed if c["contract_id"] == cid}
        assert (ledger["period"], "balance", str(ledger["balance"] - 600), str(ledger["balance"])) in mine
        metrics = client.get("/metrics").text.splitlines()
        gauges = [float(line.split()[-1]) for name in ("position", "target_position") for line in metrics
                  if line.startswith(f'ticketing_rebuild_{name}{{projection="ledger"}}')]
        assert len(gauges) == 2 and gauges[0] == gauges[1] >= last  # the fill reached what it aimed at
        with leases.connect(url, autocommit=True) as other:  # another rebuild of the ledger is running
            assert leases.try_lock(other, "rebuild:ledger")
            cli(settings, tmp_path, "rebuild", "ledger", "--abort", code=1)
            assert "another rebuild of ledger is running" in (tmp_path / TERMINAL).read_text()
        with psycopg.connect(url, autocommit=True) as conn:  # prepared by code of other rules
            conn.execute("UPDATE proj_ledger__new.built SET rules_version = '1999.1.1'")
        cli(settings, tmp_path, "rebuild", "ledger", "--switch", code=1)
        assert "built with rules 1999.1.1" in (tmp_path / TERMINAL).read_text()

        assert "dropped the prepared rebuild of ledger" in cli(settings, tmp_path, "rebuild", "ledger", "--abort")

        assert not schema_exists(url, "proj_ledger__new")
        assert 'ticketing_rebuild_position{projection="ledger"}' not in client.get("/metrics").text
        cli(settings, tmp_path, "rebuild", "ledger", "--switch", code=1)
        assert client.get(f"/contracts/{cid}/ledger").json()["balance"] == ledger["balance"] - 600  # still the old
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE proj_ledger.periods SET used = used - 600 WHERE contract_id = %s", (cid,))


def test_a_rebuild_from_the_topic_prepares_the_same_tables_as_one_from_the_store(
    backend: Processes, store: ApplicationHost, client: httpx.Client
) -> None:
    settings, url = backend.settings, backend.settings.database_url or ""
    cid = contract(client, plan="dolibarr/credits")
    post(client, f"/contracts/{cid}/credits", credits=600)
    for kind, minutes in (("query", 10), ("intervention", 50), ("update", 5)):
        last = post(client, f"/tickets/{ticket(client, cid)}/time", minutes=minutes, kind=kind)["position"]
    answered(client, f"/contracts/{cid}/ledger", last)
    spec, built = wiring.PROJECTIONS["ledger"], {}
    for source in ("store", "kafka"):
        rebuild.dry_run(spec, store, url, settings.events_topic, settings.partitions, show_progress=False,
                        source=source, bootstrap=settings.kafka_bootstrap)
        built[source] = {t: rows(url, f"SELECT * FROM proj_ledger__new.{t} ORDER BY 1, 2")
                         for t in ("contracts", "periods", "entries", "tickets", "statements")}
        built[source]["built"] = rows(url, "SELECT position, target, source FROM proj_ledger__new.built")
        assert rebuild.abort(url, spec)
    assert [r["source"] for r in built["kafka"].pop("built")] == ["kafka"]
    assert [r["source"] for r in built["store"].pop("built")] == ["store"]
    assert built["kafka"] == built["store"]
    assert any(r["contract_id"] == cid for r in built["kafka"]["entries"])


def test_a_runner_refuses_to_write_into_tables_built_with_other_rules_and_says_why(
    backend: Processes, client: httpx.Client
) -> None:
    url = backend.settings.database_url or ""
    (before,) = rows(url, "SELECT count(*) AS n FROM proj_tickets.built")
    with psycopg.connect(url, autocommit=True) as conn:
        saved = conn.execute("SELECT rules_version FROM proj_tickets.built").fetchone()
        conn.execute("INSERT INTO proj_tickets.built (rules_version, source, position, target)"
                     " VALUES ('1999.1.1', 'store', 0, 0)"
                     " ON CONFLICT (one) DO UPDATE SET rules_version = EXCLUDED.rules_version")
    try:
        tid = ticket(client, contract(client))

        def refusing() -> bool:
            return bool(client.get("/health").json()["checks"]["projection:tickets"] == "rules version differs")

        eventually(refusing, timeout=30)
        assert client.get("/health").status_code == 503
        assert rows(url, "SELECT 1 FROM proj_tickets.tickets WHERE ticket_id = %s", tid) == []
        (beat,) = rows(url, "SELECT refused FROM proj_tickets.heartbeat")
        assert "1999.1.1" in beat["refused"] and RULES_VERSION in beat["refused"]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            if saved is None:
                conn.execute("DELETE FROM proj_tickets.built")
            else:
                conn.execute("UPDATE proj_tickets.built SET rules_version = %s", saved)
    assert before["n"] == len(rows(url, "SELECT 1 FROM proj_tickets.built"))
    eventually(lambda: client.get(f"/tickets/{tid}").status_code == 200, timeout=30)
    eventually(lambda: client.get("/health").json()["checks"]["projection:tickets"] == "ok", timeout=30)


def test_a_dry_run_of_availability_names_the_month_whose_downtime_and_verdict_change(
    backend: Processes, store: ApplicationHost, client: httpx.Client
) -> None:
    settings, url = backend.settings, backend.settings.database_url or ""
    cid = contract(client, plan="datacrm/standard")
    tid = ticket(client, cid, category="system-down", at="2026-03-10T10:00:00-05:00")
    last = post(client, f"/tickets/{tid}/restore", at="2026-03-10T10:10:00-05:00")["position"]
    answered(client, f"/contracts/{cid}/availability", last)
    now = client.get(f"/contracts/{cid}/availability", params={"month": "2026-03"}).json()
    assert (now["downtime_minutes"], now["met"]) == (10, True)
    with psycopg.connect(url, autocommit=True) as conn:  # the old rules counted the outage an hour longer
        conn.execute("UPDATE proj_availability.availability_outages SET ends_at = ends_at + interval '1 hour'"
                     " WHERE ticket_id = %s", (tid,))
    spec = wiring.PROJECTIONS["availability"]
    try:
        found = rebuild.dry_run(spec, store, url, settings.events_topic, settings.partitions, show_progress=False)
    finally:
        rebuild.abort(url, spec)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE proj_availability.availability_outages SET ends_at = ends_at - interval '1 hour'"
                         " WHERE ticket_id = %s", (tid,))
    mine = {(c.period, c.field, c.before, c.after) for c in found.business if c.contract_id == cid}
    assert ("2026-03", "downtime_minutes", "70", "10") in mine and ("2026-03", "met", "false", "true") in mine
    assert {field for _, field, _, _ in mine} == {"downtime_minutes", "availability_pct", "met"}
    assert [c.verdict for c in found.business if c.contract_id == cid and c.field == "met"] == [True]
