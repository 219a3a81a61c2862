"""`ticketing run`: the servers (embedded unless configured), then the API, the relay and one
consumer per projection as child processes, each restarted if it dies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from infra import embedded, wiring
from infra.settings import Settings

log = structlog.get_logger("supervisor")


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "infra.cli", *self.args], env=env)
        self.started = time.monotonic()
        log.info("started", child=self.name, pid=self.process.pid)

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
        *(Child(f"consume-{name}", ["consume", name]) for name in wiring.PROJECTIONS),
    ]


def run(settings: Settings, stopped: Callable[[], bool]) -> int:
    broker = None
    embedded_pg = not settings.database_url
    if embedded_pg:
        settings = settings.with_servers(embedded.start_postgres(settings.data_dir), settings.kafka_bootstrap or "")
        log.info("embedded PostgreSQL", url=settings.database_url)
    if not settings.kafka_bootstrap:
        broker = embedded.start_broker(settings.data_dir)
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
    env = settings.child_env()
    kids = children()
    for kid in kids:
        kid.start(env)
    log.info("backend running", http=f"http://{settings.http_host}:{settings.http_port}")
    try:
        while not stopped():
            time.sleep(0.5)
            for kid in kids:
                if kid.process and kid.process.poll() is not None:
                    log.warning("child died; restarting", child=kid.name, code=kid.process.returncode)
                    kid.restarts += 1
                    time.sleep(min(5, 0.5 * kid.restarts))
                    kid.start(env)
    finally:
        for kid in kids:
            kid.stop()
        if broker:
            broker.stop()
        if embedded_pg:
            embedded.stop_postgres(settings.data_dir)
    return 0
