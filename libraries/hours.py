"""Staffing hours: when a queue is open, in the queue's own time zone.

A queue's hours are written in local wall-clock time (docs/routing.md, "Hours"): weekly intervals per
weekday, dated closures (whole local days) and dated special hours that replace a day's weekly
hours. The router asks "is this queue open at instant t?" and "when does that next change?", so
everything here works on aware instants and converts each local date's intervals to instants.

Daylight-saving rules (chosen so that a change of clocks never shifts, drops or doubles service):

* Intervals are converted to instants per local date, so 09:00-17:00 is 09:00-17:00 on the clock
  whatever the UTC offset of that date is.
* A wall time that does not exist (skipped by a spring-forward gap, e.g. 02:30 on 2026-03-08 in
  America/New_York) means the first instant after the gap (03:00 EDT), for starts and ends alike.
  So 01:00-04:00 that day is open 01:00 EST-04:00 EDT (2 real hours: every minute the clock shows
  between 01:00 and 04:00), and an interval lying wholly inside the gap gives no service.
* A wall time that happens twice (fall-back, e.g. 01:30 on 2026-11-01 in America/New_York) means
  its FIRST occurrence when it starts an interval and its SECOND when it ends one, so service never
  loses the repeated hour: 00:00-03:00 that day is open 4 real hours without a break.
* 24:00 means the start of the next local day (its first instant, or the end of a gap at midnight).
* The open instants are the union of every local date's intervals. Near a clock change a date's
  interval may reach an instant whose local date is the neighbouring one (a fall-back end), so
  is_open also looks at the day before and after.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from libraries.models import Queue

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

MINUTES_PER_DAY = 24 * 60
# next_change looks this many local days ahead and then gives up (returns None): more than a year,
# so a yearly closure or a special day months away is still found.
HORIZON_DAYS = 400

Interval = tuple[int, int]
Intervals = tuple[Interval, ...]
Span = tuple[datetime, datetime]  # [start, end) in UTC

_FULL_DAY: Intervals = ((0, MINUTES_PER_DAY),)
_ONE_DAY = timedelta(days=1)


def parse_interval(text: str) -> tuple[int, int]:
    """'09:00-17:00' -> (540, 1020). End may be 24:00. Raises ValueError with a readable message."""
    m = _RANGE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(_('"%(text)s" is not HH:MM-HH:MM') % {"text": text})
    sh, sm, eh, em = (int(g) for g in m.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(_('"%(text)s" has a time that does not exist') % {"text": text})
    start, end = sh * 60 + sm, eh * 60 + em
    if end <= start:
        raise ValueError(_('"%(text)s" ends before it starts (split an interval that crosses midnight in two)')
                         % {"text": text})
    return start, end


def format_interval(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


# --- the schedule -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A queue's hours, detached from the database so the router can ask about them cheaply.

    weekly: weekday (0 = Monday) -> intervals (start_minute, end_minute), 0 <= start < end <= 1440.
    closures: (start_date, end_date) ranges, inclusive, in local dates: closed all day.
    special: local date -> intervals that replace that date's weekly hours (empty = closed).
    Intervals are sorted on construction; invalid ones raise ValueError.
    """

    timezone: str
    always_open: bool = False
    weekly: Mapping[int, Intervals] = field(default_factory=dict)
    closures: tuple[tuple[date, date], ...] = ()
    special: Mapping[date, Intervals] = field(default_factory=dict)
    # Derived once, so that is_open needs no work beyond one day's intervals.
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _closed_starts: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _closed_ends: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: normalised values go in through object.__setattr__, once, here.
        set_ = object.__setattr__
        set_(self, "zone", ZoneInfo(self.timezone))  # fails early on an unknown zone name
        weekly = {}
        for weekday, intervals in self.weekly.items():
            if weekday not in range(7):
                raise ValueError(f"weekday {weekday} is not 0 (Monday)..6 (Sunday)")
            weekly[weekday] = _normalised(intervals)
        set_(self, "weekly", MappingProxyType(weekly))
        set_(self, "special", MappingProxyType({day: _normalised(iv) for day, iv in self.special.items()}))
        closures = tuple(sorted((start, end) for start, end in self.closures))
        for start, end in closures:
            if end < start:
                raise ValueError(f"closure {start}..{end} ends before it starts")
        set_(self, "closures", closures)
        # Closure ranges may overlap or touch; merged, they are disjoint and can be bisected.
        starts: list[date] = []
        ends: list[date] = []
        for start, end in closures:
            if ends and start <= ends[-1] + _ONE_DAY:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        set_(self, "_closed_starts", tuple(starts))
        set_(self, "_closed_ends", tuple(ends))

    @classmethod
    def always(cls, tz: str) -> Schedule:
        """Open around the clock, no exceptions."""
        return cls(timezone=tz, always_open=True)

    def is_closed_on(self, day: date) -> bool:
        """True when a closure covers the local date `day`."""
        i = bisect.bisect_right(self._closed_starts, day) - 1
        return i >= 0 and day <= self._closed_ends[i]

    def hours_on(self, day: date) -> Intervals:
        """The intervals (local minutes) in force on local date `day`, after closures and special hours."""
        if self.is_closed_on(day):
            return ()
        special = self.special.get(day)
        if special is not None:
            return special
        if self.always_open:
            return _FULL_DAY
        return self.weekly.get(day.weekday(), ())


def _normalised(intervals: Iterable[Iterable[int]]) -> Intervals:
    """Sorted (start, end) tuples; the JSON of SpecialHours gives lists, so accept any pair."""
    result = []
    for pair in intervals:
        start, end = (int(v) for v in pair)
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise ValueError(f"interval {start}-{end} is not within 0..1440 with start before end")
        result.append((start, end))
    return tuple(sorted(result))


def schedule_for(queue: Queue) -> Schedule:
    """Read a queue's hours from the database (or from rows already prefetched on it)."""
    weekly: dict[int, list[Interval]] = {}
    for row in queue.weekly.all():
        weekly.setdefault(row.weekday, []).append((row.start_minute, row.end_minute))
    return Schedule(
        timezone=queue.timezone,
        always_open=queue.always_open,
        weekly={weekday: tuple(intervals) for weekday, intervals in weekly.items()},
        closures=tuple((c.start_date, c.end_date) for c in queue.closures.all()),
        special={s.date: _normalised(s.intervals) for s in queue.special_hours.all()},
    )


# --- wall clock to instants -------------------------------------------------------------------------


def _instant(day: date, minute: int, zone: ZoneInfo, *, is_end: bool) -> datetime:
    """The UTC instant of local wall time `minute` on `day`, by the rules in the module docstring."""
    if minute == MINUTES_PER_DAY:
        # 24:00 is the start of the next day: its first occurrence, even when it is an end.
        day, minute, is_end = day + _ONE_DAY, 0, False
    # fold=0 is the first occurrence of a repeated wall time, fold=1 the second (PEP 495).
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone, fold=int(is_end))
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return utc
    return _end_of_gap(local)


def _end_of_gap(local: datetime) -> datetime:
    """The first instant after the spring-forward gap that swallowed the wall time `local`.

    For a wall time in a gap, fold=0 and fold=1 use the offsets before and after the transition,
    which gives two instants on either side of it; the transition (a whole second in tzdata) is
    found by bisection on seconds: a dozen steps, and only on the rare days with a gap.
    """
    zone = local.tzinfo
    naive = local.replace(tzinfo=None)
    a = int(local.replace(fold=0).timestamp())
    b = int(local.replace(fold=1).timestamp())
    before, after = min(a, b), max(a, b)  # wall(before) < naive < wall(after)
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz=zone).replace(tzinfo=None) > naive:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, tz=UTC)


def _spans_on(schedule: Schedule, day: date) -> list[Span]:
    """The open spans [start, end) in UTC given by the hours of local date `day`, by start."""
    spans = []
    for start_minute, end_minute in schedule.hours_on(day):
        start = _instant(day, start_minute, schedule.zone, is_end=False)
        end = _instant(day, end_minute, schedule.zone, is_end=True)
        if start < end:  # an interval wholly inside a gap is never on the clock
            spans.append((start, end))
    return spans


def span_on(day: date, start_minute: int, end_minute: int, zone: ZoneInfo) -> Span | None:
    """The instants [start, end) of the wall-clock interval start..end minute on local date `day`.

    The same rules as a queue's hours (module docstring), so a rota shift and the queue it staffs
    move together across a clock change. None when the interval lies wholly inside a gap.
    """
    start = _instant(day, start_minute, zone, is_end=False)
    end = _instant(day, end_minute, zone, is_end=True)
    return (start, end) if start < end else None


def _as_schedule(queue_or_schedule: Queue | Schedule) -> Schedule:
    if isinstance(queue_or_schedule, Schedule):
        return queue_or_schedule
    return schedule_for(queue_or_schedule)  # one query per relation unless prefetched


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is naive: hours need an aware datetime")
    return at.astimezone(UTC)


# --- the questions the router asks ------------------------------------------------------------------


def is_open(queue_or_schedule: Queue | Schedule, at: datetime) -> bool:
    """Whether the queue is open at the aware instant `at`.

    Pass a Schedule in hot paths: a Queue is read from the database each time. The work is the
    intervals of `at`'s local date (plus its neighbours', see the module docstring).
    """
    schedule = _as_schedule(queue_or_schedule)
    at = _as_utc(at)
    if schedule.always_open and not schedule.closures and not schedule.special:
        return True
    day = at.astimezone(schedule.zone).date()
    # The local date first: it decides nearly always; the neighbours matter only at clock changes.
    for candidate in (day, day - _ONE_DAY, day + _ONE_DAY):
        for start, end in _spans_on(schedule, candidate):
            if start <= at < end:
                return True
    return False


def next_change(queue_or_schedule: Queue | Schedule, after: datetime) -> datetime | None:
    """The first instant strictly after `after` at which is_open changes value, in UTC.

    None when it never changes: always open with no exceptions, never open, or no change within
    HORIZON_DAYS local days (a router re-asks long before then).
    """
    schedule = _as_schedule(queue_or_schedule)
    after = _as_utc(after)
    if _never_changes(schedule):
        return None
    # Walk the spans in order, merging those that overlap or touch (a day ending at 24:00 and the
    # next starting at 00:00 is one stretch of service, not a change at midnight). Starts come in
    # order, because the wall-clock-to-instant mapping of starts never goes backwards.
    first_day = after.astimezone(schedule.zone).date() - _ONE_DAY
    last_day = first_day + timedelta(days=HORIZON_DAYS)
    group_start: datetime | None = None
    group_end: datetime | None = None
    for start, end in _spans_between(schedule, first_day, last_day):
        if group_end is not None and start <= group_end:
            group_end = max(group_end, end)
            continue
        if group_end is not None and group_end > after:
            return group_end  # `after` was in the stretch that just ended: it closes then
        if start > after:
            return start  # closed at `after` (every earlier stretch ended by then): opens here
        group_start, group_end = start, end
    if group_start is None or group_end is None or group_end <= after:
        return None
    # Open at `after` until the horizon: the stretch's end is only known if no later day can
    # extend it, that is if it ends before the first instant of the day after the horizon.
    if group_end < _instant(last_day + _ONE_DAY, 0, schedule.zone, is_end=False):
        return group_end
    return None


def _spans_between(schedule: Schedule, first_day: date, last_day: date) -> Iterator[Span]:
    day = first_day
    while day <= last_day:
        yield from _spans_on(schedule, day)
        day += _ONE_DAY


def _never_changes(schedule: Schedule) -> bool:
    """Cheap shortcuts for next_change: open around the clock, or no hours at all."""
    if schedule.always_open:
        return not schedule.closures and not schedule.special
    has_hours = any(schedule.weekly.values()) or any(schedule.special.values())
    return not has_hours


def open_spans(schedule: Schedule, start: datetime, end: datetime) -> list[Span]:
    """The stretches of service overlapping [start, end), merged where they overlap or touch, in order.

    A day ending at 24:00 and the next starting at 00:00 is one stretch, as in next_change.
    """
    start, end = _as_utc(start), _as_utc(end)
    first = start.astimezone(schedule.zone).date() - _ONE_DAY
    last = end.astimezone(schedule.zone).date() + _ONE_DAY
    merged: list[Span] = []
    for span_start, span_end in sorted(_spans_between(schedule, first, last)):
        if merged and span_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span_end))
        else:
            merged.append((span_start, span_end))
    return [(a, b) for a, b in merged if a < end and b > start]
