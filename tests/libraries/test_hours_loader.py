"""The fast hours loader (libraries.hours_loader.hours_at) gives what the plain reading gives:
is_open and next_change of schedule_for(queue), also from its per-process cache and after an edit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from libraries.hours import is_open, next_change, schedule_for
from libraries.hours_loader import hours_at
from libraries.models import Closure, Queue, SpecialHours
from tests.factories import make_library, make_local_queue, set_weekly_hours

pytestmark = pytest.mark.django_db(transaction=True)

# A Monday, 10:00 in New York (EST, well away from any clock change).
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_hours_at_answers_as_is_open_and_next_change_also_after_the_hours_change() -> None:
    queue = make_local_queue(slug="home", hours={0: [(9 * 60, 12 * 60), (13 * 60, 17 * 60)], 1: [(9 * 60, 17 * 60)]})
    always = Queue.objects.get(slug=make_library(queue.consortium, "always").slug)

    def check() -> None:
        rows = list(Queue.objects.filter(pk__in=[queue.pk, always.pk]).order_by("pk"))
        for minutes in range(0, 3 * 24 * 60, 37):  # three days, at odd instants, forwards
            now = T0 + timedelta(minutes=minutes)
            expected = [(is_open(schedule_for(q), now), next_change(schedule_for(q), now)) for q in rows]
            assert hours_at(rows, now) == expected, now
        # An instant earlier than those already asked is answered afresh, not from the cache.
        rows = list(Queue.objects.filter(pk__in=[queue.pk, always.pk]).order_by("pk"))
        assert hours_at(rows, T0) == [(is_open(schedule_for(q), T0), next_change(schedule_for(q), T0))
                                      for q in rows]

    check()
    # Edits of every kind of hours row are seen by the very next read.
    Closure.objects.create(queue=queue, start_date=date(2026, 3, 3), end_date=date(2026, 3, 3))
    check()
    SpecialHours.objects.create(queue=queue, date=date(2026, 3, 4), intervals=[[600, 660]])
    SpecialHours.objects.create(queue=always, date=date(2026, 3, 3), intervals=[])
    check()
    set_weekly_hours(queue, {0: [(8 * 60, 20 * 60)]})
    check()
