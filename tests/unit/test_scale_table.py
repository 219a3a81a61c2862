"""The scale bench's verdicts (bench/scale.py): which rows its table flags."""

from __future__ import annotations

from typing import Any

from bench.scale import flags, table, tenths


def row(name: str, rate: float, **extra: Any) -> dict[str, Any]:
    return {"benchmark": name, "count": 1, "seconds": 1.0, "rate": rate, "unit": "events/s", **extra}


def test_a_rate_falling_by_more_than_a_fifth_is_flagged_and_one_falling_less_is_not() -> None:
    results = {100_000: {"read": row("read", 10_000), "write": row("write", 10_000)},
               1_000_000: {"read": row("read", 8_100), "write": row("write", 7_900)}}
    assert flags(results, "read") == []
    assert flags(results, "write") == ["rate falls 21%"]


def test_a_rebuild_below_half_the_read_rate_is_flagged_at_each_size_it_is() -> None:
    results = {100_000: {"rebuild": row("rebuild", 4_000, of_read="49%")},
               1_000_000: {"rebuild": row("rebuild", 5_000, of_read="50%")}}
    assert flags(results, "rebuild") == ["below 50% of read+decode at 100,000"]


def test_the_table_has_a_column_per_size_the_ratio_the_flags_and_the_load() -> None:
    results = {100_000: {"write": row("write", 10_000, load=1.0),
                         "GET": row("GET", 2, p50_ms=400.0, p99_ms=900.0, load=2.0)},
               1_000_000: {"write": row("write", 5_000, load=6.0),
                           "GET": row("GET", 2, p50_ms=410.0, p99_ms=950.0, load=8.0)}}
    lines = table(results).splitlines()
    assert "100,000" in lines[1] and "1,000,000" in lines[1]
    assert "10,000/s" in lines[2] and "0.50x" in lines[2] and "rate falls 50%" in lines[2]
    assert "p50 400.0 / p99 900.0 ms" in lines[3] and "1.00x" in lines[3] and "<<" not in lines[3]
    assert lines[4].startswith("load average") and lines[4].split()[-2:] == ["1.5", "7.0"]


def test_the_write_rates_of_the_first_and_last_tenth_start_after_what_was_there_before() -> None:
    # 4 events there before the batches (the signings); then 100 events, the first 20 in one
    # second, the rest at 10 a second.
    marks = [(0.0, 4), (1.0, 24), *((1.0 + k, 24 + 10 * k) for k in range(1, 9))]
    assert tenths(marks) == (20.0, 10.0)
