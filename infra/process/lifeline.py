"""Processes that belong together die together, and one `ticketing run` per data dir.

`ticketing run` holds an exclusive lock on `<data dir>/run.lock` for its whole life (the
kernel drops it when the process dies, however it dies), so a second one on the same data
dir exits at once, naming the first. Every process it starts, and every process those start
(uvicorn's workers, the embedded broker), asks the kernel to kill it when its parent dies
(Linux's PR_SET_PDEATHSIG), so a SIGKILL of `ticketing run` leaves none of them running.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO

PARENT = "TICKETING_SUPERVISOR_PID"  # set in the environment of the supervisor's children
_PR_SET_PDEATHSIG = 1


class AlreadyRunning(Exception):
    """Another `ticketing run` holds this data dir."""


def die_with_parent() -> None:
    """Be killed when the parent process dies (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def supervised() -> None:
    """In a child of `ticketing run`: die with it, and exit at once if it is already gone."""
    parent = os.environ.get(PARENT)
    if parent is None:
        return
    die_with_parent()
    if os.getppid() != int(parent):  # it died before we could ask to die with it
        os._exit(1)


def hold_data_dir(data_dir: Path, about: dict[str, object]) -> IO[str]:
    """Lock the data dir for this process's life; raise AlreadyRunning naming the holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "run.lock", "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "{}"
        handle.close()
        raise AlreadyRunning(f"another `ticketing run` uses {data_dir}: {holder}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), **about}))
    handle.flush()
    return handle
