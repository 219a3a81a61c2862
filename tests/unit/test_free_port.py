"""The embedded broker's port: never one promised to the API that has not bound it yet."""

from __future__ import annotations

from infra.process import embedded


def test_a_free_port_is_never_one_to_avoid() -> None:
    taken = {embedded.free_port() for _ in range(20)}
    assert all(embedded.free_port(avoid=taken) not in taken for _ in range(50))
