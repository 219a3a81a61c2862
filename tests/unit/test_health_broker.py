"""GET /health's broker check on a cluster: KAFKA_BOOTSTRAP_SERVERS may list several
brokers; the broker is up while any of them accepts a connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from infra.http.health import _broker


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def closed() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


def test_a_cluster_is_up_while_any_of_its_bootstrap_servers_answers(listening: int, closed: int) -> None:
    assert asyncio.run(_broker(f"127.0.0.1:{closed}, 127.0.0.1:{listening}")) == "ok"
    assert asyncio.run(_broker(f"127.0.0.1:{listening}")) == "ok"


def test_a_cluster_none_of_whose_servers_answers_is_down(closed: int) -> None:
    assert asyncio.run(_broker(f"127.0.0.1:{closed},127.0.0.1:{closed}")) == "down"
    assert asyncio.run(_broker("")) == "down"
