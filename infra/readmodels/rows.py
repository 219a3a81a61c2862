"""The rows one batch of a PostgreSQL view reads and changes, by key.

A view gets rows by key and puts them back; the projection decides (including whether a row
already holds an event). So that a batch costs a few statements, not one per event, the
runner first hands the view the batch's envelopes (`prefetch`) and each table's rows are read
in one query; a key not prefetched is read on its own (tests and benchmarks that drive a view
directly). Changed rows are written back at the view's `flush`, one statement per table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Rows(Generic[K, V]):
    """One table's rows of a batch: as read (`loaded`, None for a key without a row) and as
    changed since (`changed`, until `take_changed` hands them to the write)."""

    def __init__(self, load: Callable[[list[K]], dict[K, V]]) -> None:
        self.load = load
        self.loaded: dict[K, V | None] = {}
        self.changed: dict[K, V] = {}

    def prefetch(self, keys: Iterable[K]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self.loaded and k not in self.changed]
        if missing:
            found = self.load(missing)
            self.loaded.update({k: found.get(k) for k in missing})

    def get(self, key: K) -> V | None:
        if key in self.changed:
            return self.changed[key]
        self.prefetch([key])
        return self.loaded.get(key)

    def put(self, key: K, value: V) -> None:
        self.changed[key] = value

    def take_changed(self) -> dict[K, V]:
        """The changed rows, which from now on count as read (the caller writes them)."""
        changed, self.changed = self.changed, {}
        self.loaded.update(changed)
        return changed
