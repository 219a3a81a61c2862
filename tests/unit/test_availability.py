"""Unit and property tests for the downtime interval math in domain.availability."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.availability import (
    Interval,
    intersect,
    merge,
    minutes_in_month,
    monthly_availability,
    split_by_month,
    subtract,
    total_seconds,
)
from domain.periods import month_bounds

BOGOTA = ZoneInfo("America/Bogota")
MADRID = ZoneInfo("Europe/Madrid")
ORIGIN = datetime(2025, 12, 1, tzinfo=UTC)

# Kept local on purpose: tests/strategies.py may be written concurrently by a colleague.
# Bounds are whole minutes spread over ~5 months (across both DST changes of 2026 and
# several month ends), each shown in UTC, Bogota or Madrid so mixed zones are exercised.
_SPAN_MINUTES = 150 * 24 * 60
_display_zones = st.sampled_from([UTC, BOGOTA, MADRID])


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    start = ORIGIN + timedelta(minutes=draw(st.integers(0, _SPAN_MINUTES)))
    end = start + timedelta(minutes=draw(st.integers(0, 45 * 24 * 60)))
    return start.astimezone(draw(_display_zones)), end.astimezone(draw(_display_zones))


interval_lists = st.lists(intervals(), max_size=8)
zone_names = st.sampled_from(["America/Bogota", "Europe/Madrid", "UTC"])


def length(interval: Interval) -> float:
    start, end = interval
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)


# Properties of merging.


@given(interval_lists)
def test_the_merged_total_is_between_the_longest_input_and_the_sum(items: list[Interval]) -> None:
    merged_total = total_seconds(items)
    assert merged_total <= sum(length(i) for i in items)
    assert merged_total >= max((length(i) for i in items), default=0.0)


@given(interval_lists)
def test_merging_is_idempotent(items: list[Interval]) -> None:
    merged = merge(items)
    assert merge(merged) == merged


@given(interval_lists.flatmap(lambda items: st.tuples(st.just(items), st.permutations(items))))
def test_merging_ignores_the_order_of_the_inputs(
    pair: tuple[list[Interval], list[Interval]],
) -> None:
    items, shuffled = pair
    assert merge(shuffled) == merge(items)


@given(interval_lists)
def test_merged_intervals_are_sorted_disjoint_and_apart(items: list[Interval]) -> None:
    merged = merge(items)
    for start, end in merged:
        assert start < end
        assert start.utcoffset() == timedelta(0)
    for (_, end), (next_start, _) in itertools.pairwise(merged):
        assert end < next_start


# Properties of splitting, subtracting and intersecting.


@given(interval_lists, zone_names)
def test_splitting_by_month_and_joining_gives_back_the_merged_input(
    items: list[Interval], time_zone: str
) -> None:
    parts = split_by_month(items, time_zone)
    assert merge(p for month in parts.values() for p in month) == merge(items)


@given(interval_lists, zone_names)
def test_every_split_part_lies_inside_its_local_month(
    items: list[Interval], time_zone: str
) -> None:
    for month, parts in split_by_month(items, time_zone).items():
        month_start, month_end = month_bounds(month, time_zone)
        assert parts
        for start, end in parts:
            assert month_start <= start < end <= month_end


@given(interval_lists, interval_lists)
def test_subtracting_then_adding_back_the_intersection_keeps_the_total(
    items: list[Interval], removed: list[Interval]
) -> None:
    kept, common = subtract(items, removed), intersect(items, removed)
    assert total_seconds(kept) + total_seconds(common) == total_seconds(items)
    assert intersect(kept, removed) == []
    assert merge(kept + common) == merge(items)


@given(interval_lists, interval_lists)
def test_intersection_is_symmetric(items: list[Interval], other: list[Interval]) -> None:
    assert intersect(items, other) == intersect(other, items)


def test_intervals_must_be_aware_and_forward() -> None:
    with pytest.raises(ValueError):
        merge([(datetime(2026, 1, 1), datetime(2026, 1, 2))])
    with pytest.raises(ValueError):
        merge([(local(UTC, 2026, 1, 2), local(UTC, 2026, 1, 1))])


def test_touching_intervals_merge_and_empty_ones_vanish() -> None:
    a = (local(UTC, 2026, 1, 1, 10), local(UTC, 2026, 1, 1, 11))
    b = (local(UTC, 2026, 1, 1, 11), local(UTC, 2026, 1, 1, 12))
    empty = (local(UTC, 2026, 1, 1, 15), local(UTC, 2026, 1, 1, 15))
    assert merge([b, empty, a]) == [(a[0], b[1])]


# Month lengths, worked by hand.


@pytest.mark.parametrize(
    ("month", "time_zone", "minutes"),
    [
        ("2026-01", "America/Bogota", 44_640),  # 31 days
        ("2026-02", "America/Bogota", 40_320),  # 28 days
        ("2028-02", "America/Bogota", 41_760),  # leap year: 29 days
        ("2026-04", "America/Bogota", 43_200),  # 30 days
        ("2026-03", "Europe/Madrid", 44_580),  # 31 days, clocks go forward an hour
        ("2026-10", "Europe/Madrid", 44_700),  # 31 days, clocks go back an hour
        ("2026-07", "Europe/Madrid", 44_640),
    ],
)
def test_minutes_in_month(month: str, time_zone: str, minutes: int) -> None:
    assert minutes_in_month(month, time_zone) == minutes


def test_month_bounds_are_local_midnights_in_utc() -> None:
    assert month_bounds("2026-02", "America/Bogota") == (
        datetime(2026, 2, 1, 5, tzinfo=UTC),
        datetime(2026, 3, 1, 5, tzinfo=UTC),
    )
    assert month_bounds("2026-03", "Europe/Madrid") == (
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
    )


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "", "x"])
def test_a_bad_month_string_is_refused(month: str) -> None:
    with pytest.raises(ValueError):
        month_bounds(month, "UTC")


# Downtime examples, worked by hand.


def test_an_outage_across_midnight_at_month_end_splits_sixty_sixty_in_bogota() -> None:
    outage = (local(BOGOTA, 2026, 1, 31, 23), local(BOGOTA, 2026, 2, 1, 1))
    parts = split_by_month([outage], "America/Bogota")
    assert list(parts) == ["2026-01", "2026-02"]
    assert total_seconds(parts["2026-01"]) / 60 == 60
    assert total_seconds(parts["2026-02"]) / 60 == 60
    for month in ("2026-01", "2026-02"):
        result = monthly_availability(month, "America/Bogota", [outage], [], None)
        assert result.downtime_minutes == 60


def test_the_same_outage_stays_in_january_when_counted_in_utc() -> None:
    outage = (local(BOGOTA, 2026, 1, 31, 23), local(BOGOTA, 2026, 2, 1, 1))
    assert list(split_by_month([outage], "UTC")) == ["2026-02"]


def test_overlapping_outages_are_counted_once() -> None:
    outages = [
        (local(BOGOTA, 2026, 3, 10, 10), local(BOGOTA, 2026, 3, 10, 11)),
        (local(BOGOTA, 2026, 3, 10, 10, 30), local(BOGOTA, 2026, 3, 10, 12)),
    ]
    result = monthly_availability("2026-03", "America/Bogota", outages, [], 99.96)
    assert result.downtime_minutes == 120
    assert result.availability_pct == round(100 * (1 - 120 / 44_640), 4) == 99.7312
    assert result.met is False


def test_a_99_96_target_allows_17_28_minutes_in_a_30_day_month() -> None:
    result = monthly_availability("2026-04", "America/Bogota", [], [], 99.96)
    assert result.minutes_in_month == 43_200
    assert result.allowed_downtime_minutes == 17.28
    assert result.budget_left_minutes == 17.28
    assert result.availability_pct == 100.0
    assert result.met is True


def test_downtime_exactly_at_the_budget_still_meets_the_target() -> None:
    start = local(BOGOTA, 2026, 4, 15, 9)
    outage = (start, start + timedelta(minutes=17.28))
    result = monthly_availability("2026-04", "America/Bogota", [outage], [], 99.96)
    assert result.availability_pct == 99.96
    assert result.met is True
    assert result.budget_left_minutes == 0


def test_planned_maintenance_is_excluded_from_downtime() -> None:
    outage = (local(MADRID, 2026, 3, 29, 1), local(MADRID, 2026, 3, 29, 5))  # 3 real hours
    window = (local(MADRID, 2026, 3, 29, 4), local(MADRID, 2026, 3, 29, 6))
    result = monthly_availability("2026-03", "Europe/Madrid", [outage], [window], 99.96)
    assert result.maintenance_minutes == 60
    assert result.downtime_minutes == 120
    assert result.minutes_in_month == 44_580
    assert result.budget_left_minutes == round(44_580 * 0.04 / 100 - 120, 4)
    assert result.met is False


def test_without_a_target_only_the_measurements_are_given() -> None:
    result = monthly_availability("2026-02", "UTC", [], [], None)
    assert (result.met, result.allowed_downtime_minutes, result.budget_left_minutes) == (
        None,
        None,
        None,
    )


@given(interval_lists, interval_lists, zone_names)
def test_monthly_downtime_and_maintenance_add_up_to_the_outage_in_the_month(
    outages: list[Interval], maintenance: list[Interval], time_zone: str
) -> None:
    result = monthly_availability("2026-03", time_zone, outages, maintenance, 99.96)
    inside = total_seconds(intersect(outages, [month_bounds("2026-03", time_zone)])) / 60
    assert result.downtime_minutes + result.maintenance_minutes == pytest.approx(inside)
    assert 0 <= result.availability_pct <= 100
    assert result.met == (result.availability_pct >= 99.96)
