"""Two runners of one projection, as processes: the one holding the partition's lease
applies, the other waits as a hot standby and takes over within seconds of the first one's
death (SIGKILL mid-stream); the read model then equals a clean rebuild from the store,
nothing lost and nothing applied twice."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from infra.settings import Settings
from infra.store import EventStore
from tests.integration.helpers import (
    checkpoint,
    clean_rebuild,
    lease_holder,
    parked,
    read_model,
    relay_from_here,
    relay_until,
    tickets_schema,
    unique,
    write_tickets,
)


def start(settings: Settings, schema: str, topic: str, name: str) -> subprocess.Popen[bytes]:
    """A runner of the ticket list, its database sessions named `name`."""
    env = settings.child_env() | {"PGAPPNAME": name, "TICKETING_JSON_LOGS": "1"}
    log = open(settings.data_dir / f"{name}-{schema}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "tests.integration.runner_process", "tickets", schema, topic],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def eventually(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s"
        time.sleep(0.05)


def test_a_standby_runner_takes_over_within_ten_seconds_of_the_active_ones_death_and_applies_nothing_twice(
    servers: Settings, store: EventStore
) -> None:
    url = servers.database_url or ""
    topic, schema = unique("events"), tickets_schema(url)
    relay = relay_from_here(servers, store, topic, batch=100)
    _, tids = write_tickets(store, 300)  # 2,101 events
    head, lease = store.head(), f"apply:tickets@{schema}:0"
    relay_until(relay, relay.state.position + 700)
    runners = {name: start(servers, schema, topic, name) for name in ("runner-a", "runner-b")}
    try:
        eventually(lambda: checkpoint(url, schema, topic) >= relay.state.position, within=60)
        active = lease_holder(url, lease)
        assert active in runners, "one runner holds the partition's lease"
        (standby,) = set(runners) - {active}
        assert runners[standby].poll() is None, "the other one waits"
        rest = threading.Thread(target=relay_until, args=(relay, head, 0.02))
        rest.start()
        runners[active].kill()  # SIGKILL while the rest of the stream flows
        runners[active].wait()
        eventually(lambda: lease_holder(url, lease) == standby, within=10)
        rest.join()
        eventually(lambda: checkpoint(url, schema, topic) >= head, within=60)
    finally:
        for process in runners.values():
            process.kill()
            process.wait()
        relay.close()
    built, clean = read_model(url, schema), clean_rebuild(store, upto=head)
    assert set(tids) <= set(built) and built == {k: clean[k] for k in built}
    assert sum(built[t]["minutes"] for t in tids) == 35 * 300
    assert parked(url, schema) == []
