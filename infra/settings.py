"""Settings, parsed once from the environment at the edge and passed down, frozen.

With neither DATABASE_URL nor KAFKA_BOOTSTRAP_SERVERS set, `ticketing run` starts the
embedded PostgreSQL and broker under TICKETING_DATA_DIR; with them, nothing embedded starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from domain.wallclock import Clock, ShiftedClock, SystemClock

EVENTS_TOPIC = "ticketing.events.v1"
API_CONNECTIONS = 72


@dataclass(frozen=True)
class Settings:
    """Everything a process of the backend needs to know about its surroundings."""

    data_dir: Path = Path("var")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    api_workers: int = 1
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    admin_token: str | None = None
    kafka_port: int = 9092  # the embedded broker's port, where a local consumer finds it
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides loopback (DNS rebinding)
    events_topic: str = EVENTS_TOPIC
    partitions: int = 1
    json_logs: bool | None = None
    clock_offset: float = 0.0  # seconds; moves every process's clock (tests of other dates)
    renewals_interval: float = 60.0  # seconds between two renewal passes
    # A consumer group's timeouts (`ticketing consume --group`): Kafka's own defaults. Tansu, the
    # embedded broker, completes a join only after `group_poll_interval_ms`: give it seconds.
    group_poll_interval_ms: int = 300_000
    group_session_timeout_ms: int = 45_000
    group_heartbeat_ms: int = 3_000
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        logs = env.get("TICKETING_JSON_LOGS")
        return cls(
            data_dir=Path(env.get("TICKETING_DATA_DIR", "var")).resolve(),
            http_host=env.get("TICKETING_HTTP_HOST", "127.0.0.1"),
            http_port=int(env.get("TICKETING_HTTP_PORT", "8000")),
            api_workers=int(env.get("TICKETING_API_WORKERS", "1")),
            database_url=env.get("DATABASE_URL") or None,
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            admin_token=env.get("TICKETING_ADMIN_TOKEN") or None,
            kafka_port=int(env.get("TICKETING_KAFKA_PORT", "9092")),
            allowed_hosts=tuple(h.strip().lower() for h in env.get("TICKETING_ALLOWED_HOSTS", "").split(",") if h.strip()),
            events_topic=env.get("TICKETING_EVENTS_TOPIC", EVENTS_TOPIC),
            partitions=int(env.get("TICKETING_PARTITIONS", "1")),
            json_logs=None if logs is None else logs.lower() in ("1", "true", "yes"),
            clock_offset=float(env.get("TICKETING_CLOCK_OFFSET", "0") or 0),
            renewals_interval=float(env.get("TICKETING_RENEWALS_INTERVAL", "60")),
            group_poll_interval_ms=int(env.get("TICKETING_GROUP_POLL_INTERVAL_MS", "300000")),
            group_session_timeout_ms=int(env.get("TICKETING_GROUP_SESSION_TIMEOUT_MS", "45000")),
            group_heartbeat_ms=int(env.get("TICKETING_GROUP_HEARTBEAT_MS", "3000")),
        )

    def api_pools(self) -> tuple[int, int, int]:
        """Connections per API process (store, store reads and keys, read models): all API
        processes together stay within 72, so TICKETING_API_WORKERS=8 plus the relay, the
        runners and the renewals fit in PostgreSQL's default 100 connections."""
        each = min(24, API_CONNECTIONS // max(1, self.api_workers))
        store, aux = max(2, each // 3), 4 if each >= 16 else 2
        return store, aux, max(2, each - store - aux - 2)  # 2: the waits, a health check

    @property
    def clock(self) -> Clock:
        """The clock every decision of this process reads."""
        return ShiftedClock(timedelta(seconds=self.clock_offset)) if self.clock_offset else SystemClock()

    def with_servers(self, database_url: str, kafka_bootstrap: str) -> Settings:
        return replace(self, database_url=database_url, kafka_bootstrap=kafka_bootstrap)

    def child_env(self) -> dict[str, str]:
        """The environment a child process of `ticketing run` gets: the same settings."""
        env = dict(os.environ)
        env.update(
            TICKETING_DATA_DIR=str(self.data_dir),
            TICKETING_HTTP_HOST=self.http_host,
            TICKETING_HTTP_PORT=str(self.http_port),
            TICKETING_EVENTS_TOPIC=self.events_topic,
            TICKETING_PARTITIONS=str(self.partitions),
            TICKETING_CLOCK_OFFSET=repr(self.clock_offset),
            TICKETING_RENEWALS_INTERVAL=repr(self.renewals_interval),
            TICKETING_GROUP_POLL_INTERVAL_MS=str(self.group_poll_interval_ms),
            TICKETING_GROUP_SESSION_TIMEOUT_MS=str(self.group_session_timeout_ms),
            TICKETING_GROUP_HEARTBEAT_MS=str(self.group_heartbeat_ms),
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.kafka_bootstrap:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka_bootstrap
        return env
