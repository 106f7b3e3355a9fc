"""Hours: is_open / next_change over weekly hours, closures, special hours and DST changes.

Fixed instants only. 2026-06-01 is a Monday; 2026-03-08 and 2026-11-01 are the Sundays on which
America/New_York springs forward (02:00-03:00 does not exist) and falls back (01:00-02:00 twice).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from libraries.hours import (
    HORIZON_DAYS,
    Schedule,
    format_interval,
    is_open,
    next_change,
    parse_interval,
    schedule_for,
)
from libraries.models import Closure, Queue, SpecialHours
from tests.factories import make_local_queue

NY = "America/New_York"
LA = "America/Los_Angeles"
H = 60  # minutes in an hour, for readable intervals
EVERY_DAY_9_TO_5 = {weekday: ((9 * H, 17 * H),) for weekday in range(7)}


def at(tz: str, y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, fold: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(tz), fold=fold)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def open_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Total open time in [start, end), measured by walking next_change from start."""
    total = 0.0
    cursor, state = start, is_open(schedule, start)
    while cursor < end:
        change = next_change(schedule, cursor)
        stop = end if change is None or change > end else change
        if state:
            total += (stop - cursor).total_seconds()
        assert change is None or is_open(schedule, change) != state  # a real change every time
        if change is None:
            break
        cursor, state = change, not state
    return total


# --- weekly hours -----------------------------------------------------------------------------------


def test_split_hours_boundaries_are_half_open() -> None:
    s = Schedule(timezone=NY, weekly={0: ((9 * H, 12 * H), (13 * H + 30, 18 * H))})
    assert not is_open(s, at(NY, 2026, 6, 1, 8, 59, 59))
    assert is_open(s, at(NY, 2026, 6, 1, 9, 0))
    assert is_open(s, at(NY, 2026, 6, 1, 11, 59, 59))
    assert not is_open(s, at(NY, 2026, 6, 1, 12, 0))
    assert not is_open(s, at(NY, 2026, 6, 1, 12, 30))
    assert is_open(s, at(NY, 2026, 6, 1, 13, 30))
    assert not is_open(s, at(NY, 2026, 6, 1, 18, 0))
    assert next_change(s, at(NY, 2026, 6, 1, 9, 0)) == at(NY, 2026, 6, 1, 12, 0)
    assert next_change(s, at(NY, 2026, 6, 1, 12, 0)) == at(NY, 2026, 6, 1, 13, 30)
    assert next_change(s, at(NY, 2026, 6, 1, 12, 30)) == at(NY, 2026, 6, 1, 13, 30)
    # Strictly after: asked at the opening instant, the answer is the closing one.
    assert next_change(s, at(NY, 2026, 6, 1, 13, 30)) == at(NY, 2026, 6, 1, 18, 0)


def test_unsorted_intervals_are_accepted() -> None:
    s = Schedule(timezone=NY, weekly={0: ((13 * H, 14 * H), (9 * H, 10 * H))})
    assert next_change(s, at(NY, 2026, 6, 1, 8)) == at(NY, 2026, 6, 1, 9)
    assert s.weekly[0] == ((9 * H, 10 * H), (13 * H, 14 * H))


def test_interval_ending_at_24_00_runs_to_local_midnight() -> None:
    s = Schedule(timezone=NY, weekly={5: ((10 * H, 24 * H),)})  # Saturday
    assert is_open(s, at(NY, 2026, 6, 6, 23, 59, 59))
    assert not is_open(s, at(NY, 2026, 6, 7, 0, 0))
    assert next_change(s, at(NY, 2026, 6, 6, 22)) == at(NY, 2026, 6, 7, 0, 0)


def test_24_00_followed_by_00_00_is_one_stretch_without_a_change_at_midnight() -> None:
    s = Schedule(timezone=NY, weekly={5: ((20 * H, 24 * H),), 6: ((0, 2 * H),)})
    assert is_open(s, at(NY, 2026, 6, 7, 0, 0))
    assert next_change(s, at(NY, 2026, 6, 6, 21)) == at(NY, 2026, 6, 7, 2, 0)


def test_next_change_skips_days_without_hours() -> None:
    s = Schedule(timezone=NY, weekly={0: ((9 * H, 17 * H),)})  # Mondays only
    assert next_change(s, at(NY, 2026, 6, 1, 17)) == at(NY, 2026, 6, 8, 9)
    assert next_change(s, at(NY, 2026, 6, 3, 12)) == at(NY, 2026, 6, 8, 9)
    assert not is_open(s, at(NY, 2026, 6, 3, 12))


def test_local_weekday_decides_not_the_utc_one() -> None:
    s = Schedule(timezone=LA, weekly={5: ((18 * H, 22 * H),)})  # Saturday evening in Los Angeles
    sunday_utc = utc(2026, 6, 7, 3, 0)  # Sunday 03:00 UTC = Saturday 20:00 PDT
    assert sunday_utc.weekday() == 6
    assert is_open(s, sunday_utc)
    assert next_change(s, sunday_utc) == utc(2026, 6, 7, 5, 0)  # 22:00 PDT
    assert not is_open(s, utc(2026, 6, 6, 20, 0))  # Saturday 20:00 UTC = 13:00 PDT


# --- closures and special hours ---------------------------------------------------------------------


def test_closure_date_and_inclusive_range() -> None:
    s = Schedule(
        timezone=NY,
        weekly=EVERY_DAY_9_TO_5,
        closures=((date(2026, 12, 25), date(2026, 12, 25)), (date(2026, 12, 31), date(2027, 1, 1))),
    )
    assert is_open(s, at(NY, 2026, 12, 24, 12))
    assert not is_open(s, at(NY, 2026, 12, 25, 12))
    assert is_open(s, at(NY, 2026, 12, 26, 12))
    assert is_open(s, at(NY, 2026, 12, 30, 12))
    assert not is_open(s, at(NY, 2026, 12, 31, 12))
    assert not is_open(s, at(NY, 2027, 1, 1, 12))
    assert is_open(s, at(NY, 2027, 1, 2, 12))
    assert next_change(s, at(NY, 2026, 12, 30, 17)) == at(NY, 2027, 1, 2, 9)


def test_overlapping_closures() -> None:
    s = Schedule(
        timezone=NY,
        weekly=EVERY_DAY_9_TO_5,
        closures=((date(2026, 8, 3), date(2026, 8, 10)), (date(2026, 8, 1), date(2026, 8, 5))),
    )
    for day in range(1, 11):
        assert not is_open(s, at(NY, 2026, 8, day, 12)), day
    assert is_open(s, at(NY, 2026, 8, 11, 12))


def test_special_hours_replace_the_day_and_empty_means_closed() -> None:
    s = Schedule(
        timezone=NY,
        weekly=EVERY_DAY_9_TO_5,
        special={date(2026, 12, 24): ((9 * H, 12 * H),), date(2026, 12, 26): ()},
    )
    assert is_open(s, at(NY, 2026, 12, 24, 11))
    assert not is_open(s, at(NY, 2026, 12, 24, 13))
    assert next_change(s, at(NY, 2026, 12, 24, 9)) == at(NY, 2026, 12, 24, 12)
    assert not is_open(s, at(NY, 2026, 12, 26, 12))
    assert is_open(s, at(NY, 2026, 12, 27, 12))


def test_special_hours_can_open_a_day_without_weekly_hours() -> None:
    s = Schedule(timezone=NY, special={date(2026, 6, 6): [[10 * H, 14 * H]]})  # type: ignore[dict-item]
    assert is_open(s, at(NY, 2026, 6, 6, 12))
    assert next_change(s, at(NY, 2026, 6, 1)) == at(NY, 2026, 6, 6, 10)


def test_closure_wins_over_special_hours() -> None:
    day = date(2026, 6, 6)
    s = Schedule(timezone=NY, weekly=EVERY_DAY_9_TO_5, closures=((day, day),), special={day: ((0, 24 * H),)})
    assert not is_open(s, at(NY, 2026, 6, 6, 12))


# --- always open, never open ------------------------------------------------------------------------


def test_always_open_without_exceptions_never_changes() -> None:
    s = Schedule.always(NY)
    assert is_open(s, utc(2026, 3, 8, 7))
    assert next_change(s, utc(2026, 3, 8, 7)) is None


def test_always_open_with_a_closure_closes_for_that_local_day() -> None:
    s = Schedule(timezone=NY, always_open=True, closures=((date(2026, 7, 4), date(2026, 7, 4)),))
    assert is_open(s, at(NY, 2026, 7, 3, 23, 59, 59))
    assert not is_open(s, at(NY, 2026, 7, 4, 0))
    assert not is_open(s, at(NY, 2026, 7, 4, 23, 59, 59))
    assert is_open(s, at(NY, 2026, 7, 5, 0))
    assert next_change(s, at(NY, 2026, 7, 1, 12)) == at(NY, 2026, 7, 4, 0)
    assert next_change(s, at(NY, 2026, 7, 4, 0)) == at(NY, 2026, 7, 5, 0)
    assert next_change(s, at(NY, 2026, 7, 5, 0)) is None


def test_never_open_returns_none() -> None:
    for s in (
        Schedule(timezone=NY),
        Schedule(timezone=NY, weekly={0: ()}, special={date(2026, 6, 6): ()}),
        Schedule(timezone=NY, special={date(2020, 1, 1): ((9 * H, 17 * H),)}),  # only in the past
    ):
        assert not is_open(s, utc(2026, 6, 1, 15))
        assert next_change(s, utc(2026, 6, 1, 15)) is None


def test_beyond_the_horizon_is_none() -> None:
    far = date(2026, 6, 1) + timedelta(days=HORIZON_DAYS + 30)
    s = Schedule(timezone=NY, always_open=True, closures=((far, far),))
    assert next_change(s, at(NY, 2026, 6, 1, 12)) is None
    near = date(2026, 6, 1) + timedelta(days=HORIZON_DAYS - 30)
    s = Schedule(timezone=NY, always_open=True, closures=((near, near),))
    assert next_change(s, at(NY, 2026, 6, 1, 12)) == at(NY, near.year, near.month, near.day)


# --- daylight saving --------------------------------------------------------------------------------


def test_spring_forward_keeps_every_minute_on_the_clock() -> None:
    sunday = {6: ((1 * H, 4 * H),)}
    s = Schedule(timezone=NY, weekly=sunday)
    # 01:00 EST = 06:00Z to 04:00 EDT = 08:00Z: the clock shows 01:00..04:00 for 2 real hours.
    assert next_change(s, at(NY, 2026, 3, 8, 0)) == utc(2026, 3, 8, 6)
    assert next_change(s, utc(2026, 3, 8, 6)) == utc(2026, 3, 8, 8)
    assert is_open(s, utc(2026, 3, 8, 7))  # 03:00 EDT
    assert open_seconds(s, at(NY, 2026, 3, 8), at(NY, 2026, 3, 9)) == 2 * 3600
    # The same hours a week later are 3 real hours: nothing shifted, only the gap is missing.
    assert open_seconds(s, at(NY, 2026, 3, 15), at(NY, 2026, 3, 16)) == 3 * 3600


def test_spring_forward_nonexistent_start_means_the_instant_after_the_gap() -> None:
    s = Schedule(timezone=NY, weekly={6: ((2 * H + 30, 5 * H),)})
    assert not is_open(s, utc(2026, 3, 8, 6, 59))  # 01:59 EST
    assert next_change(s, at(NY, 2026, 3, 8, 0)) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert next_change(s, utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 9)  # 05:00 EDT


def test_spring_forward_interval_wholly_in_the_gap_gives_no_service() -> None:
    s = Schedule(timezone=NY, weekly={6: ((2 * H + 10, 2 * H + 40),)})
    assert open_seconds(s, at(NY, 2026, 3, 8), at(NY, 2026, 3, 9)) == 0


def test_spring_forward_whole_day_is_23_hours() -> None:
    s = Schedule(timezone=NY, weekly={6: ((0, 24 * H),)})
    assert open_seconds(s, at(NY, 2026, 3, 8), at(NY, 2026, 3, 9)) == 23 * 3600


def test_fall_back_keeps_the_repeated_hour() -> None:
    s = Schedule(timezone=NY, weekly={6: ((0, 3 * H),)})
    # 00:00 EDT = 04:00Z to 03:00 EST = 08:00Z: 4 real hours, without a break.
    assert next_change(s, at(NY, 2026, 10, 31, 23)) == utc(2026, 11, 1, 4)
    assert next_change(s, utc(2026, 11, 1, 4)) == utc(2026, 11, 1, 8)
    assert is_open(s, at(NY, 2026, 11, 1, 1, 30, fold=0))  # first 01:30 (EDT)
    assert is_open(s, at(NY, 2026, 11, 1, 1, 30, fold=1))  # second 01:30 (EST)
    assert open_seconds(s, at(NY, 2026, 11, 1), at(NY, 2026, 11, 2)) == 4 * 3600
    assert open_seconds(s, at(NY, 2026, 11, 8), at(NY, 2026, 11, 9)) == 3 * 3600


def test_fall_back_split_at_an_ambiguous_time_is_neither_broken_nor_doubled() -> None:
    s = Schedule(timezone=NY, weekly={6: ((0, 1 * H + 30), (1 * H + 30, 3 * H))})
    assert next_change(s, utc(2026, 11, 1, 4)) == utc(2026, 11, 1, 8)
    assert open_seconds(s, at(NY, 2026, 11, 1), at(NY, 2026, 11, 2)) == 4 * 3600


def test_fall_back_ambiguous_start_and_end() -> None:
    # 01:15-01:45 starts at the first 01:15 (EDT) and ends at the second 01:45 (EST).
    s = Schedule(timezone=NY, weekly={6: ((1 * H + 15, 1 * H + 45),)})
    # (Compared in UTC: Python never calls an ambiguous local time equal to an instant of another zone.)
    assert next_change(s, at(NY, 2026, 11, 1)) == utc(2026, 11, 1, 5, 15)
    assert next_change(s, at(NY, 2026, 11, 1, 1, 15, fold=0)) == utc(2026, 11, 1, 6, 45)
    assert is_open(s, at(NY, 2026, 11, 1, 1, 50, fold=0))  # between the two passes of the clock


def test_fall_back_whole_day_is_25_hours() -> None:
    s = Schedule(timezone=NY, weekly={6: ((0, 24 * H),)})
    assert open_seconds(s, at(NY, 2026, 11, 1), at(NY, 2026, 11, 2)) == 25 * 3600


# --- inputs ----------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    s = Schedule.always(NY)
    with pytest.raises(ValueError, match="naive"):
        is_open(s, datetime(2026, 6, 1, 12))
    with pytest.raises(ValueError, match="naive"):
        next_change(s, datetime(2026, 6, 1, 12))


def test_invalid_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.1440"):
        Schedule(timezone=NY, weekly={0: ((17 * H, 9 * H),)})
    with pytest.raises(ValueError, match="weekday"):
        Schedule(timezone=NY, weekly={7: ((9 * H, 17 * H),)})
    with pytest.raises(ValueError, match="ends before"):
        Schedule(timezone=NY, closures=((date(2026, 1, 2), date(2026, 1, 1)),))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-17", "is not HH:MM-HH:MM"),
        ("25:00-26:00", "does not exist"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-24:30", "does not exist"),
    ],
)
def test_parse_interval_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_interval(text)


def test_parse_and_format_interval() -> None:
    assert parse_interval("09:00-17:00") == (540, 1020)
    assert parse_interval(" 10:00-24:00 ") == (600, 1440)
    assert format_interval(600, 1440) == "10:00-24:00"


# --- from the database ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schedule_for_reads_weekly_closures_and_special_hours(django_assert_num_queries: Any) -> None:
    queue = make_local_queue(hours={0: [(540, 720)], 2: [(780, 1020), (540, 720)]}, timezone=NY)
    Closure.objects.create(queue=queue, start_date=date(2026, 6, 8), end_date=date(2026, 6, 8))
    SpecialHours.objects.create(queue=queue, date=date(2026, 6, 3), intervals=[[600, 660]])

    schedule = schedule_for(queue)
    assert schedule == Schedule(
        timezone=NY,
        weekly={0: ((540, 720),), 2: ((540, 720), (780, 1020))},
        closures=((date(2026, 6, 8), date(2026, 6, 8)),),
        special={date(2026, 6, 3): ((600, 660),)},
    )
    assert is_open(queue, at(NY, 2026, 6, 1, 10))  # Monday
    assert not is_open(queue, at(NY, 2026, 6, 8, 10))  # Monday, closed
    assert not is_open(schedule, at(NY, 2026, 6, 3, 9, 30))  # Wednesday, special hours
    assert is_open(schedule, at(NY, 2026, 6, 3, 10, 30))
    # Monday the 8th is closed, so the next opening is Wednesday the 10th.
    assert next_change(schedule, at(NY, 2026, 6, 3, 12)) == at(NY, 2026, 6, 10, 9)

    # With the rows prefetched, building the schedule costs no query.
    prefetched = Queue.objects.prefetch_related("weekly", "closures", "special_hours").get(pk=queue.pk)
    with django_assert_num_queries(0):
        assert schedule_for(prefetched) == schedule
