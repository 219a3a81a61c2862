"""An in-process event store on the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings


@pytest.fixture(scope="session")
def store(servers: Settings) -> Iterator[ApplicationHost]:
    s = wiring.event_store(servers)
    yield s
    s.close()
