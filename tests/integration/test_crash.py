"""A crash at any point loses nothing and applies nothing twice: SIGKILL the relay and a
consumer in the middle of a stream of thousands of events, restart them, and the read
model equals the one a clean run builds."""

from __future__ import annotations

import signal
import threading
import time
import uuid

import httpx

from infra.postgres.store import ApplicationHost
from tests.integration.helpers import clean_rebuild, read_model, stream_ticket
from tests.processes import Processes

TICKETS = 900  # 900 x 7 events = 6,300 events


def write_stream(store: ApplicationHost, done: threading.Event) -> None:
    app = store.app
    cid = app.sign_contract("Crash Test Ltd", "crm-experts/platinum", "2026-01-01").aggregate_id
    for i in range(TICKETS):
        app.save(stream_ticket(store, cid, i))
    done.set()


def test_killing_the_relay_and_a_consumer_mid_stream_loses_nothing_and_applies_nothing_twice(
    backend: Processes, store: ApplicationHost, base_url: str
) -> None:
    done = threading.Event()
    writer = threading.Thread(target=write_stream, args=(store, done))
    writer.start()
    time.sleep(1.0)
    backend.kill("relay", signal.SIGKILL)
    time.sleep(0.5)
    backend.kill("consume-tickets", signal.SIGKILL)
    time.sleep(0.5)
    backend.start("relay")
    time.sleep(0.5)
    backend.start("consume-tickets")
    time.sleep(0.5)
    backend.kill("consume-tickets", signal.SIGKILL)  # once more, while it catches up
    backend.start("consume-tickets")
    writer.join()
    assert done.is_set()
    head = store.head()
    reached = httpx.get(f"{base_url}/contracts/{uuid.uuid4()}/tickets", params={"wait_for": head}, timeout=60)
    assert reached.status_code == 200, reached.text
    url = backend.settings.database_url or ""
    # Rows changed after `head` (by other tests' processes, if any) are not this test's.
    clean = clean_rebuild(store, upto=head)
    full = read_model(url, "proj_tickets")
    later = {k for k, v in full.items() if v["position"] > head}
    built = {k: v for k, v in full.items() if k not in later}
    assert len(clean) >= TICKETS
    assert built == {k: v for k, v in clean.items() if k not in later}
    assert sum(r["minutes"] for r in built.values() if (r["title"] or "").startswith("ticket ")) >= 35 * TICKETS
