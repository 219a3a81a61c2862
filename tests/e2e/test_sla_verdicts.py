"""SLA verdicts over HTTP (command -> store -> relay -> Kafka -> projection -> GET): a clock that
stopped keeps the priority, target, due instant and verdict it stopped with whatever later
reclassifications say, a clock still running follows the current classification from the
opening, and the monthly report counts each clock under the priority (or category) that judged
it. Due instants are worked out by hand; statuses are judged at the real now (late 2026).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tests.e2e.test_sla import SIGNED_AT, clock, sla
from tests.factories import contract, post, ticket


def report(client: httpx.Client, cid: str, month: str, position: int) -> dict[str, Any]:
    response = client.get(f"/contracts/{cid}/sla", params={"month": month, "wait_for": position})
    assert response.status_code == 200, response.text
    return response.json()


def counts(group: dict[str, Any], name: str) -> dict[str, int]:
    """A group's clock counts, leaving out the zeros."""
    return {s: n for s, n in group[name].items() if s in ("met", "missed", "breached", "running", "paused", "none") and n}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_p1_answered_late_then_lowered_to_p3_keeps_its_missed_p1_response(client: httpx.Client) -> None:
    # crm-experts gold, New York, Mon-Fri 08-20, responses only. P1 opened Tue Jun 2 10:00:
    # 1 h -> 11:00; answered 11:30: missed. Lowered to P3 at 12:00: P3's 2bd would make it due
    # Thu 10:00 and met, but the response had stopped: it stays P1's, due 11:00, missed.
    cid = contract(client, plan="crm-experts/gold", at=SIGNED_AT)
    tid = ticket(client, cid, at="2026-06-02T10:00:00-04:00", priority="P1")
    post(client, f"/tickets/{tid}/respond", at="2026-06-02T11:30:00-04:00")
    position = post(client, f"/tickets/{tid}/classify", at="2026-06-02T12:00:00-04:00", priority="P3")["position"]
    body = sla(client, tid, position)
    assert body["priority"] == "P3"
    assert clock(body, "response") == (at("2026-06-02T11:00:00-04:00"), at("2026-06-02T11:30:00-04:00"), "missed")
    assert (body["response"]["priority"], body["response"]["target"], body["response"]["target_minutes"]) == (
        "P1", "1h", 60)
    # The report counts the response under P1; the resolution clock (no target, still on)
    # under the current P3.
    shown = report(client, cid, "2026-06", position)
    assert (shown["groups"]["P1"]["tickets"], counts(shown["groups"]["P1"], "response")) == (1, {"missed": 1})
    assert counts(shown["groups"]["P1"], "resolution") == {}
    assert (counts(shown["groups"]["P3"], "response"), counts(shown["groups"]["P3"], "resolution")) == ({}, {"none": 1})
    assert (shown["tickets"], shown["all"]["response"]["met_pct"]) == (1, 0.0)
    explained = sla(client, tid, position, explain="true")["explain"]
    assert explained["response"]["priority"] == "P1"
    assert any(n.startswith("response judged under P1") for n in explained["notes"]), explained["notes"]


def test_a_running_clock_follows_the_new_category_while_a_stopped_one_keeps_its_own(client: httpx.Client) -> None:
    # datacrm, Bogota 08-12 + 14-17, by category. system-down opened Tue Mar 10 09:00: response
    # "immediate" (due 09:00), answered 09:30: missed. Reclassified incident at 10:00: the
    # response stays system-down's; the resolution, still running, takes incident's 1bd = 7 h
    # from the opening: Tue 09-12 3 h, 14-17 3 h, Wed 08:00-09:00 -> Wed 09:00 (now breached).
    cid = contract(client, plan="datacrm/standard", at=SIGNED_AT)
    tid = ticket(client, cid, at="2026-03-10T09:00:00-05:00", category="system-down")
    post(client, f"/tickets/{tid}/respond", at="2026-03-10T09:30:00-05:00")
    position = post(client, f"/tickets/{tid}/classify", at="2026-03-10T10:00:00-05:00", priority="P3",
                    category="incident")["position"]
    body = sla(client, tid, position)
    assert body["category"] == "incident"
    assert clock(body, "response") == (at("2026-03-10T09:00:00-05:00"), at("2026-03-10T09:30:00-05:00"), "missed")
    assert clock(body, "resolution") == (at("2026-03-11T09:00:00-05:00"), None, "breached")
    assert body["resolution"]["target"] == "1bd"
    shown = report(client, cid, "2026-03", position)
    assert counts(shown["groups"]["system-down"], "response") == {"missed": 1}
    assert counts(shown["groups"]["system-down"], "resolution") == {}
    assert (counts(shown["groups"]["incident"], "response"), counts(shown["groups"]["incident"], "resolution")) == (
        {}, {"breached": 1})


def test_bpm_premium_lowering_a_p1_stops_its_p1_resolution_and_keeps_a_stopped_p1_response(
    client: httpx.Client,
) -> None:
    # Moscow, P1: reaction 60 min and resolution 12 h, both 24x7; P3 reaction 6 h.
    # A: opened Mon Jun 1 09:00, answered 10:30 (due 10:00: missed), lowered to P3 at 20:00
    #    (P1 resolution due 21:00: met). B: same opening, answered 09:30 (met), lowered to P4
    #    at 22:00: P1 resolution missed. C: lowered to P3 at 09:30 before any answer: its
    #    response, still running, follows P3 from the opening (15:00) and the answer at 14:00
    #    is met, under P3; its P1 resolution was met at the lowering.
    cid = contract(client, plan="bpm/premium", at=SIGNED_AT)
    opened = "2026-06-01T09:00:00+03:00"
    a, b, c = (ticket(client, cid, at=opened, priority="P1") for _ in range(3))
    post(client, f"/tickets/{a}/respond", at="2026-06-01T10:30:00+03:00")
    post(client, f"/tickets/{b}/respond", at="2026-06-01T09:30:00+03:00")
    post(client, f"/tickets/{c}/classify", at="2026-06-01T09:30:00+03:00", priority="P3")
    post(client, f"/tickets/{c}/respond", at="2026-06-01T14:00:00+03:00")
    post(client, f"/tickets/{a}/classify", at="2026-06-01T20:00:00+03:00", priority="P3")
    position = post(client, f"/tickets/{b}/classify", at="2026-06-01T22:00:00+03:00", priority="P4")["position"]

    due = at("2026-06-01T21:00:00+03:00")
    body = sla(client, a, position)
    assert clock(body, "response") == (at("2026-06-01T10:00:00+03:00"), at("2026-06-01T10:30:00+03:00"), "missed")
    assert clock(body, "resolution") == (due, at("2026-06-01T20:00:00+03:00"), "met")
    assert (body["priority"], body["response"]["priority"], body["resolution"]["priority"]) == ("P3", "P1", "P1")
    assert body["resolution"]["stopped_by"] == "lowered"
    body = sla(client, b, position)
    assert clock(body, "response")[2] == "met" and body["response"]["priority"] == "P1"
    assert clock(body, "resolution") == (due, at("2026-06-01T22:00:00+03:00"), "missed")
    body = sla(client, c, position)
    assert clock(body, "response") == (at("2026-06-01T15:00:00+03:00"), at("2026-06-01T14:00:00+03:00"), "met")
    assert (body["response"]["priority"], body["resolution"]["priority"]) == ("P3", "P1")
    assert clock(body, "resolution") == (due, at("2026-06-01T09:30:00+03:00"), "met")

    shown = report(client, cid, "2026-06", position)
    p1, p3, p4 = (shown["groups"][k] for k in ("P1", "P3", "P4"))
    assert (p1["tickets"], counts(p1, "response"), counts(p1, "resolution")) == (
        3, {"met": 1, "missed": 1}, {"met": 2, "missed": 1})
    assert (p3["tickets"], counts(p3, "response"), counts(p3, "resolution")) == (1, {"met": 1}, {})
    assert (p4["tickets"], counts(p4, "response"), counts(p4, "resolution")) == (0, {}, {})
    # Lowered P1 resolutions are timed as resolved: 11 h, 13 h and 0.5 h.
    assert (p1["resolution"]["timed"], p1["resolution"]["mean_minutes"]) == (3, round((660 + 780 + 30) / 3, 2))
    assert shown["tickets"] == shown["all"]["tickets"] == 3
