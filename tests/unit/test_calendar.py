"""Business-time calendar: properties over random calendars, then worked examples by hand.

The properties run across split shifts, holidays, 24x7 calendars, the seed zones and the DST
weeks of New York and Madrid; each worked example spells out its reasoning in a comment so a
reader can check the expected instant without running anything.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sla.calendar import Calendar
from tests.strategies import calendars, dst_scenarios, durations, instants, zones

NEW_YORK = ZoneInfo("America/New_York")
BOGOTA = ZoneInfo("America/Bogota")
MOSCOW = ZoneInfo("Europe/Moscow")
H = timedelta(hours=1)
SECOND = timedelta(seconds=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")
PROPERTY = settings(max_examples=200, deadline=None)


def weekly(zone: str, days: tuple[str, ...], *windows: str, **spec: object) -> Calendar:
    """The same windows ("08:00-12:00", ...) on each of `days`."""
    pairs = [w.split("-") for w in windows]
    return Calendar.from_spec({"windows": dict.fromkeys(days, pairs), **spec}, zone)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def bogota(*args: int) -> datetime:
    return datetime(*args, tzinfo=BOGOTA)


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MOSCOW)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CRM = weekly("America/New_York", WEEKDAYS, "08:00-20:00")
DATACRM = weekly("America/Bogota", WEEKDAYS, "08:00-12:00", "14:00-17:00")
DATACRM_CO = weekly("America/Bogota", WEEKDAYS, "08:00-12:00", "14:00-17:00", holiday_country="CO")
BPM_PREMIUM = Calendar.from_spec({"always_open": True}, "Europe/Moscow")
NY_FULL_DAYS = weekly("America/New_York", EVERY_DAY, "00:00-24:00")


# Properties -------------------------------------------------------------------------------


@PROPERTY
@given(calendars(), instants(), durations(), durations(min_seconds=1))
def test_adding_in_two_steps_lands_where_adding_the_sum_does(cal, start, a, b):
    # b > 0: a zero second step from the very end of a stretch would hop to the next opening.
    assert cal.add(start, a + b) == cal.add(cal.add(start, a), b)


def covered(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    """Business time by walking the open stretches day by day, with no week skipped."""
    return sum((b - a for a, b in cal.open_intervals(start, end)), timedelta(0))


@PROPERTY
@given(calendars(), instants(), durations())
def test_business_time_between_start_and_added_instant_is_the_duration(cal, start, d):
    due = cal.add(start, d)
    assert cal.between(start, due) == d == covered(cal, start, due)


@PROPERTY
@given(dst_scenarios(count=1), durations())
def test_adding_across_a_dst_change_matches_walking_day_by_day(scenario, d):
    cal, (start,) = scenario
    assert covered(cal, start, cal.add(start, d)) == d


@PROPERTY
@given(dst_scenarios(count=2))
def test_business_time_across_a_dst_change_matches_walking_day_by_day(scenario):
    cal, (start, end) = scenario
    assert cal.between(start, end) == covered(cal, start, end)


@PROPERTY
@given(calendars(), instants(), durations(min_seconds=1))
def test_a_positive_duration_ends_inside_or_at_the_end_of_an_open_stretch(cal, start, d):
    due = cal.add(start, d)
    assert due.tzinfo is UTC
    assert cal.is_open(due - SECOND)


@PROPERTY
@given(calendars(), instants())
def test_adding_nothing_inside_coverage_returns_the_start(cal, start):
    if cal.is_open(start):
        assert cal.add(start, timedelta(0)) == start
    else:
        opening = cal.add(start, timedelta(0))
        assert opening > start and cal.is_open(opening)
        assert cal.between(start, opening) == timedelta(0)


@PROPERTY
@given(calendars(), st.lists(instants(), min_size=3, max_size=3).map(sorted))
def test_business_time_is_additive_over_consecutive_ranges(cal, abc):
    a, b, c = abc
    assert cal.between(a, c) == cal.between(a, b) + cal.between(b, c)


@PROPERTY
@given(calendars(), instants(), instants())
def test_open_intervals_add_up_to_the_business_time_between(cal, start, end):
    stretches = cal.open_intervals(start, end)
    assert sum((b - a for a, b in stretches), timedelta(0)) == cal.between(start, end)
    assert all(a < b for a, b in stretches)
    assert all(b1 < a2 for (_, b1), (a2, _) in pairwise(stretches))
    assert all(cal.is_open(a) and cal.is_open(b - SECOND) for a, b in stretches)
    assert not any(cal.is_open(b1) for (_, b1), _ in pairwise(stretches))


@PROPERTY
@given(calendars(), instants(), instants(), durations(), zones())
def test_instants_in_any_zone_mean_the_same_as_in_utc(cal, start, end, d, zone):
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    assert cal.add(local_start, d) == cal.add(start, d)
    assert cal.between(local_start, local_end) == cal.between(start, end)
    assert cal.open_intervals(local_start, local_end) == cal.open_intervals(start, end)
    assert cal.is_open(local_start) == cal.is_open(start)


@PROPERTY
@given(calendars(), instants(), instants())
def test_business_time_between_never_exceeds_real_time(cal, start, end):
    assert timedelta(0) <= cal.between(start, end) <= max(end - start, timedelta(0))


@PROPERTY
@given(calendars())
def test_a_calendar_survives_a_round_trip_through_its_spec(cal):
    assert Calendar.from_spec(cal.to_spec(), cal.time_zone) == cal


# Worked examples: New York, Mon-Fri 08:00-20:00 (crm-experts) ------------------------------


def test_a_two_hour_target_from_friday_evening_lands_monday_morning():
    # Fri 19:30 to 20:00 is 30 min; the weekend is shut; Monday 08:00 + 1 h 30 min = 09:30.
    assert CRM.add(ny(2026, 2, 6, 19, 30), 2 * H) == ny(2026, 2, 9, 9, 30)


def test_the_march_dst_change_over_the_weekend_does_not_move_the_wall_clock_target():
    # Clocks jump 02:00 -> 03:00 on Sunday 8 March 2026, outside every window: the same
    # 30 min on Friday (EST) plus 1 h 30 min on Monday (EDT) land at 09:30 EDT = 13:30 UTC,
    # after 61 h of real time instead of the usual 62 h.
    due = CRM.add(ny(2026, 3, 6, 19, 30), 2 * H)
    assert due == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert due - ny(2026, 3, 6, 19, 30) == 61 * H
    assert CRM.between(ny(2026, 3, 6, 19, 30), due) == 2 * H


def test_twenty_business_days_across_the_dst_change_end_on_the_fourth_friday():
    # 20 business days = 20 x 12 h = 240 h = the 20 weekdays from Mon 2 March to Fri 27 March,
    # ending Fri 20:00 EDT (00:00 UTC Saturday); the first week holds the change.
    due = CRM.add(ny(2026, 3, 2, 8), 20 * CRM.nominal_day())
    assert due == ny(2026, 3, 27, 20) == datetime(2026, 3, 28, tzinfo=UTC)


def test_a_holiday_listed_explicitly_is_skipped():
    # Thu 24 Dec 19:00-20:00 is 1 h; Fri 25 Dec is closed; Monday 28 Dec 08:00 + 1 h = 09:00.
    cal = Calendar.from_spec(CRM.to_spec(), "America/New_York", extra_holidays=[date(2026, 12, 25)])
    assert cal.add(ny(2026, 12, 24, 19), 2 * H) == ny(2026, 12, 28, 9)


def test_adding_nothing_outside_coverage_waits_for_the_next_opening():
    # Saturday noon: nothing is open until Monday 08:00.
    assert CRM.add(ny(2026, 2, 7, 12), timedelta(0)) == ny(2026, 2, 9, 8)


# Worked examples: DST inside a window --------------------------------------------------------


def test_a_full_day_window_counts_real_time_on_dst_change_days():
    # 00:00-24:00 on 8 March 2026 loses the 02:00-03:00 hour (23 h); 1 November repeats
    # 01:00-02:00 (25 h).
    assert NY_FULL_DAYS.between(ny(2026, 3, 8), ny(2026, 3, 9)) == 23 * H
    assert NY_FULL_DAYS.between(ny(2026, 11, 1), ny(2026, 11, 2)) == 25 * H
    assert NY_FULL_DAYS.between(ny(2026, 3, 1), ny(2026, 3, 31)) == 30 * 24 * H - H
    # Sat 22:00 EST + 6 h of real time = 03:00 UTC + 6 h = 09:00 UTC = 05:00 EDT on Sunday.
    assert NY_FULL_DAYS.add(ny(2026, 3, 7, 22), 6 * H) == ny(2026, 3, 8, 5)


def test_a_window_around_a_dst_change_at_two_oclock_keeps_its_twelve_hours():
    # 08:00-20:00 every day: on 8 March the change happens at 02:00, outside the window.
    cal = weekly("America/New_York", EVERY_DAY, "08:00-20:00")
    assert cal.between(ny(2026, 3, 8), ny(2026, 3, 9)) == 12 * H
    assert cal.between(ny(2026, 11, 1), ny(2026, 11, 2)) == 12 * H


def test_a_window_starting_inside_the_spring_gap_opens_at_the_change():
    # 02:30 does not exist on 8 March 2026; it maps forward to the change itself, 03:00 EDT
    # (07:00 UTC), so the 02:30-04:00 window is one real hour that day and 1 h 30 min otherwise.
    cal = weekly("America/New_York", ("sun",), "02:30-04:00")
    assert cal.open_intervals(ny(2026, 3, 7), ny(2026, 3, 9)) == [
        (utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))
    ]
    assert cal.between(ny(2026, 3, 14), ny(2026, 3, 16)) == 1.5 * H


def test_an_ambiguous_window_in_the_autumn_repeat_is_its_first_occurrence():
    # 01:00-01:30 on 1 November 2026 happens twice; the first (EDT) is 05:00-05:30 UTC.
    cal = weekly("America/New_York", ("sun",), "01:00-01:30")
    expected = (utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30))
    assert cal.open_intervals(ny(2026, 10, 31), ny(2026, 11, 2)) == [expected]


# Worked examples: DataCRM split shift, Bogota (08-12 and 14-17) -----------------------------


def test_four_hours_from_eleven_close_the_split_shift_day():
    # 11:00-12:00 is 1 h; 14:00-17:00 is the other 3 h: due at 17:00 sharp, the day's close.
    assert DATACRM.add(bogota(2026, 2, 10, 11), 4 * H) == bogota(2026, 2, 10, 17)


def test_four_hours_from_the_lunch_break_spill_into_the_next_morning():
    # 12:30 is closed; 14:00-17:00 gives 3 h; Wednesday 08:00-09:00 the last hour.
    assert DATACRM.add(bogota(2026, 2, 10, 12, 30), 4 * H) == bogota(2026, 2, 11, 9)


def test_four_hours_from_sixteen_end_mid_morning_next_day():
    # 16:00-17:00 is 1 h; Wednesday 08:00-11:00 the remaining 3 h.
    assert DATACRM.add(bogota(2026, 2, 10, 16), 4 * H) == bogota(2026, 2, 11, 11)


def test_one_business_day_is_seven_hours_of_the_split_shift():
    # Mon 09:00-12:00 (3 h) + 14:00-17:00 (3 h) + Tue 08:00-09:00 (1 h) = 7 h.
    assert DATACRM.add(bogota(2026, 2, 9, 9), DATACRM.nominal_day()) == bogota(2026, 2, 10, 9)


def test_a_colombian_public_holiday_is_skipped():
    # Fri 20 March 16:00-17:00 is 1 h; Monday 23 March is Saint Joseph's Day (observed) in
    # Colombia, so the other 3 h are Tuesday 08:00-11:00. Without holidays: Monday 11:00.
    assert DATACRM_CO.add(bogota(2026, 3, 20, 16), 4 * H) == bogota(2026, 3, 24, 11)
    assert DATACRM.add(bogota(2026, 3, 20, 16), 4 * H) == bogota(2026, 3, 23, 11)
    assert not DATACRM_CO.is_open(bogota(2026, 3, 23, 10))


def test_open_intervals_explain_a_split_shift_day_in_utc():
    # Bogota is UTC-5 all year: 08-12 and 14-17 are 13-17 and 19-22 UTC.
    day = [
        (utc(2026, 2, 10, 13), utc(2026, 2, 10, 17)),
        (utc(2026, 2, 10, 19), utc(2026, 2, 10, 22)),
    ]
    assert DATACRM.open_intervals(bogota(2026, 2, 10), bogota(2026, 2, 11)) == day


# Worked examples: 24x7, Moscow (bpm premium) ------------------------------------------------


def test_a_24x7_calendar_counts_every_minute_including_nights_and_weekends():
    # Saturday 03:00 MSK + 60 min = 04:00 MSK; three days are 72 h (Moscow has no DST).
    assert BPM_PREMIUM.add(msk(2026, 3, 28, 3), timedelta(minutes=60)) == msk(2026, 3, 28, 4)
    assert BPM_PREMIUM.add(msk(2026, 3, 26, 12), timedelta(days=3)) == msk(2026, 3, 29, 12)


def test_a_24x7_calendar_ignores_holidays():
    # 1 January is a Russian public holiday, yet 31 Dec 12:00 to 2 Jan 12:00 is all 48 h.
    cal = Calendar.from_spec({"always_open": True, "holiday_country": "RU"}, "Europe/Moscow")
    assert cal.between(msk(2026, 12, 31, 12), msk(2027, 1, 2, 12)) == 48 * H
    assert cal.is_open(msk(2027, 1, 1, 3))


# Nominal day -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cal", "hours"),
    [
        (CRM, 12),  # 08-20
        (DATACRM, 7),  # 08-12 + 14-17
        (BPM_PREMIUM, 24),  # 24x7
        (weekly("Europe/Moscow", WEEKDAYS, "10:00-18:00"), 8),  # bpm basic
        (weekly("Europe/Moscow", (*WEEKDAYS, "sat"), "09:00-19:00"), 10),  # bpm business
        (weekly("Europe/Moscow", ("sat", "sun"), "10:00-14:00"), 4),  # weekend-only: any day
    ],
)
def test_the_nominal_day_is_the_opening_time_of_a_regular_weekday(cal, hours):
    assert cal.nominal_day() == hours * H


# Specs and refusals ----------------------------------------------------------------------------


def test_the_spec_of_a_split_shift_calendar_reads_like_the_seed():
    spec = Calendar.from_spec(
        {
            "windows": {
                "mon": [["14:00", "17:00"], ["08:00", "12:00"]],
                "sun": [["20:00", "24:00"]],
            },
            "holidays": ["2026-12-25"],
        },
        "America/Bogota",
    ).to_spec()
    assert spec == {
        "windows": {"mon": [["08:00", "12:00"], ["14:00", "17:00"]], "sun": [["20:00", "24:00"]]},
        "holidays": ["2026-12-25"],
    }


@pytest.mark.parametrize(
    ("spec", "zone", "message"),
    [
        (
            {"windows": {"mon": [["08:00", "13:00"], ["12:00", "17:00"]]}},
            "America/Bogota",
            "overlaps",
        ),
        ({"windows": {"mon": [["12:00", "12:00"]]}}, "America/Bogota", "start before it ends"),
        ({"windows": {"mon": [["18:00", "08:00"]]}}, "America/Bogota", "start before it ends"),
        ({"windows": {"monday": [["08:00", "12:00"]]}}, "America/Bogota", "unknown day"),
        ({"windows": {"mon": [["24:00", "24:00"]]}}, "America/Bogota", "bad time"),
        ({"windows": {"mon": [["8am", "12:00"]]}}, "America/Bogota", "bad time"),
        ({"windows": {"mon": [["08:00"]]}}, "America/Bogota", "[start, end]"),
        ({"always_open": True}, "Mars/Olympus_Mons", "unknown time zone"),
        ({"always_open": "yes"}, "UTC", "always_open"),
        ({"holiday_country": "XX"}, "UTC", "unsupported holiday calendar"),
        ({"holiday_subdiv": "NY"}, "UTC", "needs a holiday_country"),
        ({"holidays": ["25/12/2026"]}, "UTC", "bad holiday"),
        ({"window": {}}, "UTC", "unknown calendar keys"),
    ],
)
def test_a_bad_spec_is_refused_with_a_reason(spec, zone, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Calendar.from_spec(spec, zone)


def test_naive_instants_and_negative_durations_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        CRM.add(datetime(2026, 2, 9, 8), H)
    with pytest.raises(ValueError, match="negative"):
        CRM.add(ny(2026, 2, 9, 8), -H)
    with pytest.raises(ValueError, match="timezone-aware"):
        CRM.between(ny(2026, 2, 9, 8), datetime(2026, 2, 10, 8))
    with pytest.raises(ValueError, match="timezone-aware"):
        CRM.is_open(datetime(2026, 2, 9, 8))


def test_a_stretch_running_to_midnight_joins_the_next_days_early_shift():
    # Mon 20:00-24:00 and Tue 00:00-04:00 are one stretch of 8 h (21:00 UTC to 05:00 UTC).
    cal = Calendar.from_spec(
        {"windows": {"mon": [["20:00", "24:00"]], "tue": [["00:00", "04:00"]]}}, "Europe/Moscow"
    )
    assert cal.open_intervals(msk(2026, 2, 9), msk(2026, 2, 11)) == [
        (utc(2026, 2, 9, 17), utc(2026, 2, 10, 1))
    ]
    assert cal.add(msk(2026, 2, 9, 23), 2 * H) == msk(2026, 2, 10, 1)


def test_a_calendar_without_windows_cannot_add_time():
    with pytest.raises(ValueError, match="no opening windows"):
        Calendar("UTC").add(datetime(2026, 1, 1, tzinfo=UTC), H)
