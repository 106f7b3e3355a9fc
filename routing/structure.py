"""A consortium's slow-changing structure, kept per process: what every routing decision reads.

The consortium's settings, its libraries, partners, queues and their hours, the rota and the staff
(who serves which queue, with what capacity and languages) change when a coordinator edits them, a
few times a day; chats are routed many times a second. So each process keeps a picture of them and
checks, with one tiny query before each use, the stamp that database triggers change on any write
to those tables (routing.models.StructureVersion, migrations 0009 and 0023). An unchanged stamp:
the picture holds. A changed or missing stamp: the picture is read again. What changes per decision
(presence, load, offers) is never kept here: routing.selectors reads it on every decision.

Nothing here decides anything; it only answers what the database would have answered.
"""

from __future__ import annotations

import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, partial
from typing import Any

import psycopg
from django.db import connections, router

from consortium.models import Consortium
from consortium.queries import in_pipeline
from libraries import rota
from libraries.hours_loader import HoursRows, hours_rows
from libraries.models import Library, LibraryPartner, Queue, StaffProfile
from routing import router as routing_router
from routing.models import StructureVersion
from routing.plan import plan_of


@dataclass(frozen=True)
class StaffEntry:
    """An active staff member as the router sees them, without presence or load."""

    id: int
    library_slug: str
    capacity: int | None
    languages: frozenset[str]
    shared: tuple[str, ...]  # the shared queues their profile lists
    queues: frozenset[str] = field(init=False)  # their library's queue and those shared ones

    def __post_init__(self) -> None:
        # Made once per picture: a shared queue's situation is ~1,000 librarians, read every 0.25 s.
        object.__setattr__(self, "queues", frozenset([self.library_slug, *self.shared]))


@dataclass
class Structure:
    stamp: int
    consortium_id: int
    # The consortium's row (its settings) as of the stamp: a chat routed alone takes it from here
    # rather than joining it to the chat's lock, whose sixty columns cost more to compile and load
    # than the rest of the lock (migration 0023 puts the table under the stamp).
    consortium: Consortium
    libraries: dict[str, Library]  # active libraries by slug, in pk order (the ZIP-code search's)
    queues: dict[str, Queue]  # active queues by slug
    hours: HoursRows  # queue id -> its hours rows (libraries.hours_loader)
    shifts: list[rota.ShiftTime]  # of active rota-driven queues
    staff: dict[int, StaffEntry]  # active staff of the consortium
    serving: dict[str, frozenset[int]]  # queue slug -> staff whose library it is, or whose profile lists it
    partners: dict[int, list[str]]  # library id -> its active partners' slugs, in order
    shared: list[str]  # the active shared queues, in the consortium's order
    queues_by_id: dict[int, Queue]
    libraries_by_id: dict[int, Library]  # active libraries by id
    _plans: dict[tuple[int | None, int, int], tuple[routing_router.Step, ...]] = field(default_factory=dict)
    _crews: dict[tuple[int, date], frozenset[int]] = field(default_factory=dict)
    _shift_changes: tuple[datetime, dict[str, datetime]] | None = None

    def plan_for(self, home: Library | None, consortium: Consortium) -> tuple[routing_router.Step, ...]:
        """default_plan(home, consortium); the consortium's timeouts are part of the key, since the
        caller's instance of its row may be older or newer than this picture's."""
        key = (home.pk if home else None, consortium.local_timeout, consortium.partner_timeout)
        plan = self._plans.get(key)
        if plan is None:
            own = self.queues_by_id.get(home.consortium_queue_id) if home and home.consortium_queue_id else None
            plan = self._plans[key] = plan_of(home, consortium, partners=self.partners.get(home.pk, []) if home else [],
                                              consortium_queue=own.slug if own else None, shared=self.shared)
        return plan


    def on_shift(self, shifts: list[rota.ShiftTime], at: datetime) -> dict[int, frozenset[str]]:
        """rota.on_shift for these shifts at `at`, the crews of each occurrence read once per picture."""
        current = rota.occurrences_at(shifts, at)
        missing = [o for o in current if o.key not in self._crews]
        if missing:
            self._crews.update(rota.crews(missing))
        found: dict[int, set[str]] = defaultdict(set)
        for occurrence in current:
            for librarian_id in self._crews[occurrence.key]:
                found[librarian_id].add(occurrence.queue)
        return {librarian_id: frozenset(slugs) for librarian_id, slugs in found.items()}

    def shift_changes(self, at: datetime) -> dict[str, datetime]:
        """rota.next_shift_change(self.shifts, at), worked out again only once the first change is past."""
        cached = self._shift_changes
        if cached is not None and cached[0] <= at and all(at < change for change in cached[1].values()):
            return cached[1]
        changes = rota.next_shift_change(self.shifts, at)
        self._shift_changes = (at, changes)
        return changes


_lock = threading.Lock()
_pictures: dict[tuple[str, int], Structure] = {}  # (database alias, consortium id) -> picture


_STAMP_SQL = f"SELECT stamp FROM {StructureVersion._meta.db_table} WHERE id = 1"


def stamp(alias: str) -> int:
    """The stamp now. Its row is made by migration 0009; if it is gone (a test flushed the tables), it
    is made again with a new random stamp, which no kept picture can hold."""
    # Written out: it runs before every routing decision, and the ORM took longer to build it than
    # the database to answer it.
    with connections[alias].cursor() as cursor:
        cursor.execute(_STAMP_SQL)
        row = cursor.fetchone()
    return _stamp_found(alias, row)


def _stamp_found(alias: str, row: Sequence[Any] | None) -> int:
    if row is not None:
        return int(row[0])
    made, _ = StructureVersion.objects.using(alias).get_or_create(pk=1, defaults={"stamp": secrets.randbits(62)})
    return made.stamp


Stamp = Callable[[], int]


def stamp_ask(alias: str | None = None) -> Stamp:
    """The stamp, asked now, answered when called. In a pipeline (consortium.queries.atomic_pipelined)
    the question is sent with the next statement whose answer is read, and costs no round trip of its
    own: a new chat asks it before reading who is there (a chat routed alone reads it with its lock,
    routing.services.route). Elsewhere it is read when called, as `stamp` does."""
    alias = alias or router.db_for_read(StructureVersion)
    if not in_pipeline(alias):
        return partial(stamp, alias)
    connection = connections[alias]
    cursor = psycopg.Cursor(connection.connection)
    with connection.wrap_database_errors:
        cursor.execute(_STAMP_SQL, prepare=True)  # (none behind pgbouncer: message_store)

    def answer() -> int:
        with connection.wrap_database_errors, cursor:
            return _stamp_found(alias, cursor.fetchone())

    return cache(answer)


def kept(consortium: Consortium | int) -> Structure | None:
    """The picture kept of the consortium, unchecked: for a caller that checks its stamp against a
    `stamp_ask` before relying on anything it decided from it (chats.chat_start)."""
    consortium_id = consortium if isinstance(consortium, int) else consortium.pk
    with _lock:
        return _pictures.get((router.db_for_read(StructureVersion), consortium_id))


def structure_of(consortium: Consortium | int, asked: Stamp | None = None) -> Structure:
    """The consortium's (or the consortium with this id's) structure as committed now (one small
    query when the kept picture holds; none of its own given the stamp `asked` before)."""
    consortium_id = consortium if isinstance(consortium, int) else consortium.pk
    alias = router.db_for_read(StructureVersion)
    now_stamp = asked() if asked is not None else stamp(alias)
    key = (alias, consortium_id)
    with _lock:
        kept = _pictures.get(key)
    if kept is not None and kept.stamp == now_stamp:
        return kept
    # The stamp is read before the rows: a change committed in between gives a picture newer than
    # its stamp, which the next check replaces; never an older one.
    picture = _read(consortium_id, now_stamp, alias)
    # Safe to keep even when read inside a transaction: one that wrote the structure changed the
    # stamp (the triggers), so a rollback brings back the old stamp with the old rows, and the stamp
    # of this picture, random, is never seen again.
    with _lock:
        _pictures[key] = picture
    return picture


def _read(consortium_id: int, now_stamp: int, alias: str) -> Structure:
    consortium = Consortium.objects.using(alias).get(pk=consortium_id)
    libraries = list(Library.objects.using(alias).filter(consortium=consortium, is_active=True).order_by("pk"))
    queues = list(Queue.objects.using(alias).filter(consortium=consortium, is_active=True))
    staff_rows = list(StaffProfile.objects.using(alias).filter(library__consortium=consortium, is_active=True)
                      .values_list("pk", "library__slug", "capacity", "languages"))
    listed: dict[int, list[str]] = defaultdict(list)
    for profile_id, slug in (StaffProfile.queues.through.objects.using(alias)
                             .filter(queue__consortium=consortium).values_list("staffprofile_id", "queue__slug")):
        listed[profile_id].append(slug)
    staff = {pk: StaffEntry(pk, library_slug, capacity, frozenset(languages or []), tuple(listed.get(pk, ())))
             for pk, library_slug, capacity, languages in staff_rows}
    serving: dict[str, set[int]] = defaultdict(set)
    for entry in staff.values():
        serving[entry.library_slug].add(entry.id)
        for slug in entry.shared:
            serving[slug].add(entry.id)
    partners: dict[int, list[str]] = defaultdict(list)
    for library_id, slug in (LibraryPartner.objects.using(alias)
                             .filter(library__consortium=consortium, partner__is_active=True)
                             .order_by("library_id", "position").values_list("library_id", "partner__slug")):
        partners[library_id].append(slug)
    shared = [q.slug for q in sorted((q for q in queues if q.kind == Queue.Kind.SHARED),
                                     key=lambda q: (q.position, q.slug))]
    return Structure(
        stamp=now_stamp,
        partners=dict(partners),
        shared=shared,
        queues_by_id={queue.pk: queue for queue in queues},
        consortium_id=consortium.pk,
        consortium=consortium,
        libraries={library.slug: library for library in libraries},
        libraries_by_id={library.pk: library for library in libraries},
        queues={queue.slug: queue for queue in queues},
        hours=hours_rows([queue.pk for queue in queues]),
        shifts=rota.shifts_of(q for q in queues if q.rota_driven),
        staff=staff,
        serving={slug: frozenset(ids) for slug, ids in serving.items()},
    )


def forget() -> None:
    """Drop every kept picture (tests that rebuild a database under the same ids)."""
    with _lock:
        _pictures.clear()
