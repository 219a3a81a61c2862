"""A throwaway MariaDB (or MySQL) server for the dump test: Debian's `mariadb-server`
installs on these machines and starts as root on a fresh data directory in about a second.
Where no server binary is installed, the tests that need one are skipped, saying so."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER = shutil.which("mariadbd") or shutil.which("mysqld")
INSTALL = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
CLIENT = shutil.which("mariadb") or shutil.which("mysql")


@contextmanager
def mariadb(root: Path) -> Iterator[list[str]]:
    """A server on a socket under `root`; yields the client command line to reach it."""
    if not (SERVER and INSTALL and CLIENT):
        pytest.skip("no MariaDB or MySQL server is installed here (Debian: apt-get install mariadb-server)")
    data, sock = root / "data", root / "sock"
    subprocess.run([INSTALL, "--user=root", f"--datadir={data}", "--auth-root-authentication-method=normal"],
                   check=True, capture_output=True, timeout=120)
    server = subprocess.Popen([SERVER, "--user=root", f"--datadir={data}", f"--socket={sock}", "--skip-networking",
                               f"--pid-file={root / 'pid'}", f"--log-error={root / 'error.log'}"])
    client = [CLIENT, f"--socket={sock}", "-uroot", "--batch", "--raw", "--default-character-set=utf8mb4"]
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"MariaDB did not start: {(root / 'error.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield client
    finally:
        server.terminate()
        server.wait(30)


def rows(client: list[str], database: str, query: str) -> list[list[str]]:
    """A query's rows, in a session that reads literals as the dumps write them (NO_BACKSLASH_ESCAPES)."""
    session = f"SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; {query}"
    done = subprocess.run([*client, database, "-N", "-e", session], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]
