"""PostgreSQL plumbing: connection pools, the event store's environment, and SQL files.

One SQL object (table, function) per file under sql/, with `{schema}` standing for the
schema it lives in, so every application and projection keeps its own schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.resources import files
from typing import TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

SQL_DIR = files(__name__) / "sql"  # package data, so an installed backend finds it too
STORE_SCHEMA = "es"
# What a lost or restarted PostgreSQL looks like, through psycopg or through the event store.
FAULTS = (psycopg.OperationalError, psycopg.InterfaceError, StoreOperationalError, StoreInterfaceError)


def sql(name: str, schema: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text().replace("{schema}", schema)


def execute_file(conn: psycopg.Connection, name: str, schema: str) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(sql(name, schema))


def make_pool(url: str, min_size: int = 1, max_size: int = 8, name: str = "ticketing") -> ConnectionPool:
    pool = ConnectionPool(url, min_size=min_size, max_size=max_size, name=name, open=False, timeout=2.0)
    pool.open(wait=True, timeout=30)
    return pool


T = TypeVar("T")


def run(pool: ConnectionPool, work: Callable[[psycopg.Connection], T], tries: int = 3) -> T:
    """Run idempotent `work` on a pooled connection. A dead connection (the server restarted)
    makes the pool drop all its dead connections, and the work runs again, `tries` times in all."""
    for attempt in range(tries):
        try:
            with pool.connection() as conn:
                return work(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if attempt == tries - 1:
                raise
            pool.check()
            time.sleep(0.1)
    raise AssertionError("unreachable")


def store_env(url: str, schema: str = STORE_SCHEMA, pool_size: int = 4) -> dict[str, str]:
    """The eventsourcing settings for the PostgreSQL behind `url`, in its own schema, with a
    pool of `pool_size` connections (loads, and the group committer's appends)."""
    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        # A waiting command gives up (503) rather than queueing forever behind a stuck writer.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "APPLICATION_RECORDER_TOPIC": "infra.postgres.recorder:TicketingRecorder",
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        # Kept off on purpose: with it on, readers can see ids out of commit order.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
    }


def ensure_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
