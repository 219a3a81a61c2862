"""The interfaces the consumers drive, declared as `typing.Protocol`s: what the runner and its
batches need of a projection and of the view a projection writes to. Projections and views
satisfy them structurally (no base class to inherit); the rules live in the projections, the
views only get and put rows and answer the indexed questions the projections ask.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from projections.envelope import Envelope

# -- projections and their views ---------------------------------------------------------------


class View(Protocol):
    """A read model's rows, bound to the open transaction of one batch (or one tick)."""

    def flush(self) -> int:
        """Write what the batch changed; how many of its changes were declined because the
        rows had already applied them (a view that applies at once declines none here)."""
        ...


class Projection(Protocol):
    """A read model's rules: what an event does to the view's rows, and what the passing of
    time does (`tick`, a no-op for a projection with nothing timed)."""

    name: str

    def apply(self, env: Envelope, view: Any) -> bool:
        """Apply one event; False if it changes nothing (unrelated, or already applied)."""
        ...

    def tick(self, now: datetime, view: Any) -> None:
        """Act on what became due by `now` (breaches, spent budgets)."""
        ...
