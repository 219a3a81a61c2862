"""In-process event stores on the session's PostgreSQL: the session's, and another writer's."""

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


@pytest.fixture
def other(servers: Settings) -> Iterator[ApplicationHost]:
    """A second writer on the same store, with caches of its own (as another API process)."""
    host = wiring.event_store(servers)
    yield host
    host.close()
