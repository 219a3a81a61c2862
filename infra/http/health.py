"""GET /health: whether each part of the backend works, within about two seconds.

Every check has a deadline, so a part that hangs answers "timeout" rather than holding the
request; the answer names each part ("ok", "down", "blocked", "no recent heartbeat", "rules
version differs": a runner refusing to write into tables built with other rules...) but
never an error's text, which may carry addresses or credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

DEADLINE = 1.5  # seconds, for each check; they run side by side
FRESH = 10.0  # a heartbeat older than this many seconds is stale


async def checks(backend: Any) -> dict[str, str]:
    settings = backend.settings
    found, broker = await asyncio.gather(_store(settings.database_url, settings.events_topic, backend.projections),
                                         _broker(settings.kafka_bootstrap or ""))
    if isinstance(found, str):
        parts = {"relay": "unknown", **{f"projection:{p}": "unknown" for p in backend.projections}}
        return {"store": found, "broker": broker, **parts}
    relay = found.pop("relay")
    return {"store": "ok", "broker": broker, "relay": relay,
            **{f"projection:{p}": found.get(p, "no recent heartbeat") for p in backend.projections}}


async def _broker(bootstrap: str) -> str:
    """"ok" if any of the bootstrap servers (`host:port`, comma-separated: a cluster's)
    accepts a connection, else what the first one answered."""
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()] or [""]
    answers = await asyncio.gather(*(_server(s) for s in servers))
    return "ok" if "ok" in answers else answers[0]


async def _server(bootstrap: str) -> str:
    host, _, port = bootstrap.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), DEADLINE)
    except (OSError, ValueError):
        return "down"
    except TimeoutError:
        return "timeout"
    writer.close()
    return "ok"


async def _store(url: str, topic: str, projections: list[str]) -> dict[str, str] | str:
    try:
        return await asyncio.wait_for(_states(url, topic, projections), DEADLINE)
    except TimeoutError:
        return "timeout"
    except psycopg.Error:
        return "down"


async def _states(url: str, topic: str, projections: list[str]) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=1) as conn:
        relay = await (await conn.execute(
            "SELECT extract(epoch FROM now() - h.beat_at), to_jsonb(p) ->> 'blocked_position'"
            " FROM relay.heartbeat h LEFT JOIN relay.position p USING (topic) WHERE h.topic = %s",
            (topic,))).fetchone()
        states = {"relay": _relay(relay)}
        for name in projections:
            try:
                row = await (await conn.execute(
                    f"SELECT extract(epoch FROM now() - max(beat_at)), bool_or(refused IS NOT NULL)"
                    f" FROM proj_{name}.heartbeat")).fetchone()
            except psycopg.errors.UndefinedTable:
                continue
            fresh = row is not None and row[0] is not None and float(row[0]) < FRESH
            states[name] = "no recent heartbeat" if not fresh else "rules version differs" if row and row[1] else "ok"
        return states


def _relay(row: tuple[Any, ...] | None) -> str:
    if row is None or row[0] is None or float(row[0]) >= FRESH:
        return "no recent heartbeat"
    return "blocked" if row[1] is not None else "ok"
