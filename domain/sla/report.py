"""The monthly SLA compliance report of one contract, from its tickets' evaluated clocks.

A ticket belongs to the month it was opened in, in the contract's time zone. Each of its clocks
is counted under the group that judged it (`ClockResult.group`): the priority, or the category
(the plan's default category standing in for an unknown one), in force when the clock stopped,
or the current one while it is on; so a P1 answered late and then lowered to P3 counts its
missed response under P1 and its running resolution under P3. A group's `tickets` are those
with a clock counted under it (a ticket may count in two groups; `all` counts each once).
Per group and clock: how many clocks are met, missed,
breached (on and past due at the report's instant), running, paused or have no target;
`met_pct` = met / (met + missed + breached), None when nothing was judged; and the mean and
90th percentile (nearest rank: the smallest value at or above 90 % of the sorted values) of
the business time to respond and to resolve, over the clocks stopped by a response or a
resolution (a bpm premium P1 lowered to P3/P4 counts as resolved), whatever their target.
"""

from __future__ import annotations

from datetime import timedelta
from statistics import fmean
from typing import Any

from domain.sla.clock import ClockResult, SlaResult, SlaRules
from domain.values import PRIORITIES

STATUSES = ("met", "missed", "breached", "running", "paused", "none")
JUDGED = ("met", "missed", "breached")
_TIMED = {"response": ("responded", "resolved"), "resolution": ("resolved", "lowered")}


def groups_of(rules: SlaRules) -> list[str]:
    """The plan's target keys: P1-P4, or its categories."""
    return list(PRIORITIES) if rules.terms.targets_by == "priority" else sorted(rules.terms.targets)


def compliance(rules: SlaRules, results: list[SlaResult]) -> dict[str, Any]:
    """Per group (and for all tickets): each clock's counts, % met, mean and p90 minutes."""
    keys = groups_of(rules)
    keys += sorted({c.group for r in results for c in r.clocks} - set(keys))
    return {
        "targets_by": rules.terms.targets_by,
        "tickets": len(results),
        "groups": {k: _group(results, k) for k in keys},
        "all": _group(results, None),
    }


def _group(results: list[SlaResult], key: str | None) -> dict[str, Any]:
    """The clocks judged under `key` (None: every clock) and the tickets they belong to."""
    response = [r.response for r in results if key is None or r.response.group == key]
    resolution = [r.resolution for r in results if key is None or r.resolution.group == key]
    tickets = sum(1 for r in results if key is None or key in (r.response.group, r.resolution.group))
    return {"tickets": tickets, "response": clock_stats(response), "resolution": clock_stats(resolution)}


def clock_stats(clocks: list[ClockResult]) -> dict[str, Any]:
    counts = {s: sum(c.status == s for c in clocks) for s in STATUSES}
    judged = sum(counts[s] for s in JUDGED)
    timed = [c.elapsed for c in clocks if c.stopped_by in _TIMED[c.clock] and c.elapsed is not None]
    values = sorted(t / timedelta(minutes=1) for t in timed)
    return {
        **counts,
        "met_pct": round(100 * counts["met"] / judged, 2) if judged else None,
        "timed": len(values),
        "mean_minutes": round(fmean(values), 2) if values else None,
        "p90_minutes": round(percentile(values, 90), 2) if values else None,
    }


def percentile(ordered: list[float], pct: int) -> float:
    """Nearest rank: the value at rank ceil(pct/100 x n) of the sorted values (n > 0)."""
    rank = -(-pct * len(ordered) // 100)  # integer ceiling: no float rounding at exact ranks
    return ordered[max(1, rank) - 1]
