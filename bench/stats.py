"""Figures every benchmark prints the same way: rate and latency percentiles."""

from __future__ import annotations

import statistics
from typing import Any


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(name: str, count: int, seconds: float, latencies_ms: list[float] | None = None,
            unit: str = "events/s", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"benchmark": name, "count": count, "seconds": round(seconds, 3),
                           "rate": round(count / seconds, 1) if seconds else float("inf"), "unit": unit}
    if latencies_ms:
        row.update(p50_ms=round(percentile(latencies_ms, 50), 2), p99_ms=round(percentile(latencies_ms, 99), 2),
                   mean_ms=round(statistics.fmean(latencies_ms), 2))
    row.update(extra)
    print(format_row(row), flush=True)
    return row


def format_row(row: dict[str, Any]) -> str:
    text = f"{row['benchmark']:<48} {row['rate']:>10,.0f} {row['unit']:<12} ({row['count']:,} in {row['seconds']} s)"
    if "p50_ms" in row:
        text += f"  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
    extra = {k: v for k, v in row.items() if k not in {"benchmark", "count", "seconds", "rate", "unit", "p50_ms", "p99_ms", "mean_ms"}}
    if extra:
        text += "  " + " ".join(f"{k}={v}" for k, v in extra.items())
    return text
