"""A rebuild and the notices of the outbox: rebuilt again and again, a projection switches, and
each notice reaches its topic once. The live outbox holds ids of its own (the live runner's,
the switches' announcements) beside those the rebuild gave the notices it decided; and the
notices of events the live runner had not applied yet, when it lagged behind the rebuild, are
its to decide and send."""

from __future__ import annotations

from collections import Counter

import httpx
import psycopg

from consumers.outbox import NOTICE_ID
from infra.kafka.notices import LEDGER_TOPIC
from infra.postgres import rebuild
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from tests.factories import contract, post, ticket
from tests.integration.helpers import eventually, read_partition
from tests.integration.test_rebuild import answered
from tests.processes import Processes

LEDGER = wiring.PROJECTIONS["ledger"]
BANK = "crm-experts/silver"  # 1,200 minutes a year, low at 120 left


def spend(client: httpx.Client, tid: str, minutes: int, at: str) -> int:
    return int(post(client, f"/tickets/{tid}/time", minutes=minutes, kind="work", at=at)["position"])


def rebuild_ledger(backend: Processes, store: ApplicationHost) -> rebuild.Report:
    settings = backend.settings
    return rebuild.rebuild(LEDGER, store, settings.database_url or "", settings.events_topic, settings.partitions,
                           show_progress=False)


def outbox(url: str, contract_id: str) -> dict[str, bool]:
    """The contract's notices in the live outbox, and whether each was published."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT notice_id, published_at IS NOT NULL FROM proj_ledger.outbox WHERE key = %s",
                            (contract_id,)).fetchall()
    return dict(rows)


def sent(backend: Processes, contract_id: str, expected: set[str]) -> Counter[str]:
    """How many times each notice of the contract is on the ledger's topic, once all of
    `expected` are there."""
    def ids(messages: list[object]) -> list[str]:
        return [dict(m.headers)[NOTICE_ID].decode() for m in messages if m.key == contract_id.encode()]  # type: ignore[attr-defined]

    messages = read_partition(backend.settings.kafka_bootstrap or "", LEDGER_TOPIC, 0,
                              lambda ms: expected <= set(ids(ms)))
    return Counter(ids(messages))


def test_a_second_rebuild_switches_though_it_decided_a_notice_under_an_id_the_live_outbox_holds(
    backend: Processes, store: ApplicationHost, client: httpx.Client
) -> None:
    url = backend.settings.database_url or ""
    cid = contract(client, BANK, starts_on="2025-01-01", at="2024-12-15T10:00:00-05:00")
    tid = ticket(client, cid, at="2025-03-03T09:00:00-05:00")
    answered(client, f"/contracts/{cid}/ledger", spend(client, tid, 1090, "2025-03-04T17:00:00-05:00"))
    rebuild_ledger(backend, store)  # its announcement takes the live outbox's next id
    answered(client, f"/contracts/{cid}/ledger", spend(client, tid, 150, "2025-03-05T17:00:00-05:00"))
    eventually(lambda: len(outbox(url, cid)) == 2 and all(outbox(url, cid).values()))
    low, out = sorted(outbox(url, cid), key=lambda n: "exhausted" in n)
    # Rules that never decided the exhaustion stand for the old ones: the rebuild decides it
    # about the past, under the id its own outbox gives it, one that the live outbox holds.
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM proj_ledger.outbox WHERE notice_id = %s", (out,))

    rebuild_ledger(backend, store)

    assert outbox(url, cid) == {low: True, out: True}  # a notice about the past is not sent again
    assert sent(backend, cid, {low, out}) == {low: 1, out: 1}


def test_the_notices_of_events_a_lagging_runner_had_not_applied_are_sent_once_after_each_rebuild(
    backend: Processes, store: ApplicationHost, client: httpx.Client
) -> None:
    url = backend.settings.database_url or ""
    cid = contract(client, BANK, starts_on="2025-01-01", at="2024-12-15T10:00:00-05:00")
    tid = ticket(client, cid, at="2025-03-03T09:00:00-05:00")
    answered(client, f"/contracts/{cid}/ledger", spend(client, tid, 10, "2025-03-03T17:00:00-05:00"))
    for year in (2025, 2026):
        backend.kill("consume-ledger")  # it lags behind the rebuild: the crossings below are its
        if year == 2026:
            post(client, f"/contracts/{cid}/renew", at="2026-01-01T00:00:00-05:00")
        spend(client, tid, 1090, f"{year}-03-04T17:00:00-05:00")
        last = spend(client, tid, 150, f"{year}-03-05T17:00:00-05:00")
        rebuild_ledger(backend, store)
        backend.start("consume-ledger")
        assert answered(client, f"/contracts/{cid}/ledger", last)["exhausted"]

    eventually(lambda: len(outbox(url, cid)) == 4 and all(outbox(url, cid).values()))
    notices = set(outbox(url, cid))
    assert sent(backend, cid, notices) == dict.fromkeys(notices, 1)
