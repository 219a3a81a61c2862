"""Unit and property tests for the charge rules and accounting periods in domain.billing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.billing import (
    DOLIBARR_RULES,
    ChargeRule,
    credit_balance,
    credit_charge,
    entry_charge,
    hour_bank_charge,
    split_allowance,
)
from domain.periods import add_months, allowance_period, bank_period

BOGOTA = ZoneInfo("America/Bogota")
MADRID = ZoneInfo("Europe/Madrid")

# Kept local on purpose: tests/strategies.py may be written concurrently by a colleague.
minutes_worked = st.integers(min_value=1, max_value=100_000)
block_rules = st.builds(
    ChargeRule,
    minimum=st.integers(min_value=0, max_value=600),
    block=st.integers(min_value=1, max_value=120),
)
rounded_rules = st.sampled_from([DOLIBARR_RULES["query"], DOLIBARR_RULES["intervention"]])
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from(["America/Bogota", "Europe/Madrid", "America/New_York", "UTC"])


# Worked examples, written out by hand from the 2byte page.


@pytest.mark.parametrize(
    ("kind", "minutes", "credits"),
    [
        ("query", 1, 15),
        ("query", 15, 15),
        ("query", 16, 30),
        ("query", 61, 75),
        ("intervention", 10, 45),
        ("intervention", 45, 45),
        ("intervention", 46, 60),
        ("intervention", 90, 90),
        ("update", 1, 120),
        ("update", 500, 120),
    ],
)
def test_dolibarr_charges_match_the_worked_examples(kind: str, minutes: int, credits: int) -> None:
    assert credit_charge(DOLIBARR_RULES[kind], minutes) == credits


@pytest.mark.parametrize("minutes", [0, -1, -15])
def test_a_charge_for_no_time_is_refused(minutes: int) -> None:
    with pytest.raises(ValueError):
        credit_charge(DOLIBARR_RULES["query"], minutes)
    with pytest.raises(ValueError):
        hour_bank_charge(minutes)


def test_a_rule_needs_a_positive_block() -> None:
    with pytest.raises(ValueError):
        ChargeRule(minimum=15, block=0)


def test_the_dolibarr_rules_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        DOLIBARR_RULES["query"] = ChargeRule(minimum=1, block=1)


# Credit charges: properties.


@given(block_rules, minutes_worked)
def test_a_credit_charge_is_never_below_the_minimum(rule: ChargeRule, minutes: int) -> None:
    assert credit_charge(rule, minutes) >= rule.minimum


@given(block_rules, minutes_worked)
def test_a_credit_charge_covers_the_minutes_and_never_a_block_more(
    rule: ChargeRule, minutes: int
) -> None:
    charge = credit_charge(rule, minutes)
    assert charge >= minutes
    if charge > rule.minimum:
        assert charge % rule.block == 0
        assert charge - minutes < rule.block


@given(rounded_rules, minutes_worked)
def test_dolibarr_charges_above_the_minimum_are_whole_15_credit_blocks(
    rule: ChargeRule, minutes: int
) -> None:
    charge = credit_charge(rule, minutes)
    assert charge >= minutes
    if charge > rule.minimum:
        assert charge % 15 == 0
        assert charge - minutes < 15


@given(st.integers(min_value=0, max_value=1000), minutes_worked, minutes_worked)
def test_a_flat_rule_ignores_the_minutes(flat: int, minutes: int, other: int) -> None:
    rule = ChargeRule(minimum=0, block=15, flat=flat)
    assert credit_charge(rule, minutes) == credit_charge(rule, other) == flat


# The credit balance, from time entries counted by (kind, minutes).

charge_plans = st.dictionaries(
    st.sampled_from(["query", "intervention", "update"]),
    st.one_of(block_rules, st.builds(ChargeRule, minimum=st.just(0), block=st.just(15),
                                     flat=st.integers(min_value=0, max_value=600))),
)
# Few distinct minutes, so that entries repeat and are counted more than once; "work" is a
# kind no credit plan charges.
time_entries = st.lists(
    st.tuples(st.sampled_from(["query", "intervention", "update", "work"]), st.integers(min_value=1, max_value=40)),
    max_size=60,
)


def test_a_balance_counts_each_entry_by_the_dolibarr_rules() -> None:
    usage = {("intervention", 70): 1, ("query", 1): 2, ("work", 30): 3}  # 75 + 2 x 15 + nothing
    assert credit_balance(120, DOLIBARR_RULES, usage) == 15
    assert credit_balance(120, DOLIBARR_RULES, {}) == 120


@given(st.integers(min_value=0, max_value=100_000), charge_plans, time_entries)
def test_a_balance_from_counted_entries_equals_the_balance_entry_by_entry(
    granted: int, charges: dict[str, ChargeRule], entries: list[tuple[str, int]]
) -> None:
    one_by_one = granted - sum(entry_charge(charges, kind, minutes) for kind, minutes in entries)
    assert credit_balance(granted, charges, Counter(entries)) == one_by_one


@given(minutes_worked)
def test_an_hour_bank_debits_exactly_the_minutes(minutes: int) -> None:
    assert hour_bank_charge(minutes) == minutes


# Allowances.


@given(
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=1000),
)
def test_an_allowance_split_adds_up_and_covers_no_more_than_is_left(
    used_before: int, minutes: int, allowance: int
) -> None:
    covered, billable = split_allowance(used_before, minutes, allowance)
    assert covered + billable == minutes
    assert 0 <= covered <= max(0, allowance - used_before)
    assert billable >= 0


@pytest.mark.parametrize(
    ("used_before", "minutes", "expected"),
    [(0, 60, (60, 0)), (90, 60, (30, 30)), (120, 45, (0, 45)), (200, 10, (0, 10))],
)
def test_two_hours_of_guidance_split_by_hand(
    used_before: int, minutes: int, expected: tuple[int, int]
) -> None:
    assert split_allowance(used_before, minutes, 120) == expected


# Bank periods and month arithmetic.


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 1, 15), -13, date(2024, 12, 15)),
    ],
)
def test_add_months_clamps_to_the_months_last_day(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_a_bank_renews_on_the_anniversary() -> None:
    start = date(2025, 3, 10)
    assert bank_period(start, date(2025, 3, 10)) == (date(2025, 3, 10), date(2026, 3, 10), 0)
    assert bank_period(start, date(2026, 3, 9)) == (date(2025, 3, 10), date(2026, 3, 10), 0)
    assert bank_period(start, date(2026, 3, 10)) == (date(2026, 3, 10), date(2027, 3, 10), 1)


def test_a_leap_day_start_renews_on_the_last_of_february() -> None:
    start = date(2024, 2, 29)
    assert bank_period(start, date(2025, 3, 1)) == (date(2025, 2, 28), date(2026, 2, 28), 1)
    assert bank_period(start, date(2028, 2, 28)) == (date(2027, 2, 28), date(2028, 2, 29), 3)


def test_a_date_before_the_contract_has_no_period() -> None:
    with pytest.raises(ValueError):
        bank_period(date(2026, 1, 1), date(2025, 12, 31))


@given(dates, st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=24))
def test_a_bank_period_contains_the_date(starts_on: date, days: int, period_months: int) -> None:
    day = starts_on + timedelta(days=days)
    start, end, index = bank_period(starts_on, day, period_months)
    assert start <= day < end
    assert index >= 0
    assert start == add_months(starts_on, index * period_months)


@given(dates, st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=24))
def test_consecutive_bank_periods_tile_without_gaps(
    starts_on: date, days: int, period_months: int
) -> None:
    start, end, index = bank_period(starts_on, starts_on + timedelta(days=days), period_months)
    next_start, _, next_index = bank_period(starts_on, end, period_months)
    last_day = end - timedelta(days=1)
    assert next_start == end
    assert next_index == index + 1
    assert bank_period(starts_on, last_day, period_months)[:3] == (start, end, index)


# Allowance periods across zones.


def test_quarter_boundaries_in_bogota() -> None:
    last_minute_of_q1 = datetime(2026, 3, 31, 23, 30, tzinfo=BOGOTA)
    first_of_q2 = datetime(2026, 4, 1, 0, 0, tzinfo=BOGOTA)
    assert allowance_period(last_minute_of_q1, "America/Bogota", "quarter")[2] == "2026-Q1"
    assert allowance_period(first_of_q2, "America/Bogota", "quarter")[2] == "2026-Q2"
    # The same instants in UTC fall on 1 April, 04:30 and 05:00.
    assert last_minute_of_q1.astimezone(UTC) == datetime(2026, 4, 1, 4, 30, tzinfo=UTC)
    assert first_of_q2.astimezone(UTC) == datetime(2026, 4, 1, 5, 0, tzinfo=UTC)


def test_a_utc_instant_in_april_can_still_be_q1_in_bogota() -> None:
    instant = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    start, end, label = allowance_period(instant, "America/Bogota", "quarter")
    assert label == "2026-Q1"
    assert start.astimezone(UTC) == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 4, 1, 5, 0, tzinfo=UTC)


def test_quarter_boundaries_in_madrid_follow_daylight_saving() -> None:
    q1_start, q1_end, label = allowance_period(
        datetime(2026, 2, 14, 12, 0, tzinfo=UTC), "Europe/Madrid", "quarter"
    )
    assert label == "2026-Q1"
    assert q1_start.astimezone(UTC) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # CET
    assert q1_end.astimezone(UTC) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # CEST
    before = datetime(2026, 3, 31, 21, 59, tzinfo=UTC)
    after = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert allowance_period(before, "Europe/Madrid", "quarter")[2] == "2026-Q1"
    assert allowance_period(after, "Europe/Madrid", "quarter")[2] == "2026-Q2"


def test_the_last_quarter_ends_at_the_new_year() -> None:
    start, end, label = allowance_period(
        datetime(2026, 11, 20, tzinfo=MADRID), "Europe/Madrid", "quarter"
    )
    assert label == "2026-Q4"
    assert (start, end) == (
        datetime(2026, 10, 1, tzinfo=MADRID),
        datetime(2027, 1, 1, tzinfo=MADRID),
    )


@pytest.mark.parametrize(
    ("period", "label", "start", "end"),
    [
        ("month", "2026-11", datetime(2026, 11, 1), datetime(2026, 12, 1)),
        ("quarter", "2026-Q4", datetime(2026, 10, 1), datetime(2027, 1, 1)),
        ("year", "2026", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ],
)
def test_allowance_periods_are_labelled_by_calendar(
    period: str, label: str, start: datetime, end: datetime
) -> None:
    instant = datetime(2026, 11, 20, 15, 0, tzinfo=BOGOTA)
    assert allowance_period(instant, "America/Bogota", period) == (
        start.replace(tzinfo=BOGOTA),
        end.replace(tzinfo=BOGOTA),
        label,
    )


def test_an_allowance_period_needs_an_aware_instant_and_a_known_period() -> None:
    with pytest.raises(ValueError):
        allowance_period(datetime(2026, 1, 1), "UTC", "quarter")
    with pytest.raises(ValueError):
        allowance_period(datetime(2026, 1, 1, tzinfo=UTC), "UTC", "week")


@given(instants, zones, st.sampled_from(["month", "quarter", "year"]))
def test_an_allowance_period_contains_the_instant_and_the_next_one_follows(
    instant: datetime, time_zone: str, period: str
) -> None:
    start, end, label = allowance_period(instant, time_zone, period)
    assert start <= instant < end
    assert start.astimezone(ZoneInfo(time_zone)).strftime("%d %H:%M") == "01 00:00"
    next_start, _, next_label = allowance_period(end, time_zone, period)
    assert next_start == end
    assert next_label != label
    assert allowance_period(end - timedelta(microseconds=1), time_zone, period)[2] == label
