"""Fixtures the end-to-end tests share: a second API process guarded by an admin token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from infra.process import embedded
from tests.processes import Processes

ADMIN_TOKEN = "s3cret"


@pytest.fixture(scope="module")
def guarded_api(backend: Processes) -> Iterator[str]:
    """A second API process on the same store, with TICKETING_ADMIN_TOKEN set."""
    port = embedded.free_port()
    env = dict(backend.env, TICKETING_HTTP_PORT=str(port), TICKETING_ADMIN_TOKEN=ADMIN_TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "infra.process.cli", "api"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        Processes(backend.settings.__class__(http_port=port)).wait_healthy(60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
