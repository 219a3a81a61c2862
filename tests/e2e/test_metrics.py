"""GET /metrics, as an operator's Prometheus scrapes it: the pipeline's positions, lags and
counts with the names of docs/design.md, and the command latency histogram."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import contract, post, ticket
from tests.processes import Processes


def scrape(client: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_metrics_follow_the_pipeline_and_the_commands(client: httpx.Client) -> None:
    cid = contract(client)
    tid = ticket(client, cid)
    position = post(client, f"/tickets/{tid}/respond")["position"]
    for read in (f"/tickets/{tid}", f"/tickets/{tid}/sla", f"/contracts/{cid}/ledger", f"/contracts/{cid}/availability"):
        assert client.get(read, params={"wait_for": position}).status_code == 200
    deadline = time.monotonic() + 20
    while True:  # the relay's position is stored a moment after the runners saw its messages
        m = scrape(client)
        head = m["ticketing_store_head_position"][()]
        if m["ticketing_relay_position"][()] >= position or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert head >= position and m["ticketing_relay_position"][()] >= position
    assert m["ticketing_relay_lag_events"][()] == head - m["ticketing_relay_position"][()]
    for projection in ("tickets", "sla", "ledger", "availability"):
        labels = (("projection", projection),)
        assert m["ticketing_projection_position"][labels] >= position
        assert m["ticketing_projection_lag_events"][labels] == head - m["ticketing_projection_position"][labels]
        assert m["ticketing_projection_lag_seconds"][labels] >= 0
        assert m["ticketing_projection_applied_total"][labels] + m["ticketing_projection_ignored_total"][labels] > 0
        assert labels in m["ticketing_projection_parked_total"]
        assert 0 <= m["ticketing_projection_dead_letters"][labels] <= m["ticketing_projection_parked_total"][labels]
    commands = m["ticketing_command_seconds_count"]
    respond = (("route", "/tickets/{ticket_id}/respond"), ("status", "200"))
    assert commands[respond] >= 1 and commands[(("route", "/contracts"), ("status", "201"))] >= 1


def test_ticketing_status_shows_the_broker_the_positions_and_the_leases(client: httpx.Client, backend: Processes) -> None:
    position = post(client, "/contracts", 201, customer="Acme", plan="crm-experts/gold", starts_on="2026-01-01")["position"]
    done = subprocess.run([sys.executable, "-m", "infra.process.cli", "status"], env=backend.env | {"COLUMNS": "250"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"broker   {backend.settings.kafka_bootstrap}" in done.stdout
    head = int(done.stdout.split("head position ")[1].split()[0])
    assert head >= position
    for part in ("relay", "tickets", "sla", "ledger", "availability"):
        assert any(line.strip("│ ").startswith(part) for line in done.stdout.splitlines()), part
    assert "tick:sla: held" in done.stdout and "relay: held" in done.stdout
