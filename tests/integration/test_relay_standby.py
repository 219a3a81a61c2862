"""Two relay processes on one topic, as a second `ticketing run` or an orphan would make:
one publishes, the other waits as a standby and takes over when the first is SIGKILLed
mid-stream. The topic ends with every event, repeated only in the crash window."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from infra.postgres import leases
from infra.postgres.store import ApplicationHost
from infra.settings import Settings
from tests.integration.helpers import eventually, positions_on_the_topic, relay_row, unique
from tests.integration.test_relay_and_runner import some_history

STANDBY = "standby: another process holds the role"


def start_relay(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "infra.process.cli", "relay"], stdout=out, stderr=subprocess.STDOUT,
                                env=settings.child_env() | {"TICKETING_JSON_LOGS": "1"})


def active_relay(url: str, topic: str) -> int | None:
    """The process id of the relay holding the topic's lease: its session is named after it."""
    with leases.connect(url, autocommit=True) as conn:
        pid = leases.holder(conn, f"relay:{topic}")
        row = conn.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    name = row[0] if row else ""
    return int(name.split(":")[1]) if name.startswith("ticketing-relay:") else None


def keep_writing(store: ApplicationHost, stop: threading.Event) -> threading.Thread:
    def write() -> None:
        while not stop.is_set():
            some_history(store)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_second_relay_waits_as_a_standby_and_takes_over_within_seconds_when_the_first_is_killed(
    servers: Settings, store: ApplicationHost, tmp_path: Path
) -> None:
    url, topic = servers.database_url or "", unique("events")
    settings = replace(servers, events_topic=topic)
    stop = threading.Event()
    writer = keep_writing(store, stop)
    logs = [tmp_path / f"relay{i}.log" for i in range(2)]
    started = [start_relay(settings, log) for log in logs]
    relays, logs_of = {p.pid: p for p in started}, {p.pid: log for p, log in zip(started, logs, strict=True)}
    try:
        eventually(lambda: active_relay(url, topic) in relays and relay_row(url, topic).get("position", 0) > 0)
        first = active_relay(url, topic)
        assert first is not None
        (standby,) = set(relays) - {first}
        eventually(lambda: STANDBY in logs_of[standby].read_text())
        stored_before_the_kill = relay_row(url, topic)["position"]
        relays.pop(first).send_signal(signal.SIGKILL)
        eventually(lambda: active_relay(url, topic) == standby, timeout=10)
        stop.set()
        writer.join(30)
        eventually(lambda: relay_row(url, topic).get("position", 0) >= store.head())
        assert_every_event_reached_the_topic(settings, store, stored_before_the_kill)
        assert sum(log.read_text().count(STANDBY) for log in logs) == 1, "the standby said so once"
    finally:
        stop.set()
        for proc in relays.values():
            proc.terminate()
            proc.wait(30)


def assert_every_event_reached_the_topic(settings: Settings, store: ApplicationHost, stored_before_the_kill: int) -> None:
    row = relay_row(settings.database_url or "", settings.events_topic)
    positions = positions_on_the_topic(settings.kafka_bootstrap or "", settings.events_topic, row["position"])
    stored = [n.id for n in store.recorder.select_notifications(start=1, limit=10**7, stop=row["position"])]
    first_seen = list(dict.fromkeys(positions))
    assert first_seen[: len(stored)] == stored, "every event, in store order"
    repeated = {p for p in positions if positions.count(p) > 1}
    assert all(p > stored_before_the_kill for p in repeated), "repeats only from the crash window"
    (count, last), = row["partitions"].values()
    assert row["published"] == count <= len(positions) and row["position"] == last
