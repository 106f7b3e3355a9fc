"""The rota: recurring shifts on shared queues, who works them, swaps, and what each library commits.

A shift recurs every week on one weekday, from a start to an end minute in its queue's own time
zone (a shift crossing midnight is two shifts, as with hours). An *occurrence* is one shift on one
local date; its instants follow the DST rules of libraries/hours.py, so a shift and the hours of
the queue it staffs never drift apart at a clock change.

Who works an occurrence (its *crew*): the librarians assigned to the shift, minus those who handed
that date to a colleague through a taken swap, plus the colleagues who took it. An open swap
changes nothing until someone takes it: the librarian who offered it is still on shift.

Routing reads two things from here (routing/selectors.py): who is on shift at an instant, for
rota-driven queues (`on_shift`), and when that next changes (`next_shift_change`), which goes into
a waiting chat's deadline so that a chat is offered to the next shift the moment it starts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import CharField, DateField, F, IntegerField, Q, Sum, Value
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from consortium.tokens import token_hash, token_new
from libraries.hours import MINUTES_PER_DAY, span_on
from libraries.models import Library, Queue, Shift, ShiftAssignment, ShiftSwap, StaffProfile
from libraries.signals import queues_changed_send

_ONE_DAY = timedelta(days=1)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class RotaError(Exception):
    """A rota change that cannot be made; `detail` says why in a sentence for the page."""

    def __init__(self, detail: StrOrPromise) -> None:
        super().__init__(detail)
        self.detail = cast(str, detail)  # often lazy: it reads in the language of the page that shows it


@dataclass(frozen=True)
class ShiftTime:
    """A shift detached from the database: enough to place its occurrences in time."""

    id: int
    queue: str  # slug
    zone: ZoneInfo
    weekday: int
    start_minute: int
    end_minute: int
    min_librarians: int = 1


@dataclass(frozen=True, order=True)
class Occurrence:
    start: datetime  # UTC
    end: datetime
    shift_id: int
    queue: str
    day: date  # the local date in the queue's time zone

    @property
    def key(self) -> tuple[int, date]:
        return (self.shift_id, self.day)


# --- reading shifts and placing them in time ----------------------------------------------------------


def shifts_of(queues: Iterable[Queue]) -> list[ShiftTime]:
    """Every shift of these queues (one query)."""
    by_id = {q.pk: q for q in queues}
    if not by_id:
        return []
    rows = Shift.objects.filter(queue_id__in=by_id).values_list(
        "id", "queue_id", "weekday", "start_minute", "end_minute", "min_librarians")
    return [ShiftTime(pk, by_id[queue_id].slug, ZoneInfo(by_id[queue_id].timezone), weekday, start, end, minimum)
            for pk, queue_id, weekday, start, end, minimum in rows]


def occurrence_on(shift: ShiftTime, day: date) -> Occurrence | None:
    """The shift's occurrence on local date `day`, or None (another weekday, or lost in a DST gap)."""
    if day.weekday() != shift.weekday:
        return None
    span = span_on(day, shift.start_minute, shift.end_minute, shift.zone)
    if span is None:
        return None
    return Occurrence(span[0], span[1], shift.id, shift.queue, day)


def occurrences_between(shifts: Iterable[ShiftTime], start: datetime, end: datetime) -> list[Occurrence]:
    """Occurrences that overlap [start, end), in time order."""
    found = []
    for shift in shifts:
        # One local day of margin on either side: an occurrence lies within its own local date,
        # give or take the hour a clock change moves.
        day = start.astimezone(shift.zone).date() - _ONE_DAY
        last = end.astimezone(shift.zone).date() + _ONE_DAY
        while day <= last:
            occurrence = occurrence_on(shift, day)
            if occurrence is not None and occurrence.start < end and occurrence.end > start:
                found.append(occurrence)
            day += _ONE_DAY
    return sorted(found)


def occurrences_at(shifts: Iterable[ShiftTime], at: datetime) -> list[Occurrence]:
    """Occurrences going on at the instant `at`."""
    found = []
    for shift in shifts:
        local = at.astimezone(shift.zone).date()
        for day in (local, local - _ONE_DAY, local + _ONE_DAY):
            occurrence = occurrence_on(shift, day)
            if occurrence is not None and occurrence.start <= at < occurrence.end:
                found.append(occurrence)
    return sorted(found)


def next_shift_change(shifts: Iterable[ShiftTime], after: datetime) -> dict[str, datetime]:
    """Per queue, the first instant strictly after `after` at which one of its shifts starts or ends.

    Every boundary counts, even between back-to-back shifts: the queue stays staffed, but by other
    people, and a waiting chat must be offered to the new crew at once. Queues without shifts are
    left out. Looks eight local days ahead, which holds at least one occurrence of every shift.
    """
    changes: dict[str, datetime] = {}
    for shift in shifts:
        day = after.astimezone(shift.zone).date() - _ONE_DAY
        for _ in range(9):
            occurrence = occurrence_on(shift, day)
            day += _ONE_DAY
            if occurrence is None:
                continue
            for instant in (occurrence.start, occurrence.end):
                if instant > after and (shift.queue not in changes or instant < changes[shift.queue]):
                    changes[shift.queue] = instant
    return changes


# --- who works an occurrence ---------------------------------------------------------------------------


def crews(occurrences: Sequence[Occurrence]) -> dict[tuple[int, date], frozenset[int]]:
    """The librarian ids working each occurrence, keyed by (shift id, local date). One query.

    Assignments and taken swaps come back in one UNION: this runs on every routing decision that
    involves a rota-driven queue, so it is kept to a single round trip.
    """
    if not occurrences:
        return {}
    shift_ids = {o.shift_id for o in occurrences}
    dates = {o.day for o in occurrences}
    no_date = Value(None, output_field=DateField())
    # Ordering is dropped: SQLite refuses ORDER BY inside a UNION.
    assigned = ShiftAssignment.objects.filter(shift_id__in=shift_ids).order_by().values_list(
        "shift_id", "librarian_id", no_date, Value("assigned", output_field=CharField()))
    taken = (ShiftSwap.objects.filter(shift_id__in=shift_ids, date__in=dates, status=ShiftSwap.Status.TAKEN)
             .order_by())
    handed_over = taken.values_list("shift_id", "offered_by_id", "date", Value("off", output_field=CharField()))
    covering = taken.values_list("shift_id", "taken_by_id", "date", Value("cover", output_field=CharField()))
    by_shift: dict[int, set[int]] = defaultdict(set)
    off: dict[tuple[int, date], set[int]] = defaultdict(set)
    cover: dict[tuple[int, date], set[int]] = defaultdict(set)
    for shift_id, librarian_id, day, kind in assigned.union(handed_over, covering, all=True):
        if kind == "assigned":
            by_shift[shift_id].add(librarian_id)
        elif kind == "off":
            off[(shift_id, day)].add(librarian_id)
        elif librarian_id is not None:
            cover[(shift_id, day)].add(librarian_id)
    return {o.key: frozenset((by_shift[o.shift_id] - off[o.key]) | cover[o.key]) for o in occurrences}


def on_shift(librarian_ids: Iterable[int] | None, queues: Iterable[Queue], at: datetime, *,
             shifts: Sequence[ShiftTime] | None = None) -> dict[int, frozenset[str]]:
    """Who is on shift at `at`: librarian id -> the slugs of the queues they are on shift for.

    Only these librarians when ids are given (None: everyone); librarians on no shift are left out.
    Two queries at most: the shifts (none when `shifts` are given) and the crews of those going on.
    """
    wanted = None if librarian_ids is None else set(librarian_ids)
    current = occurrences_at(shifts if shifts is not None else shifts_of(queues), at)
    found: dict[int, set[str]] = defaultdict(set)
    for occurrence, crew in zip(current, _crews_in_order(current), strict=True):
        for librarian_id in crew if wanted is None else crew & wanted:
            found[librarian_id].add(occurrence.queue)
    return {librarian_id: frozenset(slugs) for librarian_id, slugs in found.items()}


def _crews_in_order(occurrences: Sequence[Occurrence]) -> list[frozenset[int]]:
    by_key = crews(occurrences)
    return [by_key[o.key] for o in occurrences]


def librarian_occurrences(librarian: StaffProfile, start: datetime, end: datetime) -> list[Occurrence]:
    """The occurrences this librarian works in [start, end): assigned ones not handed over, and those taken."""
    # Read once each (a librarian going available asks this: docs/benchmarks.md, session 9).
    assigned = set(librarian.shift_assignments.values_list("shift_id", flat=True))
    taken_over: set[tuple[int, date]] = set()
    handed: set[tuple[int, date]] = set()
    for shift_id, day, taker, giver in (
            ShiftSwap.objects.filter(Q(taken_by=librarian) | Q(offered_by=librarian), status=ShiftSwap.Status.TAKEN)
            .values_list("shift_id", "date", "taken_by_id", "offered_by_id")):
        if taker == librarian.pk:
            taken_over.add((shift_id, day))
        if giver == librarian.pk:
            handed.add((shift_id, day))
    shift_ids = assigned | {shift_id for shift_id, _ in taken_over}
    if not shift_ids:
        return []
    shifts = shifts_of_ids(shift_ids)
    return [o for o in occurrences_between(shifts, start, end)
            if (o.shift_id in assigned and o.key not in handed) or o.key in taken_over]


def shifts_of_ids(shift_ids: Iterable[int]) -> list[ShiftTime]:
    rows = Shift.objects.filter(pk__in=set(shift_ids)).select_related("queue")
    return [_shift_time(s) for s in rows]


def _shift_time(shift: Shift) -> ShiftTime:
    return ShiftTime(shift.pk, shift.queue.slug, ZoneInfo(shift.queue.timezone), shift.weekday,
                     shift.start_minute, shift.end_minute, shift.min_librarians)


# --- contribution: committed hours against each library's weekly target --------------------------------


@dataclass(frozen=True)
class Commitment:
    library: Library
    target_hours: int | None
    committed_hours: float  # weekly hours of the shifts its librarians are assigned to

    @property
    def short_by(self) -> float:
        return max(0.0, (self.target_hours or 0) - self.committed_hours)


def commitments(consortium: Consortium) -> list[Commitment]:
    """Every active library with its target and committed weekly hours (swaps do not change a commitment)."""
    minutes = dict(
        ShiftAssignment.objects.filter(shift__queue__consortium=consortium)
        .values("librarian__library_id")
        .annotate(minutes=Sum(F("shift__end_minute") - F("shift__start_minute"), output_field=IntegerField()))
        .values_list("librarian__library_id", "minutes")
    )
    return [Commitment(lib, lib.rota_target_hours, (minutes.get(lib.pk) or 0) / 60)
            for lib in Library.objects.filter(consortium=consortium, is_active=True).order_by("name")]


# --- changing the rota -------------------------------------------------------------------------------
# Each change that alters who is on shift now announces it (libraries.signals.queues_changed, after
# commit), and routing looks at the queue's waiting chats again: a librarian put on the current shift
# is offered waiting chats at once.


def shift_create(queue: Queue, now: datetime, *, weekday: int, start_minute: int, end_minute: int,
                 min_librarians: int = 1) -> Shift:
    if queue.kind != Queue.Kind.SHARED:
        raise RotaError(gettext_lazy("shifts are for shared queues; a library's own queue follows its hours"))
    if weekday not in range(7):
        raise RotaError(gettext_lazy("pick a weekday"))
    if not 0 <= start_minute < end_minute <= MINUTES_PER_DAY:
        raise RotaError(gettext_lazy("a shift ends after it starts, within one day (split one that crosses midnight)"))
    if min_librarians < 1:
        raise RotaError(gettext_lazy("a shift needs at least one librarian"))
    with transaction.atomic():
        shift = Shift.objects.create(queue=queue, weekday=weekday, start_minute=start_minute,
                                     end_minute=end_minute, min_librarians=min_librarians)
        queues_changed_send(queue.consortium_id, {queue.slug}, now)
    return shift


def shift_delete(shift: Shift, now: datetime) -> None:
    with transaction.atomic():
        queue = shift.queue
        shift.delete()
        queues_changed_send(queue.consortium_id, {queue.slug}, now)


def shift_assign(shift: Shift, librarian: StaffProfile, now: datetime) -> ShiftAssignment:
    """Put a librarian of any member library on a shift, every week from now on."""
    if librarian.library.consortium_id != shift.queue.consortium_id or not librarian.is_active:
        raise RotaError(gettext_lazy("that librarian is not staff of this consortium"))
    today = now.astimezone(ZoneInfo(shift.queue.timezone)).date()
    try:
        with transaction.atomic():
            assignment = ShiftAssignment.objects.create(shift=shift, librarian=librarian, assigned_on=today)
            queues_changed_send(shift.queue.consortium_id, {shift.queue.slug}, now)
    except IntegrityError as e:
        raise RotaError(format_lazy(gettext_lazy("{name} is on this shift already"),
                                    name=librarian.display_name)) from e
    return assignment


def shift_unassign(shift: Shift, librarian: StaffProfile, now: datetime) -> None:
    with transaction.atomic():
        ShiftAssignment.objects.filter(shift=shift, librarian=librarian).delete()
        # Their offers to swap a shift they no longer work would hand over nothing.
        ShiftSwap.objects.filter(shift=shift, offered_by=librarian, status=ShiftSwap.Status.OPEN).update(
            status=ShiftSwap.Status.WITHDRAWN)
        queues_changed_send(shift.queue.consortium_id, {shift.queue.slug}, now)


def swap_offer(shift: Shift, day: date, librarian: StaffProfile, now: datetime, *, note: str = "") -> ShiftSwap:
    """Offer one occurrence of a shift one works to colleagues; they stay on it until someone takes it."""
    if not ShiftAssignment.objects.filter(shift=shift, librarian=librarian).exists():
        raise RotaError(gettext_lazy("you can offer only a shift you are assigned to"))
    occurrence = occurrence_on(_shift_time(shift), day)
    if occurrence is None:
        raise RotaError(format_lazy(gettext_lazy("the shift does not happen on {day}"), day=day.isoformat()))
    if occurrence.end <= now:
        raise RotaError(gettext_lazy("that shift is over"))
    try:
        with transaction.atomic():
            return ShiftSwap.objects.create(shift=shift, date=day, offered_by=librarian, created_at=now,
                                            note=note[:200])
    except IntegrityError as e:
        raise RotaError(gettext_lazy("you offered this shift already")) from e


def swap_take(swap_id: int, librarian: StaffProfile, now: datetime) -> ShiftSwap:
    """Take an open swap; two colleagues taking it at once: the first wins, the other is told."""
    with transaction.atomic():
        swap = (ShiftSwap.objects.select_for_update(of=("self",)).select_related("shift__queue")
                .filter(pk=swap_id).first())
        if swap is None or swap.shift.queue.consortium_id != librarian.library.consortium_id:
            raise RotaError(gettext_lazy("no such swap"))
        if swap.status != ShiftSwap.Status.OPEN:
            raise RotaError(gettext_lazy("someone took that shift already") if swap.status == ShiftSwap.Status.TAKEN
                            else gettext_lazy("that offer was withdrawn"))
        if swap.offered_by_id == librarian.pk:
            raise RotaError(gettext_lazy("you offered this shift; withdraw the offer instead"))
        occurrence = occurrence_on(_shift_time(swap.shift), swap.date)
        if occurrence is None or occurrence.end <= now:
            raise RotaError(gettext_lazy("that shift is over"))
        if librarian.pk in crews([occurrence]).get(occurrence.key, frozenset()):
            raise RotaError(gettext_lazy("you are on that shift already"))
        swap.status = ShiftSwap.Status.TAKEN
        swap.taken_by = librarian
        swap.taken_at = now
        swap.save(update_fields=["status", "taken_by", "taken_at"])
        queues_changed_send(swap.shift.queue.consortium_id, {swap.shift.queue.slug}, now)
    return swap


def queue_rota_driven_set(queue: Queue, rota_driven: bool, now: datetime) -> None:
    """Whether only the librarians on shift are offered this shared queue's chats."""
    if queue.kind != Queue.Kind.SHARED:
        raise RotaError(gettext_lazy("only a shared queue can be driven by the rota"))
    with transaction.atomic():
        queue.rota_driven = rota_driven
        queue.save(update_fields=["rota_driven"])
        queues_changed_send(queue.consortium_id, {queue.slug}, now)


def library_target_set(library: Library, hours: int | None) -> None:
    """The weekly hours of rota shifts a library commits to (None: no target)."""
    if hours is not None and not 0 <= hours <= 168:
        raise RotaError(gettext_lazy("a weekly target is a whole number of hours, at most 168"))
    library.rota_target_hours = hours
    library.save(update_fields=["rota_target_hours"])


def swap_withdraw(swap_id: int, librarian: StaffProfile, *, as_coordinator: bool = False) -> None:
    with transaction.atomic():
        swap = ShiftSwap.objects.select_for_update().filter(pk=swap_id).select_related("shift__queue").first()
        if swap is None or swap.shift.queue.consortium_id != librarian.library.consortium_id:
            raise RotaError(gettext_lazy("no such swap"))
        if swap.offered_by_id != librarian.pk and not as_coordinator:
            raise RotaError(gettext_lazy("only the librarian who offered it can withdraw it"))
        if swap.status != ShiftSwap.Status.OPEN:
            raise RotaError(gettext_lazy("a swap can be withdrawn only before someone takes it"))
        swap.status = ShiftSwap.Status.WITHDRAWN
        swap.save(update_fields=["status"])


def open_swaps(consortium: Consortium, now: datetime) -> list[ShiftSwap]:
    """Offers nobody has taken yet, for occurrences not over, soonest first."""
    rows = (ShiftSwap.objects.filter(shift__queue__consortium=consortium, status=ShiftSwap.Status.OPEN,
                                     date__gte=(now - _ONE_DAY).date())
            .select_related("shift__queue", "offered_by__user", "offered_by__library").order_by("date", "shift"))
    return [s for s in rows if (o := occurrence_on(_shift_time(s.shift), s.date)) is not None and o.end > now]


# --- the private calendar feed --------------------------------------------------------------------------


def feed_token_issue(librarian: StaffProfile) -> str | None:
    """The secret of this librarian's feed address if they have none yet (made now), else None.

    Only its hash is kept (consortium.tokens), so the address can be shown only now: the page says
    to copy it. Two pages opening at once make one secret; the later one gets None.
    """
    if librarian.feed_token_hash:
        return None
    token = token_new()
    made = StaffProfile.objects.filter(pk=librarian.pk, feed_token_hash=None).update(
        feed_token_hash=token_hash(token))
    librarian.refresh_from_db(fields=["feed_token_hash"])
    return token if made else None


def feed_token_reset(librarian: StaffProfile) -> str:
    """A new secret, to be shown once: the old address stops working (it was shared by mistake, say)."""
    token = token_new()
    librarian.feed_token_hash = token_hash(token)
    librarian.save(update_fields=["feed_token_hash"])
    return token


def librarian_for_feed(token: str) -> StaffProfile | None:
    if not token or len(token) > 64:
        return None
    return (StaffProfile.objects.select_related("library__consortium", "user")
            .filter(feed_token_hash=token_hash(token), is_active=True, user__is_active=True).first())


def week_shifts(consortium: Consortium) -> Mapping[Queue, list[Shift]]:
    """The consortium's shared queues, each with its shifts and their assignees, for the rota page."""
    queues = list(Queue.objects.filter(consortium=consortium, kind=Queue.Kind.SHARED, is_active=True)
                  .order_by("position", "slug"))
    shifts: dict[int, list[Shift]] = defaultdict(list)
    for shift in (Shift.objects.filter(queue__in=queues)
                  .prefetch_related("assignments__librarian__user", "assignments__librarian__library")
                  .order_by("weekday", "start_minute")):
        shifts[shift.queue_id].append(shift)
    return {q: shifts[q.pk] for q in queues}


def rota_queues_of(librarian: StaffProfile) -> set[str]:
    """The rota-driven queues this librarian has shifts on: they serve them while on shift."""
    return set(ShiftAssignment.objects.filter(librarian=librarian, shift__queue__rota_driven=True)
               .values_list("shift__queue__slug", flat=True))
