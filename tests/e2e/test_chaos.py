"""The short chaos run of `make test` (the long one is `make chaos`): see tests/chaos.py."""

from __future__ import annotations

from pathlib import Path

from tests import chaos


def test_under_kills_and_restarts_every_acknowledged_command_is_stored_once_and_nothing_else(
    tmp_path: Path,
) -> None:
    result = chaos.play(tmp_path / "var", commands=600, clients=4, pace=2.0)
    print(result["tallies"])  # noqa: T201 - the tallies, shown with -s
    assert result["tallies"]["kills"] and result["tallies"]["restarts"]
    assert result["problems"] == {}
