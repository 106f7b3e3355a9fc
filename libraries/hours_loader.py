"""The hours of many queues at one instant, fast: what the router asks on every decision.

libraries/hours.py answers "is this queue open at t, and when does that next change?" for one
Schedule, built by schedule_for (three queries per queue). Routing asks it for every queue of a
chat's plan on every decision, so here the hours rows of all those queues are read in one query and
each queue's Schedule, with its last answer, is kept per process (see hours_at). The answers are
exactly is_open and next_change of schedule_for(queue) (tests/libraries/test_hours_loader.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import cast

from django.db.models import DateField, IntegerField, JSONField, Value

from libraries.hours import Schedule, is_open, next_change
from libraries.models import Closure, Queue, SpecialHours, WeeklyInterval

# Per process: each queue's Schedule, built from the hours rows it was built from, and the stretch of
# time over which its answer (open or not, and the next change) holds. Keyed by queue id.
_HOURS: dict[int, tuple[tuple[object, ...], Schedule, datetime, datetime | None, bool, datetime | None, Queue]] = {}
# next_change gives None for "never" and for "not within its horizon" alike: such an answer is
# trusted for a day, then asked again.
_RECHECK_NONE_AFTER = timedelta(days=1)
HoursRows = dict[int, list[tuple[object, ...]]]  # queue id -> its weekly, closure and special rows


def hours_rows(queue_ids: list[int]) -> HoursRows:
    """The hours rows of these queues, in one query (the key of each queue's cached Schedule)."""
    rows: HoursRows = defaultdict(list)
    ids = list(queue_ids)
    if ids:
        weekly = WeeklyInterval.objects.filter(queue_id__in=ids).order_by().values_list(
            "queue_id", Value("w"), "weekday", "start_minute", "end_minute", Value(None, output_field=DateField()),
            Value(None, output_field=DateField()), Value(None, output_field=JSONField()))
        closures = Closure.objects.filter(queue_id__in=ids).order_by().values_list(
            "queue_id", Value("c"), Value(None, output_field=IntegerField()), Value(None, output_field=IntegerField()),
            Value(None, output_field=IntegerField()), "start_date", "end_date",
            Value(None, output_field=JSONField()))
        special = SpecialHours.objects.filter(queue_id__in=ids).order_by().values_list(
            "queue_id", Value("s"), Value(None, output_field=IntegerField()), Value(None, output_field=IntegerField()),
            Value(None, output_field=IntegerField()), "date", Value(None, output_field=DateField()), "intervals")
        for queue_id, kind, weekday, start, end, day, last, intervals in weekly.union(closures, special, all=True):
            if kind == "s" and isinstance(intervals, str):
                intervals = json.loads(intervals)  # a union's converters are its first branch's
            rows[queue_id].append((kind, weekday, start, end, day, last,
                                   None if intervals is None else json.dumps(intervals)))
    return dict(rows)


def hours_at(queues: list[Queue], now: datetime, rows: HoursRows | None = None) -> list[tuple[bool, datetime | None]]:
    """(open at `now`, next open/close after `now`) for each queue: is_open and next_change of its hours.

    The hours rows of all these queues are read in one query (instead of three, and a Schedule built
    for each queue on every decision), unless the caller has them already (routing.structure keeps
    them while they are unchanged). They are also the key of a per-process cache: an unchanged
    schedule is not built again, and its answer at an earlier instant still holds until the change
    it announced, so next_change (which walks days of intervals) runs once per change, not per chat.
    An edit of the hours changes the rows, hence the key, and is seen by the next decision.
    """
    if rows is None:
        rows = hours_rows([q.pk for q in queues])
    answers = []
    for queue in queues:
        cached = _HOURS.get(queue.pk)
        # The same Queue instance as last time (routing.structure hands out one per stamp, with the
        # same rows): its schedule is the same, without comparing its rows again.
        if cached is not None and cached[6] is queue:
            key = cached[0]
        else:
            key = (queue.timezone, queue.always_open, *sorted(rows.get(queue.pk, ()), key=repr))
        if cached is not None and cached[0] == key:
            _, schedule, since, until, open_then, change, _queue = cached
            if since <= now and (until is None or now < until):
                _HOURS[queue.pk] = (key, schedule, since, until, open_then, change, queue)
                answers.append((open_then, change))
                continue
        else:
            schedule = _schedule(queue, rows.get(queue.pk, ()))
        open_now, change = is_open(schedule, now), next_change(schedule, now)
        until = change if change is not None else now + _RECHECK_NONE_AFTER
        _HOURS[queue.pk] = (key, schedule, now, until, open_now, change, queue)
        answers.append((open_now, change))
    return answers


def _schedule(queue: Queue, rows: Iterable[tuple[object, ...]]) -> Schedule:
    """schedule_for(queue) (libraries.hours), from rows already read by hours_at."""
    weekly: dict[int, list[tuple[int, int]]] = defaultdict(list)
    closures: list[tuple[date, date]] = []
    special: dict[date, tuple[tuple[int, int], ...]] = {}
    for kind, weekday, start, end, day, last, intervals in rows:
        if kind == "w":
            weekly[int(cast(int, weekday))].append((int(cast(int, start)), int(cast(int, end))))
        elif kind == "c":
            closures.append((cast(date, day), cast(date, last)))
        else:
            special[cast(date, day)] = tuple((int(a), int(b)) for a, b in json.loads(cast(str, intervals)))
    return Schedule(
        timezone=queue.timezone,
        always_open=queue.always_open,
        weekly={weekday: tuple(intervals) for weekday, intervals in weekly.items()},
        closures=tuple(closures),
        special=special,  # Schedule sorts and checks them
    )

