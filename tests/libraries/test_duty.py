"""Stretches of duty (libraries/duty.py): spans merged where they touch or overlap, the horizon, and the
open spans of a queue's hours they are built from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from libraries.duty import Duty, stretch_at
from libraries.hours import Schedule, open_spans

T = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def test_touching_and_overlapping_spans_are_one_stretch() -> None:
    spans = [(h(2), h(4)), (h(-1), h(1)), (h(1), h(2)), (h(3), h(5)), (h(6), h(7))]
    assert stretch_at(spans, T) == Duty(on=True, ends_at=h(5))
    assert stretch_at(spans, h(4.5)) == Duty(on=True, ends_at=h(5))
    assert stretch_at(spans, h(6)) == Duty(on=True, ends_at=h(7)), "after a gap, a stretch of its own"


def test_off_duty_between_stretches_and_at_an_end() -> None:
    spans = [(h(-1), h(1)), (h(2), h(3))]
    assert stretch_at(spans, h(1)) == Duty(on=False, ends_at=None), "a span ends at its end instant"
    assert stretch_at(spans, h(1.5)) == Duty(on=False, ends_at=None)
    assert stretch_at([], T) == Duty(on=False, ends_at=None)


def test_a_stretch_that_does_not_end_within_the_horizon_has_no_end() -> None:
    assert stretch_at([(h(-1), h(30))], T) == Duty(on=True, ends_at=None)
    assert stretch_at([(h(-1), h(12)), (h(12), h(25))], T) == Duty(on=True, ends_at=None)
    assert stretch_at([(h(-1), h(23))], T) == Duty(on=True, ends_at=h(23))


def test_open_spans_merge_midnight_and_apply_closures() -> None:
    schedule = Schedule(timezone="America/New_York", weekly={0: ((18 * 60, 24 * 60),), 1: ((0, 120), (540, 600))},
                        closures=((date(2026, 3, 10), date(2026, 3, 10)),))
    spans = open_spans(schedule, T, T + timedelta(days=2))
    # Monday 18:00 EST to Tuesday 02:00 is one stretch; Tuesday 09:00-10:00 another.
    assert spans == [(datetime(2026, 3, 2, 23, 0, tzinfo=UTC), datetime(2026, 3, 3, 7, 0, tzinfo=UTC)),
                     (datetime(2026, 3, 3, 14, 0, tzinfo=UTC), datetime(2026, 3, 3, 15, 0, tzinfo=UTC))]
    # The next Tuesday is closed: only Monday evening until midnight is left that week.
    closed = open_spans(schedule, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), datetime(2026, 3, 11, 0, 0, tzinfo=UTC))
    assert closed == [(datetime(2026, 3, 9, 22, 0, tzinfo=UTC), datetime(2026, 3, 10, 4, 0, tzinfo=UTC))]
