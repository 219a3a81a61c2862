"""Every projection is idempotent per row, on its in-memory view: each row records the store
position of the last event applied to it and the projection ignores an event at or below it.
So replaying everything equals replaying it in two overlapping parts (a rebuild that ran ahead
of the live runner, which then reads the overlap again), and a duplicate batch (a redelivery)
changes nothing and is counted as ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.availability import AvailabilityProjection, InMemoryAvailabilityView
from projections.envelope import Envelope
from projections.ledger import InMemoryLedgerView, LedgerProjection
from projections.sla import InMemorySlaView, SlaProjection
from projections.tickets import InMemoryTicketsView, TicketsProjection
from tests.strategies import contract_histories

PROJECTIONS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "tickets": (TicketsProjection, InMemoryTicketsView),
    "sla": (SlaProjection, InMemorySlaView),
    "ledger": (LedgerProjection, InMemoryLedgerView),
    "availability": (AvailabilityProjection, InMemoryAvailabilityView),
}


def replay(name: str, *parts: list[Envelope]) -> tuple[Any, list[list[bool]]]:
    """A fresh view after applying each part in turn, and what `apply` answered for each event."""
    make_projection, make_view = PROJECTIONS[name]
    projection, view = make_projection(), make_view()
    return view, [[projection.apply(env, view) for env in part] for part in parts]


@pytest.mark.parametrize("name", PROJECTIONS)
@settings(max_examples=40, deadline=None)
@given(envs=contract_histories(), data=st.data())
def test_replaying_everything_equals_replaying_it_in_two_overlapping_parts(
    name: str, envs: list[Envelope], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(1, len(envs)), label="first part ends")
    back = data.draw(st.integers(0, cut), label="second part starts")
    whole, _ = replay(name, envs)
    parts, (_, again) = replay(name, envs[:cut], envs[back:])
    assert parts == whole
    assert not any(again[:cut - back]), "every event of the overlap is ignored"


@pytest.mark.parametrize("name", PROJECTIONS)
@settings(max_examples=40, deadline=None)
@given(envs=contract_histories(), data=st.data())
def test_a_duplicate_batch_changes_nothing_and_is_counted_as_ignored(
    name: str, envs: list[Envelope], data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, len(envs) - 1), label="batch starts")
    end = data.draw(st.integers(start + 1, len(envs)), label="batch ends")
    once, _ = replay(name, envs)
    twice, (_, repeated) = replay(name, envs, envs[start:end])
    assert twice == once
    assert repeated == [False] * (end - start)
