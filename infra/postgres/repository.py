"""Loading aggregates for commands: a cache that only ever holds committed states.

A command gets its own copy of the aggregate, brought up to date with any events other
writers (processes) recorded since the cached version; the copy goes into the cache only
once its events are in the store. So an aggregate whose save failed is never served again,
and no reader sees a state that a command is still deciding. Aggregates are copied
shallowly: their event methods rebind attributes and never change a list or dict in place.

A command's first attempt may take the cached state as it is (`trusting`), without the round
trip that asks the store for newer events: whatever it then records is checked by the
store's unique (id, version) key, so a decision on a stale state cannot be recorded; what was
served but not written is checked by the append itself, in its transaction (sql/append.sql);
and the host (infra/postgres/store.py) decides a refusal again on fresh state.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.domain import Aggregate


def fork(aggregate: Any) -> Any:
    """A copy that shares no pending events with the original."""
    twin = copy.copy(aggregate)
    object.__setattr__(twin, "_pending_events", [])
    return twin


class CommittedCache(Repository[UUID]):
    """The library's repository with a cache of committed aggregates (see the module doc)."""

    _local = threading.local()

    @contextmanager
    def trusting(self) -> Iterator[dict[UUID, int]]:
        """While open, this thread's loads take cached states as they are; yields what was
        served so (aggregate id: version)."""
        served: dict[UUID, int] = {}
        self._local.served = served
        try:
            yield served
        finally:
            self._local.served = None

    def served(self) -> dict[UUID, int] | None:
        """What this thread's open `trusting` served from the cache, if one is open."""
        return getattr(self._local, "served", None)

    def get(self, aggregate_id: UUID, *, version: int | None = None, projector_func: Any = None,
            **_: Any) -> Any:
        project = projector_func or _replay
        if version is not None or self.cache is None:
            return self._reconstruct_aggregate(aggregate_id, version, project)
        try:
            aggregate = fork(self.cache.get(aggregate_id))
        except KeyError:
            aggregate = self._reconstruct_aggregate(aggregate_id, None, project)
            self.cache.put(aggregate_id, fork(aggregate))
            return aggregate
        served = self.served()
        if served is not None:
            served[aggregate_id] = aggregate.version
            return aggregate
        newer = list(self.event_store.get(originator_id=aggregate_id, gt=aggregate.version))
        if newer:
            aggregate = project(aggregate, newer)
            self.cache.put(aggregate_id, fork(aggregate))
        return aggregate

    def committed(self, aggregate: Aggregate) -> None:
        """Remember an aggregate whose events are all in the store."""
        if self.cache is not None:
            self.cache.put(aggregate.id, fork(aggregate))


def _replay(aggregate: Any, events: Any) -> Any:
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
