"""Where the embedded broker listens: on TICKETING_KAFKA_PORT (9092 unless set), so a local
consumer finds it; a port already taken makes `ticketing run` say so and exit."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from infra.kafka.avro import H_TYPE
from infra.process import embedded
from infra.settings import EVENTS_TOPIC, Settings
from tests.backends import COMMAND, environment, stop
from tests.factories import contract
from tests.processes import Processes


def test_the_embedded_broker_listens_where_a_local_consumer_is_told_to_look(tmp_path: Path) -> None:
    data, port = tmp_path / "var", embedded.free_port()
    data.mkdir()
    kafka_port = embedded.free_port(avoid={port})
    env = dict(environment(data, port), TICKETING_KAFKA_PORT=str(kafka_port))
    proc = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        Processes(Settings(data_dir=data, http_port=port)).wait_healthy(90)
        bootstrap = json.loads((data / "run.json").read_text())["kafka_bootstrap"]
        assert bootstrap == f"127.0.0.1:{kafka_port}"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            contract(client)
        # what the README tells a downstream consumer: bootstrap 127.0.0.1:<TICKETING_KAFKA_PORT>, the events topic
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
        try:
            consumer.assign([TopicPartition(EVENTS_TOPIC, 0)])
            consumer.seek_to_beginning()
            first = next(iter(consumer))
        finally:
            consumer.close()
        assert dict(first.headers)[H_TYPE] == b"Contract.Signed"
        # An operator's command beside it, on the same data dir, works on the same backend.
        dry = subprocess.run([*COMMAND[:-1], "rebuild", "tickets", "--dry-run"], env=env, capture_output=True, cwd=tmp_path,
                             text=True, timeout=120)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["events"] >= 1
        assert subprocess.run([*COMMAND[:-1], "rebuild", "tickets", "--abort"], env=env, capture_output=True,
                              timeout=120).returncode == 0
    finally:
        stop(proc)


def test_a_taken_broker_port_stops_ticketing_run_with_the_reason(tmp_path: Path) -> None:
    data, port = tmp_path / "var", embedded.free_port()
    data.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = dict(environment(data, port), TICKETING_KAFKA_PORT=str(busy))
        done = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"port {busy}" in done.stderr and "TICKETING_KAFKA_PORT" in done.stderr
