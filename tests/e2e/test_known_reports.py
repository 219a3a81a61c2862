"""Reports as they were known, over HTTP: the SLA report, the ledger and the availability asked
with `known_at` (a commit time kept from the history) answer what they answered at that time,
however much was back-dated into the month since; without it they answer the read models' current
figures, which agree with the same reports replayed from the store's events; and every answer
names the rules version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from domain.rules import RULES_VERSION
from infra.postgres.store import ApplicationHost
from infra.process import wiring
from infra.settings import Settings
from projections import replay
from tests.factories import contract, history, post, ticket

MONTH = "2026-10"  # Bogota; its quarter's guidance allowance is the ledger's period
REPORTS = {"sla": {"month": MONTH}, "ledger": {}, "availability": {"month": MONTH}}
# The one field of an answer that names the instant it was computed at (the request's, or
# `known_at`): everything else depends on the events and that instant only.
NOW_FIELDS = {"sla": ("as_of",), "ledger": (), "availability": ("as_of",)}


def reports(client: httpx.Client, cid: str, **params: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for name, own in REPORTS.items():
        response = client.get(f"/contracts/{cid}/{name}", params={**own, **params})
        assert response.status_code == 200, response.text
        found[name] = response.json()
    return found


def without_now(answers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {k: v for k, v in body.items() if k not in NOW_FIELDS[name]} for name, body in answers.items()}


def outage(client: httpx.Client, cid: str, start: str, end: str) -> int:
    tid = ticket(client, cid, category="system-down", at=start)
    return int(post(client, f"/tickets/{tid}/restore", at=end)["position"])


@pytest.fixture(scope="module")
def store(servers: Settings) -> Iterator[ApplicationHost]:
    host = wiring.event_store(servers)
    try:
        yield host
    finally:
        host.close()


def test_each_report_as_known_answers_what_it_answered_then_while_the_current_one_moved(client: httpx.Client) -> None:
    cid = contract(client, "datacrm/standard")
    first = ticket(client, cid, category="incident", at="2026-10-05T09:00:00-05:00")
    post(client, f"/tickets/{first}/respond", at="2026-10-05T09:20:00-05:00")
    post(client, f"/tickets/{first}/time", minutes=30, kind="guidance", at="2026-10-05T10:00:00-05:00")
    position = outage(client, cid, "2026-10-06T10:00:00-05:00", "2026-10-06T10:40:00-05:00")
    then = reports(client, cid, wait_for=position)
    known = history(client, cid)[-1]["committed_at"]

    # Back-dated into that month afterwards: a ticket, time booked on it, a longer outage.
    late = ticket(client, cid, category="development", at="2026-10-02T09:00:00-05:00")
    post(client, f"/tickets/{late}/time", minutes=45, kind="guidance", at="2026-10-02T09:30:00-05:00")
    position = outage(client, cid, "2026-10-03T08:00:00-05:00", "2026-10-03T10:00:00-05:00")

    as_known = reports(client, cid, known_at=known)
    assert without_now(as_known) == without_now(then)
    for name in ("sla", "availability"):  # computed as of the kept instant itself
        assert datetime.fromisoformat(as_known[name]["as_of"]) == datetime.fromisoformat(known)
    now = reports(client, cid, wait_for=position)
    assert (then["sla"]["tickets"], now["sla"]["tickets"]) == (2, 4)
    assert (then["ledger"]["used"], now["ledger"]["used"]) == (30, 75)
    assert (then["availability"]["downtime_minutes"], now["availability"]["downtime_minutes"]) == (40, 160)
    assert all(body["rules_version"] == RULES_VERSION for body in [*then.values(), *as_known.values(), *now.values()])


def test_the_read_models_agree_with_the_reports_replayed_from_the_store(
    client: httpx.Client, store: ApplicationHost
) -> None:
    cid = contract(client, "datacrm/standard")
    tid = ticket(client, cid, category="incident", at="2026-10-05T09:00:00-05:00")
    post(client, f"/tickets/{tid}/respond", at="2026-10-05T11:00:00-05:00")
    post(client, f"/tickets/{tid}/time", minutes=150, kind="guidance", at="2026-10-05T12:00:00-05:00")
    post(client, f"/tickets/{tid}/resolve", at="2026-10-07T12:00:00-05:00")
    post(client, f"/contracts/{cid}/maintenance", starts_at="2026-10-08T01:00:00-05:00",
         ends_at="2026-10-08T03:00:00-05:00")
    position = outage(client, cid, "2026-10-08T00:30:00-05:00", "2026-10-08T04:00:00-05:00")
    current = reports(client, cid, wait_for=position)
    envelopes = store.envelopes_of(cid)
    as_of = datetime.fromisoformat(current["sla"]["as_of"])
    assert current["sla"] == replay.sla_report(envelopes, as_of, MONTH)
    assert current["ledger"] == replay.ledger_report(envelopes, as_of)
    as_of = datetime.fromisoformat(current["availability"]["as_of"])
    assert current["availability"] == replay.availability_report(envelopes, as_of, MONTH)
    assert current["ledger"]["overage"] == 30 and current["availability"]["maintenance_minutes"] == 120


@pytest.mark.parametrize("plan", ["crm-experts/silver", "dolibarr/credits", "bpm/premium"])
def test_the_current_reports_of_every_plan_family_are_the_figures_replayed_from_the_store(
    client: httpx.Client, store: ApplicationHost, plan: str
) -> None:
    cid = contract(client, plan, starts_on="2025-10-01", at="2025-10-01T12:00:00Z")
    if plan == "dolibarr/credits":
        post(client, f"/contracts/{cid}/credits", credits=40, at="2025-10-02T12:00:00Z")
    tid = ticket(client, cid, priority="P2", at="2026-10-05T14:00:00Z")
    post(client, f"/tickets/{tid}/respond", at="2026-10-05T14:30:00Z")
    post(client, f"/tickets/{tid}/time", minutes=25, kind="intervention", at="2026-10-05T15:00:00Z")
    position = post(client, f"/tickets/{tid}/resolve", at="2026-10-09T15:00:00Z")["position"]
    if plan == "crm-experts/silver":
        position = post(client, f"/contracts/{cid}/renew", at="2026-10-01T04:00:00Z")["position"]
    current = reports(client, cid, wait_for=position)
    envelopes = store.envelopes_of(cid)
    for name, period in (("sla", MONTH), ("ledger", current["ledger"]["period"]), ("availability", MONTH)):
        as_of = datetime.fromisoformat(current["sla" if name == "ledger" else name]["as_of"])
        assert replay.figures(envelopes, as_of)[name][period] == current[name], name
    # the entry was booked before the renewal was recorded: it stays in the bank's first period
    assert len(current["ledger"]["entries"]) == (0 if plan == "crm-experts/silver" else 1)
    assert current["sla"]["tickets"] == 1 and current["sla"]["all"]["response"]["timed"] == 1


def test_known_at_in_the_future_is_refused_and_before_the_signing_finds_no_contract(client: httpx.Client) -> None:
    cid = contract(client, "datacrm/standard")
    for name, own in REPORTS.items():
        future = client.get(f"/contracts/{cid}/{name}", params={**own, "known_at": "2999-01-01T00:00:00Z"})
        assert future.status_code == 422 and future.json()["error"], name
        naive = client.get(f"/contracts/{cid}/{name}", params={**own, "known_at": "2026-10-01T00:00:00"})
        assert naive.status_code == 422, name
        before = client.get(f"/contracts/{cid}/{name}", params={**own, "known_at": "2001-01-01T00:00:00Z"})
        assert before.status_code == 404, name
