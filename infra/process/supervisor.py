"""`ticketing run`: the servers (embedded unless configured), then the API, the relay and one
consumer per projection as child processes, each restarted if it dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from infra.process import embedded, lifeline, wiring
from infra.registry import PROJECTIONS
from infra.settings import Settings

log = structlog.get_logger("supervisor")


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = field(default=0.0)
    down_since: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "infra.process.cli", *self.args], env=env)
        self.started = time.monotonic()
        log.info("started", child=self.name, pid=self.process.pid)

    def revive(self, env: dict[str, str]) -> None:
        """Start the child again if it died: at once the first time, then backing off up to
        5 s while it keeps dying young (a child that lived a minute starts afresh)."""
        if self.process is None or self.process.poll() is None:
            return
        now = time.monotonic()
        if self.down_since is None:
            log.warning("child died; restarting", child=self.name, code=self.process.returncode)
            self.restarts = 0 if now - self.started > 60 else self.restarts + 1
            self.down_since = now
        if now - self.down_since >= min(5.0, 0.5 * self.restarts):
            self.down_since = None
            self.start(env)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def children() -> list[Child]:
    return [
        Child("api", ["api"]),
        Child("relay", ["relay"]),
        Child("renewals", ["renewals"]),
        *(Child(f"consume-{name}", ["consume", name, "--no-group"]) for name in PROJECTIONS),
    ]


def run(settings: Settings, stopped: Callable[[], bool]) -> int:
    """Run the backend until stopped; AlreadyRunning if another run holds the data dir."""
    held = lifeline.hold_data_dir(settings.data_dir, {"http": f"http://{settings.http_host}:{settings.http_port}"})
    try:
        return _run(settings, stopped)
    finally:
        held.close()


def _revive_broker(broker: embedded.Broker | None, settings: Settings) -> embedded.Broker | None:
    """The embedded broker again, on its port, if it died (it comes back empty: the relay
    notices the lost history and publishes everything again)."""
    if broker is None or broker.process.poll() is None:
        return broker
    log.warning("embedded broker died; restarting it", code=broker.process.returncode)
    port = int(broker.bootstrap.rpartition(":")[2])
    try:
        return embedded.start_broker(settings.data_dir, port)
    except RuntimeError as error:
        log.error("could not restart the embedded broker", error=str(error))
        return broker


def _run(settings: Settings, stopped: Callable[[], bool]) -> int:
    broker = None
    embedded_pg = not settings.database_url
    if embedded_pg:
        settings = settings.with_servers(embedded.start_postgres(settings.data_dir), settings.kafka_bootstrap or "")
        log.info("embedded PostgreSQL", url=settings.database_url)
    if not settings.kafka_bootstrap:
        if settings.kafka_port == settings.http_port or embedded.port_in_use(settings.kafka_port):
            raise embedded.PortTaken(
                f"port {settings.kafka_port} of the embedded broker is taken (by another program, or by the API's"
                " TICKETING_HTTP_PORT): stop it, or set TICKETING_KAFKA_PORT to a free port")
        broker = embedded.start_broker(settings.data_dir, settings.kafka_port)
        settings = settings.with_servers(settings.database_url or "", broker.bootstrap)
        log.info("embedded broker", bootstrap=broker.bootstrap)
    assert settings.database_url
    wiring.event_store(settings).close()  # creates the event store's tables before the index
    wiring.setup_database(settings.database_url)
    wiring.ensure_topic(settings)
    (settings.data_dir / "run.json").write_text(json.dumps({
        "database_url": settings.database_url, "kafka_bootstrap": settings.kafka_bootstrap,
        "http": f"http://{settings.http_host}:{settings.http_port}",
    }))
    env = settings.child_env() | {lifeline.PARENT: str(os.getpid())}
    kids = children()
    for kid in kids:
        kid.start(env)
    log.info("backend running", http=f"http://{settings.http_host}:{settings.http_port}")
    try:
        while not stopped():
            time.sleep(0.2)
            broker = _revive_broker(broker, settings)
            for kid in kids:
                kid.revive(env)
    finally:
        for kid in kids:
            kid.stop()
        if broker:
            broker.stop()
        if embedded_pg:
            embedded.stop_postgres(settings.data_dir)
    return 0
