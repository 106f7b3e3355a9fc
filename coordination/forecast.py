"""The staffing forecast: for each shared queue and each hour of the coming week, the waits the rota will give.

Three things are read from the consortium's history of the last `weeks` weeks (8 by default):

- *Demand*: chats per hour of the week that reached the queue (their route came to a step naming
  it: answered there or after it, given up there, or unstaffed with the queue in their plan),
  averaged over the weeks the queue was open in that hour. A holiday or closure in the history is
  not read as a quiet hour; one in the coming week makes that hour closed.
- *Handle time*: the mean from accepted to ended of the chats answered at the queue's step or after.
- *Patience*: how long patrons wait at the queue before giving up, the maximum-likelihood estimate
  of an exponential patience from the given-up chats and every chat's time at the queue.

Against them: the librarians the weekly rota puts on the queue in each hour, each with their own
capacity (chats at once), and the queue's hours on the actual date (closures, special hours).
routing.queueing turns each hour into a predicted wait at the queue (p50, p90) and the share
answered within 60 s. A "what if" adds librarians to, or takes them off, hours of the week.

`demand`, `handle_seconds`, `patience_seconds` and `predict_week` take plain records, so that
bench/forecast_backtest.py can run the same code on a history it generates itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

from consortium.models import Consortium
from libraries.hours import Schedule, is_open, schedule_for
from libraries.models import Queue, Shift
from routing.models import Chat, ChatState
from routing.plan import plan_from_json
from routing.queueing import Load, Prediction, predict

HISTORY_WEEKS = 8
DEFAULT_HANDLE = 600.0  # seconds, while the history holds fewer than MIN_SAMPLES answered chats
MIN_SAMPLES = 20
Hour = tuple[int, int]  # (weekday, hour) in the queue's time zone


@dataclass(frozen=True)
class Record:
    """One past chat as a queue saw it."""

    arrived: datetime
    waited: float | None = None  # seconds at the queue's step before a librarian accepted it
    handled: float | None = None  # seconds from accepted to ended
    gave_up: float | None = None  # seconds at the queue's step before the patron left unanswered


@dataclass(frozen=True)
class HourForecast:
    start: datetime  # the hour's start, in the queue's time zone
    open: bool
    arrivals: float  # chats expected in the hour
    librarians: int
    slots: int  # chats the librarians can hold at once
    prediction: Prediction | None  # None: closed, or nobody expected

    @property
    def key(self) -> Hour:
        return (self.start.weekday(), self.start.hour)


@dataclass(frozen=True)
class QueueForecast:
    queue: Queue
    handle_seconds: float
    patience_seconds: float | None
    hours: dict[Hour, HourForecast]
    samples: int  # chats that reached the queue in the history
    staff: Staff = field(default_factory=lambda: Staff())
    default_capacity: int = 3

    def hour(self, weekday: int, hour: int) -> HourForecast:
        return self.hours[(weekday, hour)]

    def what_if(self, extra: Mapping[Hour, int]) -> QueueForecast:
        """The same week with `extra[hour]` librarians added (negative: taken off): only those hours are
        predicted again, from the history already read, so the rota page can ask for every shift."""
        crew = self.staff.with_extra(extra, self.default_capacity)
        hours = dict(self.hours)
        for key in extra:
            if key in hours:
                was = hours[key]
                hours[key] = predict_hour(was.start, was.open, was.arrivals, tuple(crew.crews.get(key, ())),
                                          self.handle_seconds, self.patience_seconds)
        return replace(self, hours=hours, staff=crew)

    def worst(self, cells: Iterable[Hour]) -> HourForecast | None:
        """The hour with the lowest service level among these (the one to fix first); an open hour with
        nothing predicted (no chats expected) when none has a prediction; None when all are closed."""
        found = [self.hours[c] for c in cells if c in self.hours and self.hours[c].open]
        predicted = [h for h in found if h.prediction is not None]
        if predicted:
            return min(predicted, key=lambda h: h.prediction.service_level if h.prediction else 1.0)
        return found[0] if found else None


@dataclass(frozen=True)
class Forecast:
    queues: list[QueueForecast]
    since: datetime  # the history read
    until: datetime
    start: datetime  # the first hour forecast
    weeks: int


@dataclass(frozen=True)
class Staff:
    """Who the rota puts on a queue in each hour of the week: the capacities of the crew, one per librarian."""

    crews: Mapping[Hour, tuple[int, ...]] = field(default_factory=dict)

    def with_extra(self, extra: Mapping[Hour, int], capacity: int) -> Staff:
        """The "what if": `extra[hour]` librarians added (negative: taken off, the least able first)."""
        crews = dict(self.crews)
        for key, n in extra.items():
            crew = sorted(crews.get(key, ()), reverse=True)
            crews[key] = tuple(crew + [capacity] * n) if n >= 0 else tuple(crew[:max(0, len(crew) + n)])
        return Staff(crews)


# --- the pure part: records in, predictions out -------------------------------------------------------------


def demand(arrivals: Iterable[datetime], zone: ZoneInfo, since: datetime, weeks: int,
           open_at: Callable[[datetime], bool]) -> dict[Hour, float]:
    """Chats per hour of the week, averaged over the weeks the queue was open in that hour."""
    counts: dict[tuple[Hour, int], int] = defaultdict(int)
    for at in arrivals:
        local = at.astimezone(zone)
        week = int((at - since) / timedelta(weeks=1))
        if 0 <= week < weeks:
            counts[((local.weekday(), local.hour), week)] += 1
    first = since.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    open_weeks: dict[Hour, list[int]] = defaultdict(list)
    for offset in range(weeks * 7 * 24):
        # Hour by hour in UTC, read locally: a day with a clock change has 23 or 25 local hours.
        local = (first.astimezone(ZoneInfo("UTC")) + timedelta(hours=offset)).astimezone(zone)
        week = offset // (7 * 24)
        if open_at(local.replace(minute=30)):
            open_weeks[(local.weekday(), local.hour)].append(week)
    rates: dict[Hour, float] = {}
    for day in range(7):
        for hour in range(24):
            weeks_open = sorted(set(open_weeks.get((day, hour), [])))
            counted = weeks_open or list(range(weeks))
            rates[(day, hour)] = sum(counts.get(((day, hour), w), 0) for w in counted) / len(counted)
    return rates


def handle_seconds(records: Iterable[Record], fallback: float = DEFAULT_HANDLE) -> float:
    handled = [r.handled for r in records if r.handled is not None and r.handled > 0]
    return mean(handled) if len(handled) >= MIN_SAMPLES else fallback


def patience_seconds(records: Iterable[Record]) -> float | None:
    """Mean patience, estimated as an exponential's: time spent waiting (by everyone) per patron who gave up.
    None when nobody gave up: the model then waits for ever (Erlang C)."""
    exposure, gave_up = 0.0, 0
    for r in records:
        if r.gave_up is not None:
            exposure += r.gave_up
            gave_up += 1
        elif r.waited is not None:
            exposure += r.waited
    return exposure / gave_up if gave_up else None


def predict_hour(start: datetime, open_now: bool, arrivals: float, crew: tuple[int, ...], handle: float,
                 patience: float | None) -> HourForecast:
    slots = sum(crew)
    prediction = None
    if open_now and (arrivals > 0 or slots):
        # The crew's slots as servers: len(crew) librarians of one slot each scaled to their total.
        prediction = predict(Load(arrivals, handle, librarians=slots, capacity=1, patience_seconds=patience))
    return HourForecast(start, open_now, arrivals, len(crew), slots, prediction)


def predict_week(start: datetime, zone: ZoneInfo, rates: Mapping[Hour, float], staff: Staff, handle: float,
                 patience: float | None, open_at: Callable[[datetime], bool], hours: int = 7 * 24
                 ) -> dict[Hour, HourForecast]:
    """From the hour holding `start` on: each hour of the week once, with the date's own hours."""
    first = start.astimezone(ZoneInfo("UTC")).replace(minute=0, second=0, microsecond=0)
    found: dict[Hour, HourForecast] = {}
    for offset in range(hours):
        local = (first + timedelta(hours=offset)).astimezone(zone)
        key = (local.weekday(), local.hour)
        if key in found:  # the repeated hour of a clock change back
            continue
        found[key] = predict_hour(local, open_at(local.replace(minute=30)), rates.get(key, 0.0),
                                  tuple(staff.crews.get(key, ())), handle, patience)
    return found


# --- reading the database -------------------------------------------------------------------------------------


def records_of(consortium: Consortium, queues: Iterable[str], since: datetime, until: datetime
               ) -> dict[str, list[Record]]:
    """Per queue, the chats of [since, until) that reached it, as Records."""
    wanted = set(queues)
    found: dict[str, list[Record]] = {slug: [] for slug in wanted}
    rows = (Chat.objects.filter(consortium=consortium, arrived_at__gte=since, arrived_at__lt=until)
            .values_list("arrived_at", "plan", "state", "step_index", "step_entered_at", "accepted_step_index",
                         "accepted_at", "ended_at", "patron_left_at"))
    for arrived, plan_json, state, step_index, entered, accepted_index, accepted, ended, left in rows.iterator(
            chunk_size=5000):
        plan = plan_from_json(plan_json or [])
        for index, step in enumerate(plan):
            for slug in step.queues:
                if slug not in wanted:
                    continue
                record = _record(index, arrived, state, step_index, entered, accepted_index, accepted, ended, left)
                if record is not None:
                    found[slug].append(record)
    return found


def _record(index: int, arrived: datetime, state: str, step_index: int, entered: datetime | None,
            accepted_index: int | None, accepted: datetime | None, ended: datetime | None,
            left: datetime | None) -> Record | None:
    """The chat as the queue of step `index` saw it, or None if its route never came to that step."""
    if state == ChatState.UNSTAFFED:
        return Record(arrived)  # nobody to answer: demand all the same
    reached = max(step_index, accepted_index if accepted_index is not None else -1)
    if reached < index:
        return None
    at_this_step = entered is not None and step_index == index
    waited = handled = gave_up = None
    if accepted is not None and accepted_index is not None:
        if at_this_step and accepted_index == index:
            waited = max(0.0, (accepted - entered).total_seconds()) if entered else None
        if ended is not None:
            handled = (ended - accepted).total_seconds()
    elif at_this_step and entered is not None and state in (ChatState.ABANDONED, ChatState.ENDED):
        gone = left or ended
        if gone is not None:
            gave_up = max(0.0, (gone - entered).total_seconds())
    return Record(arrived, waited, handled, gave_up)


def rota_staff(queues: Iterable[Queue], default_capacity: int) -> dict[int, Staff]:
    """Per queue id, the capacities of the librarians its weekly shifts put on each hour."""
    crews: dict[int, dict[Hour, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    shifts = Shift.objects.filter(queue__in=list(queues)).prefetch_related("assignments__librarian")
    for shift in shifts:
        for hour in range(24):
            if shift.start_minute < (hour + 1) * 60 and shift.end_minute > hour * 60:
                for a in shift.assignments.all():
                    capacity = a.librarian.capacity if a.librarian.capacity is not None else default_capacity
                    crews[shift.queue_id][(shift.weekday, hour)][a.librarian_id] = capacity
    return {queue_id: Staff({key: tuple(crew.values()) for key, crew in by_hour.items()})
            for queue_id, by_hour in crews.items()}


def forecast(consortium: Consortium, now: datetime, *, weeks: int = HISTORY_WEEKS,
             extra: Mapping[str, Mapping[Hour, int]] | None = None) -> Forecast:
    """The coming week of every active shared queue, from the last `weeks` full weeks of history.
    `extra`: per queue slug, librarians added to (or taken off) hours of the week, for "what if"."""
    weeks = max(1, min(weeks, 26))
    queues = list(Queue.objects.filter(consortium=consortium, kind=Queue.Kind.SHARED, is_active=True)
                  .prefetch_related("weekly", "closures", "special_hours").order_by("position", "slug"))
    until = now.replace(minute=0, second=0, microsecond=0)
    since = until - timedelta(weeks=weeks)
    records = records_of(consortium, [q.slug for q in queues], since, until)
    everyone = [r for found in records.values() for r in found]
    fallback_handle = handle_seconds(everyone)
    staff = rota_staff(queues, consortium.librarian_capacity)
    out = []
    for queue in queues:
        zone = ZoneInfo(queue.timezone)
        schedule = schedule_for(queue)

        def open_at(at: datetime, schedule: Schedule = schedule) -> bool:
            return is_open(schedule, at)

        found = records[queue.slug]
        rates = demand((r.arrived for r in found), zone, since, weeks, open_at)
        handle = handle_seconds(found, fallback_handle)
        patience = patience_seconds(found)
        crew = staff.get(queue.pk, Staff()).with_extra((extra or {}).get(queue.slug, {}),
                                                         consortium.librarian_capacity)
        hours = predict_week(now, zone, rates, crew, handle, patience, open_at)
        out.append(QueueForecast(queue, handle, patience, hours, len(found), crew, consortium.librarian_capacity))
    return Forecast(out, since, until, now, weeks)


def shift_hours(weekday: int, start_minute: int, end_minute: int) -> list[Hour]:
    """The hours of the week a shift touches (as the coverage map counts them)."""
    return [(weekday, hour) for hour in range(24) if start_minute < (hour + 1) * 60 and end_minute > hour * 60]
