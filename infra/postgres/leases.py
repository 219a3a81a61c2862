"""Single-writer roles: PostgreSQL advisory locks held by a connection with TCP keepalives.

A role (the relay of a topic, the renewals pass, a projection's tick and outbox, a
(projection, partition) being applied) runs in one process at a time: the process holds a
session-level advisory lock on a connection of its own, and a second process waits as a
standby, polling, until the first one's connection ends. PostgreSQL releases the lock the
moment that connection closes (a process that dies closes its sockets), and within about
30 s when a whole machine dies: the server probes the idle connection with TCP keepalives
(10 s idle, then every 4 s, 5 probes). Whatever a role writes should go through the
connection that holds its lock, so that a process which lost its lock cannot write either.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import structlog

log = structlog.get_logger("leases")

# Client side: notice a dead server; server side: release a dead client's locks (about 30 s).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 4, "keepalives_count": 5,
              "connect_timeout": 5}
SERVER_KEEPALIVES = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 4",
                     "SET tcp_keepalives_count = 5")
NAMESPACE = "ticketing"


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    """A connection for a role's lock (and its writes), with keepalives both ways."""
    conn = psycopg.connect(url, autocommit=True, **KEEPALIVES)  # type: ignore[arg-type]  # libpq options, passed through
    for statement in SERVER_KEEPALIVES:
        conn.execute(statement)
    conn.autocommit = autocommit
    return conn


def try_lock(conn: psycopg.Connection, role: str) -> bool:
    """Take the role's lock if it is free; the caller's transaction state is left as it was."""
    row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (NAMESPACE, role)).fetchone()
    if not conn.autocommit:
        conn.commit()  # a session lock outlives the transaction; do not leave one open
    return bool(row and row[0])


def unlock(conn: psycopg.Connection, role: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (NAMESPACE, role))
    if not conn.autocommit:
        conn.commit()


def acquire(conn: psycopg.Connection, role: str, stop: Callable[[], bool] = lambda: False,
            poll: float = 0.5) -> bool:
    """Wait as a standby until the role's lock is ours (True), or until stopped (False)."""
    waited = False
    while not stop():
        if try_lock(conn, role):
            if waited:
                log.info("took over", role=role)
            return True
        if not waited:
            log.info("standby: another process holds the role", role=role)
            waited = True
        time.sleep(poll)
    return False


def holder(conn: psycopg.Connection, role: str) -> int | None:
    """The server process id of the session holding the role's lock, if any (for status)."""
    row = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
        " AND classid = hashtext(%s)::oid AND objid = hashtext(%s)::oid", (NAMESPACE, role)).fetchone()
    return int(row[0]) if row else None
