"""The rows one batch of a PostgreSQL view reads and changes, by key.

The projection decides, the view only gets and puts rows (and, for rows it cannot read one by
one without a round trip per event, runs the projection's folds, which are the projection's
rules applied to a row). So that a batch costs a few statements rather than one per event, the
folds of a batch's rows are queued (`change`) and run at flush (`settle`), after one query has
read every row they need; the few rows of a contract (its terms, its periods) are read on first
use and kept for the batch. Changed rows are written back at the view's flush, one statement
per table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Rows(Generic[K, V]):
    """One table's rows of a batch: as read (`loaded`, None for a key without a row), as
    changed since (`changed`, until `take_changed` hands them to the write), and the folds
    waiting for their rows."""

    def __init__(self, load: Callable[[list[K]], dict[K, V]]) -> None:
        self.load = load
        self.loaded: dict[K, V | None] = {}
        self.changed: dict[K, V] = {}
        self.folds: list[tuple[K, Callable[..., Any], tuple[Any, ...]]] = []

    def prefetch(self, keys: Iterable[K]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self.loaded and k not in self.changed]
        if missing:
            found = self.load(missing)
            self.loaded.update({k: found.get(k) for k in missing})

    def get(self, key: K) -> V | None:
        changed = self.changed.get(key)
        if changed is not None:
            return changed
        if key not in self.loaded:
            self.loaded[key] = self.load([key]).get(key)
        return self.loaded[key]

    def put(self, key: K, value: V) -> None:
        self.changed[key] = value

    def change(self, key: K, fold: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """Queue a fold of the key's row. True: whether the row takes it is known only at
        `settle`, which counts the folds that did not."""
        self.folds.append((key, fold, args))
        return True

    def prefetch_pending(self) -> list[V | None]:
        """Read the rows the queued folds need, in one query; those rows (None: no row yet),
        so that the caller can read what they refer to in one query as well."""
        keys = list(dict.fromkeys(key for key, _, _ in self.folds))
        self.prefetch(keys)
        changed, loaded = self.changed, self.loaded
        return [changed[k] if k in changed else loaded[k] for k in keys]

    def settle(self) -> int:
        """Read the rows the queued folds need, in one query, and run the folds in order; how
        many of them changed nothing (events their rows had already applied)."""
        folds, self.folds = self.folds, []
        self.prefetch(key for key, _, _ in folds)
        declined = 0
        for key, fold, args in folds:
            row = fold(self.get(key), *args)
            if row is None:
                declined += 1
            else:
                self.put(key, row)
        return declined

    def take_changed(self) -> dict[K, V]:
        """The changed rows, which from now on count as read (the caller writes them)."""
        changed, self.changed = self.changed, {}
        self.loaded.update(changed)
        return changed
