"""Doorbells on the real PostgreSQL: an idle relay hears the store's appends and an idle runner
hears the relay's publishing, at once, though each would otherwise look again only after a
minute; a bell whose connection is cut listens again and looks at once."""

from __future__ import annotations

import threading
import time

import psycopg

from infra import postgres
from infra.postgres import doorbell
from infra.postgres.doorbell import PgDoorbell
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from tests.integration.helpers import checkpoint, eventually, relay_row, tickets_schema, unique

SLOW = 60.0  # the idle waits under test: a bell that does not ring fails the test's 20 s


def ring(conn: psycopg.Connection, channel: str, payload: str) -> None:
    """Notify `channel` in the connection's transaction (delivered when it commits)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def test_a_bell_rings_for_its_payload_once_per_batch_of_news_and_listens_again_after_a_cut(
        servers: Settings) -> None:
    url, channel, mine = servers.database_url or "", "ticketing_test_bell", unique("payload")
    bell = PgDoorbell(url, channel, mine, retry_seconds=0.0)
    try:
        assert bell.wait(5) is True, "a bell that starts listening looks at once"
        with psycopg.connect(url, autocommit=True) as conn:
            ring(conn, channel, "someone else's")
            assert bell.wait(0.3) is False, "another payload does not ring"
            for _ in range(3):  # news that came while the owner was busy
                ring(conn, channel, mine)
            assert bell.wait(5) is True
            assert bell.wait(0.3) is False, "the three rings were one piece of news"
            with conn.transaction():
                ring(conn, channel, mine)
                assert bell.wait(0.3) is False, "a notification is heard only once its transaction commits"
            assert bell.wait(5) is True
            assert bell.conn is not None
            conn.execute("SELECT pg_terminate_backend(%s)", (bell.conn.info.backend_pid,))
        assert bell.wait(0.2) is False, "cut: the bell waits its time out"
        assert bell.wait(5) is True, "listening again: what was told meanwhile went unheard, so look"
    finally:
        bell.close()


def test_the_stores_append_and_the_relays_position_ring_their_bells(servers: Settings,
                                                                   store: ApplicationHost) -> None:
    url, topic = servers.database_url or "", unique("events")
    appended = PgDoorbell(url, doorbell.APPENDED, postgres.STORE_SCHEMA)
    relayed = PgDoorbell(url, doorbell.RELAYED, topic)
    try:
        appended.wait(0), relayed.wait(0)  # listening from here on
        store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01")
        assert appended.wait(10) is True
        relay = wiring.relay(servers, store, topic)
        try:
            relay.take_lease()
            while relay.step():
                pass
            assert relayed.wait(10) is True, "a position stored past acknowledged events rings"
            relay.log.store(relay.state, None)  # the same position stored again
            assert relayed.wait(0.3) is False
        finally:
            relay.close()
    finally:
        appended.close(), relayed.close()


def test_an_idle_relay_and_runner_hear_a_new_command_at_once(servers: Settings, store: ApplicationHost) -> None:
    url, topic = servers.database_url or "", unique("events")
    schema = tickets_schema(url)
    relay = wiring.relay(servers, store, topic, idle_wait=SLOW)
    runner = wiring.runner(servers, "tickets", schema, topic, idle_wait=SLOW, beat_every=SLOW)
    stopped = threading.Event()
    threads = [threading.Thread(target=relay.run, args=(stopped.is_set,)),
               threading.Thread(target=runner.run, args=(stopped.is_set,))]
    for t in threads:
        t.start()
    try:
        head = store.head()
        eventually(lambda: checkpoint(url, schema, topic) >= head, timeout=30)
        time.sleep(1.0)  # both idle now, each in a wait of a minute
        cid = store.app.sign_contract("Acme", "crm-experts/gold", "2026-01-01").aggregate_id
        store.app.open_ticket(cid, "Slow reports", "ana")
        position = store.head()
        eventually(lambda: relay_row(url, topic).get("position", 0) >= position, timeout=20)
        eventually(lambda: checkpoint(url, schema, topic) >= position, timeout=20)
    finally:
        stopped.set()
        with psycopg.connect(url, autocommit=True) as conn:  # wake them to see that they are stopped
            ring(conn, doorbell.APPENDED, postgres.STORE_SCHEMA)
            ring(conn, doorbell.RELAYED, topic)
        for t in threads:
            t.join(SLOW + 10)
        relay.close(), runner.close()
