"""`ticketing run` and its processes live and die together, one per data dir: a SIGKILL of it
leaves none of them running (uvicorn's workers included), a second one on the same data dir
exits at once naming the first, and the next start finds its data."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from infra.process import embedded
from infra.settings import Settings
from tests.backends import COMMAND, environment, launch, stop
from tests.factories import contract, history
from tests.processes import Processes


def test_a_killed_run_leaves_none_of_its_processes_and_the_next_run_finds_its_data(tmp_path: Path) -> None:
    data, port = tmp_path / "var", embedded.free_port()
    data.mkdir()
    waiter = Processes(Settings(data_dir=data, http_port=port))
    proc = launch(data, port, workers=2)
    try:
        waiter.wait_healthy(120)
        with httpx.Client(base_url=waiter.base_url, timeout=30) as client:
            cid = contract(client)
        family = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in family]
        assert sum("multiprocessing" in c for c in commands) >= 2, commands  # uvicorn's two workers
        assert any("tansu" in c or "broker" in c for c in commands), commands
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(family, timeout=15)
        assert alive == [], [" ".join(p.cmdline()) for p in alive]
    finally:
        if proc.poll() is None:
            stop(proc)
    proc = launch(data, port)
    try:
        waiter.wait_healthy(120)
        with httpx.Client(base_url=waiter.base_url, timeout=30) as client:
            assert [e["type"] for e in history(client, cid)] == ["Contract.Signed"]
    finally:
        stop(proc)


def test_a_second_run_on_the_same_data_dir_exits_at_once_naming_the_first(tmp_path: Path) -> None:
    data, port = tmp_path / "var", embedded.free_port()
    data.mkdir()
    proc = launch(data, port)
    try:
        Processes(Settings(data_dir=data, http_port=port)).wait_healthy(120)
        started = time.monotonic()
        second = subprocess.run(COMMAND, env=environment(data, embedded.free_port()), capture_output=True,
                                text=True, timeout=60)
        assert second.returncode != 0 and time.monotonic() - started < 15
        assert f'"pid": {proc.pid}' in second.stderr and str(data) in second.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200  # the first runs on
    finally:
        stop(proc)
