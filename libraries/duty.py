"""When a librarian is on duty, and when the stretch they are in ends (the console's automatic away).

A librarian's *duty* is made of three kinds of span:

* their rota occurrences (libraries.rota.librarian_occurrences: the shifts they are assigned to,
  minus the dates they handed to a colleague through a taken swap, plus the dates they took);
* their home library's staffing hours (its local queue's hours, closures and special hours), except
  when that queue is open around the clock: hours that never close say nothing about when a person
  leaves;
* the time they said they were staying on (LibrarianPresence.stay_until, added by routing.services).

Spans that overlap or touch are one *stretch*: back-to-back shifts, or a rota shift that starts as
the library closes, have no end in between. The end of the stretch an available librarian is in is
when the console sets them away. A stretch that does not end within HORIZON is not a shift (a
librarian whose duty never ends is not set away by it). Everything here reads; routing.services
writes the presence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from consortium.queries import only_row
from libraries.hours import Span, open_spans, schedule_for
from libraries.models import Queue, ShiftAssignment, ShiftSwap, StaffProfile
from libraries.rota import librarian_occurrences

HORIZON = timedelta(hours=24)


@dataclass(frozen=True)
class Duty:
    """Where an instant falls in a librarian's duty."""

    on: bool  # inside a stretch of duty
    ends_at: datetime | None  # the stretch's end; None when off duty or when it does not end within HORIZON


def stretch_at(spans: Iterable[Span], at: datetime, *, horizon: timedelta = HORIZON) -> Duty:
    """The stretch of merged spans (overlapping or touching) that holds the instant `at`."""
    stretch: Span | None = None
    for start, end in sorted(spans):
        if stretch is not None and start <= stretch[1]:
            stretch = (stretch[0], max(stretch[1], end))
        elif stretch is not None and stretch[0] <= at < stretch[1]:
            break  # the stretch holding `at` is complete: later spans start after a gap
        else:
            stretch = (start, end)
    if stretch is None or not stretch[0] <= at < stretch[1]:
        return Duty(on=False, ends_at=None)
    return Duty(on=True, ends_at=stretch[1] if stretch[1] < at + horizon else None)


def _home_queue(librarian: StaffProfile) -> Queue | None:
    return only_row(Queue.objects.filter(library_id=librarian.library_id, kind=Queue.Kind.LOCAL)
                    .prefetch_related("weekly", "closures", "special_hours"))


@dataclass(frozen=True)
class Schedule:
    """What the service knows of when a librarian works, over a window: their duty spans, and
    whether anything is known at all (rota shifts, or library hours)."""

    spans: list[Span]
    known: bool


def schedule_between(librarian: StaffProfile, start: datetime, end: datetime) -> Schedule:
    """The librarian's rota occurrences and home library's hours overlapping [start, end), and whether
    anything is known of when they work; each thing read once (a librarian going available waits for
    this: it was 16 statements)."""
    occurrences = librarian_occurrences(librarian, start, end)
    spans = [(o.start, o.end) for o in occurrences]
    queue = _home_queue(librarian)
    hours_known = queue is not None and not queue.always_open and (
        bool(queue.weekly.all()) or bool(queue.special_hours.all()))
    if queue is not None and not queue.always_open:
        spans += open_spans(schedule_for(queue), start, end)
    known = bool(occurrences) or hours_known or _on_rota(librarian)
    return Schedule(spans, known)


def _on_rota(librarian: StaffProfile) -> bool:
    return (ShiftAssignment.objects.filter(librarian=librarian).exists()
            or ShiftSwap.objects.filter(taken_by=librarian, status=ShiftSwap.Status.TAKEN).exists())
