"""Loading aggregates for commands: a cache that only ever holds committed states.

A command gets its own copy of the aggregate, brought up to date with any events other
writers (processes) recorded since the cached version; the copy goes into the cache only
once its events are in the store. So an aggregate whose save failed is never served again,
and no reader sees a state that a command is still deciding. Aggregates are copied
shallowly: their event methods rebind attributes and never change a list or dict in place.
"""

from __future__ import annotations

import copy
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
