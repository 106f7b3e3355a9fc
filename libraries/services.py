"""Writes about libraries that more than one entry point needs: the admin, the hours editor, imports."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from libraries.hours import Schedule, format_interval
from libraries.models import Closure, Library, Queue, SpecialHours, WeeklyInterval

if TYPE_CHECKING:
    from libraries.ical import HoursImport


def library_create_local_queue(library: Library) -> Queue:
    """Give a library its local queue, or return the one it has.

    Every library has exactly one local queue (spec/ROUTING.md, "Words"), named by the library's
    slug so that route plans can list it. It starts with no hours, i.e. closed, so a new library
    gets no chats until someone sets its hours.
    """
    existing = Queue.objects.filter(library=library).first()
    if existing is not None:
        return existing
    if Queue.objects.filter(consortium_id=library.consortium_id, slug=library.slug).exists():
        raise ValidationError(f'the consortium already has a queue "{library.slug}"; '
                              "the library's local queue needs that slug")
    return Queue.objects.create(
        consortium_id=library.consortium_id, slug=library.slug, name=library.name, kind=Queue.Kind.LOCAL,
        library=library, timezone=library.timezone, always_open=False,
    )


def queues_changed(consortium_id: int, slugs: set[str], now: datetime) -> None:
    """Hours or the rota of these queues changed: route their waiting chats again after commit.

    A queue that opened, or a librarian put on the current shift, must be offered waiting chats at
    once (spec/ROUTING.md, "Timing"), and each chat's stored deadline was computed from the old
    hours. routing depends on libraries, not the reverse, so it is imported here, when needed.
    """

    def reroute() -> None:
        from consortium.models import Consortium
        from routing.services.route import waiting_chats_route

        consortium = Consortium.objects.filter(pk=consortium_id).first()
        if consortium is not None:
            waiting_chats_route(consortium, now, slugs)

    transaction.on_commit(reroute)


# --- hours, as the hours editor changes them -----------------------------------------------------------
# Each write checks what the router relies on (libraries.hours.Schedule raises on a bad interval),
# then tells routing, so a queue that opens is offered its waiting chats at once.


def queue_hours_set(queue: Queue, now: datetime, *, weekly: dict[int, list[tuple[int, int]]], always_open: bool,
                    timezone: str | None = None) -> None:
    """Replace a queue's weekly hours (weekday 0 = Monday -> [(start_minute, end_minute)])."""
    Schedule(timezone=timezone or queue.timezone, always_open=always_open,
             weekly={d: tuple(iv) for d, iv in weekly.items()})  # raises ValueError on a bad interval
    for intervals in weekly.values():
        ordered = sorted(intervals)
        for earlier, later in itertools.pairwise(ordered):
            if later[0] < earlier[1]:
                raise ValueError(f"{format_interval(*later)} overlaps {format_interval(*earlier)}")
    with transaction.atomic():
        queue.always_open = always_open
        if timezone:
            queue.timezone = timezone
        queue.save(update_fields=["always_open", "timezone"])
        queue.weekly.all().delete()
        WeeklyInterval.objects.bulk_create(
            WeeklyInterval(queue=queue, weekday=d, start_minute=s, end_minute=e)
            for d, intervals in sorted(weekly.items()) for s, e in sorted(intervals))
        queues_changed(queue.consortium_id, {queue.slug}, now)


def closure_add(queue: Queue, now: datetime, start: date, end: date, reason: str = "") -> Closure:
    if end < start:
        raise ValueError("a closure ends on or after the day it starts")
    with transaction.atomic():
        closure = Closure.objects.create(queue=queue, start_date=start, end_date=end, reason=reason[:200])
        queues_changed(queue.consortium_id, {queue.slug}, now)
    return closure


def closure_remove(queue: Queue, now: datetime, closure_id: int) -> None:
    with transaction.atomic():
        queue.closures.filter(pk=closure_id).delete()
        queues_changed(queue.consortium_id, {queue.slug}, now)


def special_hours_set(queue: Queue, now: datetime, day: date, intervals: list[tuple[int, int]],
                      reason: str = "") -> SpecialHours:
    """That date's hours replace the week's ([] = closed all day)."""
    Schedule(timezone=queue.timezone, special={day: tuple(intervals)})  # raises ValueError on a bad interval
    with transaction.atomic():
        special, _ = SpecialHours.objects.update_or_create(
            queue=queue, date=day, defaults={"intervals": [list(iv) for iv in sorted(intervals)],
                                             "reason": reason[:200]})
        queues_changed(queue.consortium_id, {queue.slug}, now)
    return special


def special_hours_remove(queue: Queue, now: datetime, special_id: int) -> None:
    with transaction.atomic():
        queue.special_hours.filter(pk=special_id).delete()
        queues_changed(queue.consortium_id, {queue.slug}, now)


def queue_hours_import(queue: Queue, now: datetime, found: HoursImport) -> None:
    """Apply an iCalendar import: the weekly hours are replaced; closures and special hours are added
    (a special day already set for a date is replaced, a closure already there is not added twice)."""
    with transaction.atomic():
        queue_hours_set(queue, now, weekly=found.weekly, always_open=False)
        for start, end, reason in found.closures:
            Closure.objects.get_or_create(queue=queue, start_date=start, end_date=end, defaults={"reason": reason})
        for day, intervals in found.special.items():
            special_hours_set(queue, now, day, intervals)
