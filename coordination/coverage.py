"""Coverage: for each shared queue and each hour of the week, who is scheduled against the demand seen.

- *Scheduled*: librarians assigned to a shift of the queue that overlaps that hour (the weekly
  rota; a swap changes who, not how many). Hours are the queue's own local hours.
- *Demand*: chats per week that arrived in that hour over the last `weeks` full weeks and could
  reach the queue, i.e. whose route plan names it (with the default plan, every chat of a library
  whose consortium step is this queue). Arrival hours are read in the queue's time zone.
- A *gap*: demand but nobody scheduled.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from consortium.models import Consortium
from libraries.hours import is_open, schedule_for
from libraries.models import Queue, Shift
from routing.models import Chat

HOURS = range(24)
DAYS = range(7)


@dataclass(frozen=True)
class Cell:
    scheduled: int
    needed: int  # the shifts' minimum librarians
    demand: float  # chats per week, averaged
    open: bool  # the queue's hours (this week) cover part of this hour

    @property
    def gap(self) -> bool:
        return self.demand > 0 and self.scheduled == 0

    @property
    def short(self) -> bool:
        return 0 < self.scheduled < self.needed


@dataclass(frozen=True)
class QueueCoverage:
    queue: Queue
    has_rota: bool
    cells: dict[tuple[int, int], Cell]  # (weekday, hour) -> cell

    @property
    def gaps(self) -> int:
        return sum(1 for c in self.cells.values() if c.gap)

    def row(self, weekday: int) -> list[Cell]:
        return [self.cells[(weekday, hour)] for hour in HOURS]


@dataclass(frozen=True)
class Coverage:
    queues: list[QueueCoverage]
    weeks: int
    since: datetime
    until: datetime
    peak_demand: float


def _scheduled(shifts: list[Shift]) -> tuple[dict[tuple[int, int], set[int]], dict[tuple[int, int], int]]:
    """Librarians and minimum per (weekday, hour) from shifts (with their assignments prefetched)."""
    people: dict[tuple[int, int], set[int]] = defaultdict(set)
    needed: dict[tuple[int, int], int] = defaultdict(int)
    for shift in shifts:
        crew = {a.librarian_id for a in shift.assignments.all()}
        for hour in HOURS:
            if shift.start_minute < (hour + 1) * 60 and shift.end_minute > hour * 60:
                people[(shift.weekday, hour)] |= crew
                needed[(shift.weekday, hour)] += shift.min_librarians
    return people, needed


def coverage(consortium: Consortium, now: datetime, weeks: int = 4) -> Coverage:
    weeks = max(1, min(weeks, 26))
    queues = list(Queue.objects.filter(consortium=consortium, kind=Queue.Kind.SHARED, is_active=True)
                  .prefetch_related("weekly", "closures", "special_hours").order_by("position", "slug"))
    shifts: dict[int, list[Shift]] = defaultdict(list)
    for shift in Shift.objects.filter(queue__in=queues).prefetch_related("assignments"):
        shifts[shift.queue_id].append(shift)

    # Whole hours only, so the latest partial hour does not look quieter than it was.
    until = now.replace(minute=0, second=0, microsecond=0)
    since = until - timedelta(weeks=weeks)
    slugs = {q.slug: q for q in queues}
    zones = {q.slug: ZoneInfo(q.timezone) for q in queues}
    arrivals: dict[str, dict[tuple[int, int], int]] = {slug: defaultdict(int) for slug in slugs}
    rows = Chat.objects.filter(consortium=consortium, arrived_at__gte=since, arrived_at__lt=until)
    for arrived, plan in rows.values_list("arrived_at", "plan").iterator(chunk_size=5000):
        reached = {queue for step in plan or [] for queue in step.get("queues") or [] if queue in slugs}
        for slug in reached:
            local = arrived.astimezone(zones[slug])
            arrivals[slug][(local.weekday(), local.hour)] += 1

    out = []
    peak = 0.0
    for queue in queues:
        schedule = schedule_for(queue)
        people, needed = _scheduled(shifts[queue.pk])
        week_start = now.astimezone(zones[queue.slug]).replace(hour=0, minute=0, second=0, microsecond=0)
        week_start -= timedelta(days=week_start.weekday())
        cells = {}
        for day in DAYS:
            for hour in HOURS:
                demand = arrivals[queue.slug][(day, hour)] / weeks
                peak = max(peak, demand)
                local = (week_start + timedelta(days=day)).replace(hour=hour, minute=30)
                cells[(day, hour)] = Cell(len(people[(day, hour)]), needed[(day, hour)], demand,
                                          is_open(schedule, local))
        out.append(QueueCoverage(queue, bool(shifts[queue.pk]), cells))
    return Coverage(out, weeks, since, until, peak)

