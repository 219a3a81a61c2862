"""Where every part of the pipeline stands, read from PostgreSQL in one transaction: the
store's head, the relay's position, each projection's watermark and counts, the notices
waiting in the outboxes, heartbeats and the holders of the single-writer leases. The API's
`GET /metrics` and `ticketing status` show the same figures.

Lags are in events (the head minus a position) and in seconds (how long the oldest event not
yet past that position has been committed; 0 when nothing waits). A rebuild being prepared
(`proj_<name>__new`) shows the position its fill has applied and the one it heads for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from infra.postgres import leases


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    lag_events: int
    lag_seconds: float
    applied: int
    ignored: int
    parked: int  # ever parked (a counter: settling a dead letter does not lower it)
    dead_letters: int  # parked and not settled yet (a gauge)
    notices_pending: dict[str, int]
    heartbeat_age: float | None
    leases: dict[str, int | None]  # lease name -> server pid of its holder (None: nobody)
    rebuild: tuple[int, int] | None = None  # a prepared rebuild's position and target (None: none)
    refused: str | None = None  # why its runner refuses to write (a rules version that differs)


@dataclass(frozen=True)
class Status:
    head: int
    relay_position: int
    relay_lag_events: int
    relay_lag_seconds: float
    relay_heartbeat_age: float | None
    relay_blocked: int | None
    relay_lease: int | None
    projections: list[ProjectionStatus] = field(default_factory=list)


def _age(conn: psycopg.Connection, after: int, head: int, table: str) -> float:
    """Seconds since the first event after `after` was committed (0 when none waits)."""
    if after >= head:
        return 0.0
    row = conn.execute(f"SELECT extract(epoch FROM now() - committed_at) FROM {table}"
                       " WHERE notification_id > %s ORDER BY notification_id LIMIT 1", (after,)).fetchone()
    return max(0.0, float(row[0])) if row and row[0] is not None else 0.0


def _one(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    try:
        with conn.transaction():
            row = conn.execute(query, params).fetchone()
    except psycopg.errors.UndefinedTable:  # a part that has not started yet
        return None
    return row[0] if row else None


def read(url: str, topic: str, projections: list[str], store_table: str, partitions: int = 1) -> Status:
    with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
        head = int(_one(conn, f"SELECT coalesce(max(notification_id), 0) FROM {store_table}") or 0)
        relay = int(_one(conn, "SELECT position FROM relay.position WHERE topic = %s", (topic,)) or 0)
        status = Status(
            head=head, relay_position=relay, relay_lag_events=max(0, head - relay),
            relay_lag_seconds=_age(conn, relay, head, store_table),
            relay_heartbeat_age=_float(_one(conn, "SELECT extract(epoch FROM now() - beat_at) FROM relay.heartbeat"
                                                  " WHERE topic = %s", (topic,))),
            relay_blocked=_one(conn, "SELECT blocked_position FROM relay.position WHERE topic = %s", (topic,)),
            relay_lease=leases.holder(conn, f"relay:{topic}"),
        )
        for name in projections:
            schema = f"proj_{name}"
            position = int(_one(conn, f"SELECT position FROM {schema}.watermark WHERE topic = %s", (topic,)) or 0)
            counts = _one(conn, f"SELECT array[applied, ignored] FROM {schema}.tally WHERE topic = %s", (topic,))
            pending: dict[str, int] = {}
            try:
                with conn.transaction():
                    pending = dict(conn.execute(f"SELECT topic, count(*) FROM {schema}.outbox"
                                                " WHERE published_at IS NULL GROUP BY topic").fetchall())
            except psycopg.errors.UndefinedTable:
                pass
            status.projections.append(ProjectionStatus(
                name=name, position=position, lag_events=max(0, head - position),
                lag_seconds=_age(conn, position, head, store_table),
                applied=int(counts[0]) if counts else 0, ignored=int(counts[1]) if counts else 0,
                parked=int(_one(conn, f"SELECT count(*) FROM {schema}.dead_letter") or 0),
                dead_letters=int(_one(conn, f"SELECT count(*) FROM {schema}.dead_letter WHERE status = 'parked'") or 0),
                notices_pending=pending,
                heartbeat_age=_float(_one(conn, f"SELECT extract(epoch FROM now() - max(beat_at)) FROM {schema}.heartbeat")),
                leases={lease: leases.holder(conn, lease)
                        for lease in (*(f"apply:{name}:{p}" for p in range(partitions)), f"tick:{name}")},
                rebuild=_rebuild(conn, f"{schema}__new"),
                refused=_one(conn, f"SELECT max(refused) FROM {schema}.heartbeat"),
            ))
        return status


def _rebuild(conn: psycopg.Connection, schema: str) -> tuple[int, int] | None:
    if _one(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) is None:
        return None
    found = _one(conn, f"SELECT array[position, target] FROM {schema}.built")
    return (int(found[0]), int(found[1])) if found else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
