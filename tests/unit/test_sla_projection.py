"""The SLA projection on its in-memory view: deadlines follow the latest facts, breaches are
noticed once per ticket, clock and due instant, and replays are idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.process.catalog import load_catalog
from projections.envelope import Envelope
from projections.sla import InMemorySlaView, SlaProjection

CATALOG = load_catalog()
T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # Mon 09:00 Moscow
H = timedelta(hours=1)


class Stream:
    """Envelopes of one contract and its tickets, numbered in store order."""

    def __init__(self, plan: str = "bpm/premium", contract_id: str = "c-1") -> None:
        self.contract_id, self.envs = contract_id, []
        terms = CATALOG[plan]
        self.add("Contract.Signed", contract_id, T0 - H, plan_id=plan, terms=terms.to_dict(),
                 time_zone=terms.time_zone, holidays=[], customer="Acme", starts_on="2026-01-01")

    def add(self, kind: str, aggregate: str, at: datetime, **data: Any) -> Envelope:
        env = Envelope(len(self.envs) + 1, kind, aggregate, 1, self.contract_id, at, at, data)
        self.envs.append(env)
        return env

    def open(self, ticket: str, at: datetime, priority: str | None = None, category: str | None = None) -> None:
        self.add("Ticket.Opened", ticket, at, title="x", reporter="ana", channel="portal",
                 priority=priority, category=category, down_since=None)


def run(envs: list[Envelope], view: InMemorySlaView | None = None) -> InMemorySlaView:
    view = view or InMemorySlaView()
    projection = SlaProjection()
    for env in envs:
        projection.apply(env, view)
    return view


def test_deadlines_are_derived_from_the_latest_facts_of_each_ticket() -> None:
    s = Stream()
    s.open("t-1", T0, priority="P1")
    view = run(s.envs)
    derived = view.tickets["t-1"].derived
    assert derived is not None
    assert (derived.response.due_at, derived.resolution.due_at) == (T0 + H, T0 + 12 * H)
    assert derived.response.on and derived.response.target == "1h"
    s.add("Ticket.Responded", "t-1", T0 + H / 2)
    s.add("Ticket.Classified", "t-1", T0 + 2 * H, priority="P3")  # a premium P1 lowered: met
    derived = run(s.envs).tickets["t-1"].derived
    assert derived is not None and derived.priority == "P3"
    assert (derived.response.on, derived.response.stopped_at) == (False, T0 + H / 2)
    assert (derived.resolution.on, derived.resolution.stopped_at) == (False, T0 + 2 * H)


def test_a_clock_past_due_is_noticed_once_and_again_only_for_a_new_due_instant() -> None:
    s = Stream()
    s.open("t-1", T0, priority="P2")  # response 4 h (24x7)
    view, projection = run(s.envs), SlaProjection()
    projection.tick(T0 + 4 * H, view)
    assert view.notices == []  # at the due instant: not yet past it
    projection.tick(T0 + 4 * H + timedelta(seconds=1), view)
    projection.tick(T0 + 5 * H, view)
    assert [(n.clock, n.due_at) for n in view.notices] == [("response", T0 + 4 * H)]
    assert view.notices[0].notice_id == f"sla-breach:t-1:response:{(T0 + 4 * H).isoformat()}"
    # Raised to P1 (60 min from the opening): a new due instant, so a new breach.
    projection.apply(s.add("Ticket.Classified", "t-1", T0 + 5 * H, priority="P1"), view)
    projection.tick(T0 + 5 * H, view)
    assert [(n.clock, n.due_at, n.priority) for n in view.notices][1:] == [("response", T0 + H, "P1")]


def test_a_paused_clock_is_not_breached_before_its_due_but_is_after_it() -> None:
    s = Stream()
    s.open("t-1", T0, priority="P1")
    s.add("Ticket.Responded", "t-1", T0)
    s.add("Ticket.Paused", "t-1", T0 + H)  # 11 h of the resolution's 12 h left: due unknown
    view, projection = run(s.envs), SlaProjection()
    projection.tick(T0 + 48 * H, view)
    assert view.notices == []
    s.add("Ticket.Resumed", "t-1", T0 + 48 * H)
    s.add("Ticket.Paused", "t-1", T0 + 60 * H)  # paused 1 h after the due instant
    view = run(s.envs)
    projection.tick(T0 + 61 * H, view)
    assert [(n.clock, n.due_at) for n in view.notices] == [("resolution", T0 + 59 * H)]


def test_stopped_clocks_and_plans_without_targets_are_never_noticed() -> None:
    s = Stream(plan="crm-experts/gold")
    s.open("t-1", T0, priority="P1")  # no resolution target on crm-experts
    s.add("Ticket.Responded", "t-1", T0 + 2 * H)  # late: missed, but stopped
    view = run(s.envs)
    SlaProjection().tick(T0 + 1000 * H, view)
    assert view.notices == []


def test_replaying_all_events_equals_replaying_them_in_two_parts_and_duplicates_change_nothing() -> None:
    s = Stream()
    s.open("t-1", T0, priority="P2")
    s.open("t-2", T0 + H, category="incident")
    for kind, at in (("Responded", 2), ("Paused", 3), ("Resumed", 5), ("Resolved", 7), ("Reopened", 8)):
        s.add(f"Ticket.{kind}", "t-1", T0 + at * H)
    s.add("Ticket.Classified", "t-2", T0 + 9 * H, priority="P1", category="system-down")
    whole = run(s.envs)
    parts = run(s.envs[5:], run(s.envs[:5]))
    again = run(s.envs[3:], run(s.envs))
    assert whole.tickets == parts.tickets == again.tickets
    assert whole.tickets["t-1"].facts.resolutions == ((T0 + 7 * H, T0 + 8 * H),)


def test_ticket_events_of_an_unsigned_contract_are_kept_without_deadlines() -> None:
    view = InMemorySlaView()
    env = Envelope(1, "Ticket.Opened", "t-1", 1, "c-x", T0, T0, {"priority": "P1", "category": None})
    assert SlaProjection().apply(env, view) is True
    assert view.tickets["t-1"].derived is None
    SlaProjection().tick(T0 + 100 * H, view)
    assert view.notices == []


def test_events_the_sla_ignores_are_reported_as_unused_and_bad_ones_fail_in_apply() -> None:
    projection, view = SlaProjection(), InMemorySlaView()
    spent = Envelope(1, "Ticket.TimeConsumed", "t-1", 2, "c-1", T0, T0, {"minutes": 5, "kind": "work"})
    assert projection.apply(spent, view) is False
    bad = Envelope(2, "Ticket.Classified", "t-1", 3, "c-1", T0, T0, {"priority": "P9"})
    with pytest.raises(ValueError, match="unknown priority"):
        projection.apply(bad, view)
    signed = Envelope(3, "Contract.Signed", "c-1", 1, "c-1", T0, T0,
                      {"plan_id": "x/y", "terms": {"plan_id": "x/y"}, "time_zone": "UTC", "holidays": []})
    with pytest.raises(ValueError):
        projection.apply(signed, view)
