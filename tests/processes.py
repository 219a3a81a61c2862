"""The backend's processes (API, relay, one consumer per projection) as children of the
caller, by name, so that tests and benchmarks can start, kill and restart each one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.process import wiring
from infra.settings import Settings


class Processes:
    """api, relay, consume-<projection>: started with the settings' environment."""

    def __init__(self, settings: Settings, extra: tuple[str, ...] = ()) -> None:
        self.settings, self.extra = settings, extra
        self.env = settings.child_env() | {"TICKETING_JSON_LOGS": "1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = Path(settings.data_dir) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    @property
    def names(self) -> list[str]:
        return ["api", "relay", *(f"consume-{p}" for p in wiring.PROJECTIONS), *self.extra]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self, name: str) -> None:
        # As `ticketing run` starts them: one runner per projection, on every partition.
        args = ["consume", name.removeprefix("consume-"), "--no-group"] if name.startswith("consume-") else [name]
        self.start_as(name, args)

    def start_as(self, name: str, args: list[str]) -> None:
        """Start `ticketing <args>` under `name`."""
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "infra.process.cli", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)
        self.wait_healthy()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{self.base_url}/health", timeout=5)
                if last.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"backend not healthy: {last.text if last else 'no answer'}")
