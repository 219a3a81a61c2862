"""Exports over HTTP and on the command line (docs/audit.md): a contract with tickets, time
and an outage exported as jsonl and as avro; each file's head is the proof taken right after;
`ticketing verify FILE` checks each with no database and no broker and names the position of
an event whose byte was altered; the avro file reads with fastavro and the official `avro`
package; each export is recorded as `Contract.Exported` with its actor and format, and no
read model changes because of it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import avro.datafile
import avro.io
import fastavro
import httpx
import psycopg
import pytest

from infra.registry import PROJECTIONS
from tests.e2e.conftest import ADMIN_TOKEN
from tests.factories import contract, history, post, ticket
from tests.processes import Processes

MONTH = "2026-03"


@pytest.fixture(scope="module")
def exported_contract(base_url: str) -> dict[str, Any]:
    """A contract with a system-down ticket (an outage, restored) and another ticket, time
    booked on both, both resolved; the position of its last command."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        cid = contract(client, "sf-partner/platinum")
        down = ticket(client, cid, title="Portal down", priority="P1", category="system-down",
                      down_since="2026-03-02T09:00:00Z", at="2026-03-02T09:05:00Z")
        post(client, f"/tickets/{down}/respond", at="2026-03-02T09:20:00Z")
        post(client, f"/tickets/{down}/time", minutes=45, kind="intervention", engineer="Bo", at="2026-03-02T10:00:00Z")
        post(client, f"/tickets/{down}/restore", at="2026-03-02T11:00:00Z")
        post(client, f"/tickets/{down}/resolve", reason="fixed", at="2026-03-02T11:30:00Z")
        other = ticket(client, cid, title="Report slow", priority="P3", at="2026-03-03T09:00:00Z")
        post(client, f"/tickets/{other}/time", minutes=20, kind="work", at="2026-03-03T10:00:00Z")
        # Resolved: no clock runs on, so every read answers the same at any later instant.
        position = post(client, f"/tickets/{other}/resolve", at="2026-03-03T12:00:00Z")["position"]
    return {"contract_id": cid, "tickets": [down, other], "position": position}


def reads(client: httpx.Client, cid: str, tickets: list[str], position: int) -> dict[str, Any]:
    """What the read models answer of the contract, once they have consumed `position`."""
    monthly = {"month": MONTH}
    paths = [(f"/contracts/{cid}/ledger", {}), (f"/contracts/{cid}/tickets", {}), (f"/contracts/{cid}/sla", monthly),
             (f"/contracts/{cid}/availability", monthly), *((f"/tickets/{t}/sla", {}) for t in tickets),
             (f"/tickets/{tickets[0]}/statement", {})]
    answers = {}
    for path, params in paths:
        answer = client.get(path, params={**params, "wait_for": position})
        assert answer.status_code == 200, (path, answer.text)
        answers[path] = {k: v for k, v in answer.json().items() if k != "as_of"}  # the instant asked at
    return answers


def verify(path: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`ticketing verify FILE` with no database and no broker: no DATABASE_URL, no broker, and a
    data directory that does not exist (an embedded PostgreSQL would be started there)."""
    nowhere = tmp_path / "no-data-dir"
    env = {"PATH": "/usr/bin:/bin", "TICKETING_DATA_DIR": str(nowhere), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "infra.process.cli", "verify", str(path), *options], env=env,
                          capture_output=True, text=True, timeout=60)
    assert not nowhere.exists()
    return done


def flip_inside(data: bytes, needle: bytes) -> bytes:
    """The file with one byte changed in the middle of `needle` (found once)."""
    assert data.count(needle) == 1
    spot = data.index(needle) + len(needle) // 2
    return data[:spot] + bytes([data[spot] ^ 0x01]) + data[spot + 1:]


@pytest.mark.parametrize("kind", ["jsonl", "avro"])
def test_an_export_reaches_the_proof_taken_then_and_verifies_from_the_file_alone(
        kind: str, client: httpx.Client, exported_contract: dict[str, Any], tmp_path: Path,
        db: psycopg.Connection) -> None:
    cid, tickets = exported_contract["contract_id"], exported_contract["tickets"]
    before = reads(client, cid, tickets, exported_contract["position"])
    answer = client.get(f"/contracts/{cid}/export", params={"format": kind})
    proof = client.get(f"/contracts/{cid}/proof").json()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == {"jsonl": "application/jsonl", "avro": "application/avro"}[kind]
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"contract-{cid}-" in disposition and disposition.endswith(f'.{kind}"')
    data = answer.content

    if kind == "jsonl":
        lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
        header, events = lines[0], lines[1:]
        types = [e["type"] for e in events]
        assert events[-1]["fields"] == {"format": "jsonl"}
    else:
        fast = fastavro.reader(io.BytesIO(data))
        records = list(fast)
        header = {k.removeprefix("ticketing."): v for k, v in fast.metadata.items() if k.startswith("ticketing.")}
        header["events"], header["position"] = int(header["events"]), int(header["position"])
        types = [r["event"]["envelope"]["event_type"] for r in records]
        official = avro.datafile.DataFileReader(io.BytesIO(data), avro.io.DatumReader())
        read = list(official)
        assert official.get_meta("ticketing.head_hash").decode() == header["head_hash"]
        assert [r["event"]["envelope"]["event_type"] for r in read] == types
        assert [r["hash"].hex() for r in read] == [r["hash"].hex() for r in records]
        assert read[-1]["event"]["format"] == "avro"
    assert (header["head_hash"], header["events"], header["position"]) == (
        proof["head_hash"], proof["events"], proof["position"])
    assert header["contract_id"] == cid and header["plan"] == "sf-partner/platinum" and header["rules_version"]
    assert types[0] == "Contract.Signed" and types[-1] == "Contract.Exported"
    assert {"Ticket.Opened", "Ticket.TimeConsumed", "Ticket.Restored", "Ticket.Resolved"} <= set(types)

    exported = [e for e in history(client, cid) if e["type"] == "Contract.Exported"]
    assert exported[-1]["format"] == kind and exported[-1]["actor"] == {"kind": "open"}
    assert exported[-1]["position"] == proof["position"]
    after = reads(client, cid, tickets, proof["position"])  # the read models have passed the export by
    for path, answer in before.items():
        assert after[path] == answer, path
    for spec in PROJECTIONS.values():  # passed by as ignored, not parked as poison
        parked = db.execute(f"SELECT position FROM {spec.schema}.dead_letter WHERE position = %s", (proof["position"],))
        assert parked.fetchall() == [], spec.name

    whole = tmp_path / f"whole.{kind}"
    whole.write_bytes(data)
    summary = verify(whole, tmp_path)
    assert summary.returncode == 0 and "WHOLE" in summary.stdout, summary.stdout + summary.stderr
    assert MONTH in summary.stdout and "availability" in summary.stdout and "ledger" in summary.stdout
    done = verify(whole, tmp_path, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WHOLE" in done.stdout and cid in done.stdout and proof["head_hash"] in done.stdout
    # the figures it recomputes from the file alone are the API's answers as known at the export
    figures = json.loads(done.stdout[done.stdout.index("{", done.stdout.index("figures as of")):])
    known = {"known_at": exported[-1]["committed_at"]}
    for report, key in (("sla", MONTH), ("availability", MONTH)):
        api = client.get(f"/contracts/{cid}/{report}", params={**known, "month": MONTH}).json()
        assert figures[report][key] == api, report
    ledger = client.get(f"/contracts/{cid}/ledger", params=known).json()
    assert figures["ledger"][ledger["period"]] == ledger

    # One byte of the state of the outage's opening event, altered in a copy.
    opened = next(e for e in history(client, cid) if e["type"] == "Ticket.Opened")
    if kind == "jsonl":
        line = next(e for e in events if e["position"] == opened["position"])
        needle = line["state"].encode()
    else:
        needle = next(r["state"] for r in records if r["position"] == opened["position"])
    broken = tmp_path / f"broken.{kind}"
    broken.write_bytes(flip_inside(data, needle))
    done = verify(broken, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"BROKEN at position {opened['position']}" in done.stdout


def test_the_export_command_writes_the_same_file_format_and_records_the_system_as_its_actor(
        client: httpx.Client, exported_contract: dict[str, Any], backend: Processes, tmp_path: Path) -> None:
    cid = exported_contract["contract_id"]
    out = tmp_path / "by-the-operator.avro"
    done = subprocess.run([sys.executable, "-m", "infra.process.cli", "export", cid, "--format", "avro", "--out", str(out)],
                          env=backend.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    proof = client.get(f"/contracts/{cid}/proof").json()
    assert proof["head_hash"] in done.stdout
    assert fastavro.reader(io.BytesIO(out.read_bytes())).metadata["ticketing.head_hash"] == proof["head_hash"]
    assert verify(out, tmp_path).returncode == 0
    last = history(client, cid)[-1]
    assert (last["type"], last["format"], last["actor"]) == ("Contract.Exported", "avro", {"kind": "system"})
    unknown = subprocess.run([sys.executable, "-m", "infra.process.cli", "export", "00000000-0000-4000-8000-000000000000",
                              "--format", "jsonl", "--out", str(tmp_path / "none.jsonl")],
                             env=backend.env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and "no contract" in unknown.stderr and not (tmp_path / "none.jsonl").exists()


def test_an_auditor_exports_and_is_named_as_its_actor_a_customer_may_not(
        guarded_api: str, exported_contract: dict[str, Any]) -> None:
    cid = exported_contract["contract_id"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    issued = httpx.post(f"{guarded_api}/tokens", headers=admin, json={"role": "auditor"}).json()
    customer = httpx.post(f"{guarded_api}/tokens", headers=admin, json={"role": "customer", "contracts": [cid]}).json()
    url = f"{guarded_api}/contracts/{cid}/export"
    assert httpx.get(url, params={"format": "jsonl"}, headers={"Authorization": f"Bearer {customer['token']}"}
                     ).status_code == 403
    answer = httpx.get(url, params={"format": "jsonl"}, headers={"Authorization": f"Bearer {issued['token']}"})
    assert answer.status_code == 200, answer.text
    last = json.loads(answer.content.splitlines()[-1])
    assert last["type"] == "Contract.Exported"
    assert last["actor"] == {"kind": "token", "token_id": issued["token_id"], "role": "auditor"}


def test_an_unknown_contract_or_format_records_nothing(client: httpx.Client, exported_contract: dict[str, Any]) -> None:
    cid = exported_contract["contract_id"]
    proof = client.get(f"/contracts/{cid}/proof").json()
    assert client.get("/contracts/00000000-0000-4000-8000-000000000000/export", params={"format": "jsonl"}
                      ).status_code == 404
    assert client.get(f"/contracts/{cid}/export", params={"format": "xml"}).status_code == 422
    assert client.get(f"/contracts/{cid}/export").status_code == 422
    assert client.get(f"/contracts/{cid}/proof").json() == proof
