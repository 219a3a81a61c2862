"""Settings, parsed once from the environment at the edge and passed down, frozen.

With neither DATABASE_URL nor KAFKA_BOOTSTRAP_SERVERS set, `ticketing run` starts the
embedded PostgreSQL and broker under TICKETING_DATA_DIR; with them, nothing embedded starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

EVENTS_TOPIC = "ticketing.events.v1"


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
    events_topic: str = EVENTS_TOPIC
    partitions: int = 1
    json_logs: bool | None = None
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
            events_topic=env.get("TICKETING_EVENTS_TOPIC", EVENTS_TOPIC),
            partitions=int(env.get("TICKETING_PARTITIONS", "1")),
            json_logs=None if logs is None else logs.lower() in ("1", "true", "yes"),
        )

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
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.kafka_bootstrap:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka_bootstrap
        return env
