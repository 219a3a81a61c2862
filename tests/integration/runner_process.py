"""One projection's runner as a process of its own, into a schema and from a topic of the
caller's choosing, for tests that kill it: `python -m tests.integration.runner_process NAME
SCHEMA TOPIC [group]`, with the settings in the environment as `ticketing consume` reads them;
`group`: as a member of the runner's consumer group (`ticketing consume --group`)."""

from __future__ import annotations

import signal
import sys

from infra.process import logging as logs
from infra.process import wiring
from infra.settings import Settings


def main(name: str, schema: str, topic: str, mode: str = "") -> int:
    settings = Settings.from_env()
    logs.configure(settings.json_logs)
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopped.append(signum))
    runner = wiring.runner(settings, name, schema, topic, group=mode == "group")
    try:
        runner.run(lambda: bool(stopped))
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
