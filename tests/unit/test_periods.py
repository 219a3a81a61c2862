"""Local days, months and periods (domain/periods.py): the one module every read model, route
and rule asks. Example tests pin the DST cases; properties tie labels, starts and bounds
together across zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.periods import (
    allowance_period,
    allowance_start,
    from_iso,
    local_date,
    local_midnight,
    month_bounds,
    month_of,
    month_window,
    months_between,
    months_touched,
    utc,
    zone,
)

ZONES = ["UTC", "Europe/Madrid", "America/Bogota", "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham"]
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC))


def test_a_local_midnight_keeps_the_zone_and_a_midnight_in_a_dst_gap_is_the_transition() -> None:
    assert local_midnight("2026-03-29", "Europe/Madrid").isoformat() == "2026-03-29T00:00:00+01:00"
    # Santiago skipped from 00:00 to 01:00 on 2026-09-06: the missing midnight is the change.
    gap = local_midnight(date(2026, 9, 6), "America/Santiago")
    assert gap.astimezone(UTC) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)


def test_the_month_holding_an_instant_is_the_local_one() -> None:
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert month_of(late, "UTC") == "2026-03"
    assert month_of(late, "Europe/Madrid") == "2026-04"
    assert local_date(late, "Europe/Madrid") == date(2026, 4, 1)


def test_months_between_and_months_touched_differ_only_at_an_exclusive_end() -> None:
    start, end = month_bounds("2026-02", "Europe/Madrid")
    assert months_between(start, end, "Europe/Madrid") == ["2026-02", "2026-03"]
    assert months_touched(start, end, "Europe/Madrid") == ["2026-02"]


def test_a_month_window_defaults_to_the_month_of_now_and_refuses_a_malformed_month() -> None:
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert month_window(None, "Europe/Madrid", now)[0] == "2027-01"
    assert month_window("2026-05", "UTC", now)[1:] == (
        datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        month_window("2026-13", "UTC", now)


@pytest.mark.parametrize(("label", "period", "expected"), [
    ("2026-Q2", "quarter", date(2026, 4, 1)), ("2026-11", "month", date(2026, 11, 1)),
    ("2026", "year", date(2026, 1, 1)), ("2026-Q5", "quarter", None), ("2026-13", "month", None),
    ("26", "year", None),
])
def test_an_allowance_period_starts_at_the_local_midnight_its_label_names(
        label: str, period: str, expected: date | None) -> None:
    start = allowance_start(label, period, "America/Bogota")
    assert start == (expected and local_midnight(expected, "America/Bogota"))


@given(instants, st.sampled_from(ZONES), st.sampled_from(["quarter", "month", "year"]))
def test_the_label_of_the_period_holding_an_instant_names_the_period_back(
        at: datetime, time_zone: str, period: str) -> None:
    start, end, label = allowance_period(at, time_zone, period)
    assert start <= at < end
    assert allowance_start(label, period, time_zone) == start


@given(instants, st.sampled_from(ZONES))
def test_a_month_holds_its_instants_and_its_bounds_are_utc(at: datetime, time_zone: str) -> None:
    start, end = month_bounds(month_of(at, time_zone), time_zone)
    assert start <= at < end
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert months_between(at, at + timedelta(days=40), time_zone)[0] == month_of(at, time_zone)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "Z" * 100, None, "/etc/passwd"])
def test_one_validator_refuses_every_name_that_is_no_iana_zone(name: object) -> None:
    with pytest.raises(ValueError, match="time zone"):
        zone(name)


def test_a_zone_is_the_zoneinfo_of_its_name() -> None:
    assert zone("Europe/Madrid") == ZoneInfo("Europe/Madrid")


def test_utc_refuses_a_naive_instant_and_converts_an_aware_one() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        utc(datetime(2026, 1, 1))
    assert utc(datetime(2026, 1, 1, 1, tzinfo=ZoneInfo("Europe/Madrid"))) == datetime(2026, 1, 1, tzinfo=UTC)
    assert from_iso("2026-01-01T01:00:00+01:00").tzinfo is UTC
    with pytest.raises(ValueError):
        from_iso("2026-01-01T01:00:00")
