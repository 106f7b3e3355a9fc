"""Reads for routing: the situation of a consortium at an instant, and a chat as the router sees it."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Count, F, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime

from consortium.models import Consortium
from consortium.queries import TEXT_KEY, KeyedRows, KeyedValues, asked
from libraries.hours_loader import hours_at
from libraries.models import ShiftAssignment, StaffProfile
from routing import router, whispers
from routing.models import LIVE_STATES, Chat, ChatState, LibrarianPresence, Message, Offer, ServerProcess
from routing.plan import plan_from_json
from routing.structure import Structure, structure_of

# A patron who never opens the socket (nor polls) is taken as gone this long after the chat starts;
# then patron_grace runs as for a patron who left.
NEVER_JOINED_AFTER = timedelta(seconds=60)


def present_librarians(consortium: Consortium, queues: set[str] | None = None,
                       also: Iterable[int] = ()) -> list[StaffProfile]:
    """Present librarians of the consortium; only those serving one of `queues` (or in `also`), when given."""
    presences = LibrarianPresence.objects.filter(
        status=LibrarianPresence.Status.AVAILABLE, online=True,
        librarian__library__consortium=consortium, librarian__is_active=True,
    )
    if queues is not None:
        presences = presences.filter(Q(librarian__library__slug__in=queues) | Q(librarian__queues__slug__in=queues)
                                     | Q(librarian_id__in=list(also)))
    ids = set(presences.values_list("librarian_id", flat=True))
    return list(
        StaffProfile.objects.filter(pk__in=ids)
        .select_related("library", "presence", "user")
        .prefetch_related("queues")
        .annotate(active_count=Count("chats", filter=Q(chats__state=ChatState.ACTIVE)))
    )


def queues_served(profiles: Iterable[StaffProfile]) -> dict[int, list[str]]:
    """The queues each librarian serves: their library's own, the shared queues their profile lists
    (in the consortium's order), and the rota-driven queues they have shifts on (libraries.rota: on
    shift, they serve those too). The one answer for the router's re-routing, the hello frame, the
    console's presence overview and /metrics."""
    profiles = list(profiles)
    ids = [p.pk for p in profiles]
    served: dict[int, list[str]] = {p.pk: [p.library.slug] for p in profiles}
    listed = _queues_listed(staffprofile_id__in=ids).values_list("staffprofile_id", "queue__slug")
    on_rota = _queues_on_rota(librarian_id__in=ids).values_list("librarian_id", "shift__queue__slug").distinct()
    for profile_id, slug in [*listed, *on_rota]:
        _serve(served[profile_id], slug)
    return served


def librarian_queues(profile: StaffProfile) -> list[str]:
    """queues_served for one librarian, by its two queries compiled once per process (every console's
    hello asks it, and a reconnect storm asks it for every console at once)."""
    served = [profile.library.slug]
    for (slug,) in [*_QUEUES_LISTED(profile.pk), *_QUEUES_ON_ROTA(profile.pk)]:
        _serve(served, slug)
    return served


def _queues_listed(**librarians: Any) -> QuerySet[Any]:
    """The shared queues the librarians' profiles list, in the consortium's order."""
    return StaffProfile.queues.through.objects.filter(**librarians).order_by("queue__position", "queue__slug")


def _queues_on_rota(**librarians: Any) -> QuerySet[ShiftAssignment]:
    """The librarians' shifts on rota-driven queues, by queue."""
    return ShiftAssignment.objects.filter(shift__queue__rota_driven=True, **librarians).order_by("shift__queue__slug")


def _serve(served: list[str], slug: str) -> None:
    if slug not in served:
        served.append(slug)


# queues_served's two queries for one librarian (a profile id is never negative).
_QUEUES_LISTED: KeyedRows[Any] = KeyedRows(
    lambda profile_id: _queues_listed(staffprofile_id=profile_id).values_list("queue__slug"),
    key_field="staffprofile_id", sentinel=-7_000_005)
_QUEUES_ON_ROTA: KeyedRows[Any] = KeyedRows(
    lambda profile_id: _queues_on_rota(librarian_id=profile_id).values_list("shift__queue__slug").distinct(),
    key_field="librarian_id", sentinel=-7_000_006)


def librarian_view(profile: StaffProfile, default_capacity: int, now: datetime,
                   on_shift: frozenset[str] = frozenset()) -> router.Librarian:
    # On a rota-driven queue, being on shift is serving it, whether or not the profile lists it.
    queues = frozenset([profile.library.slug, *(q.slug for q in profile.queues.all()), *on_shift])
    presence = getattr(profile, "presence", None)
    idle = (presence.idle_since if presence else None) or now
    return router.Librarian(
        id=profile.pk,
        queues=queues,
        capacity=profile.capacity if profile.capacity is not None else default_capacity,
        active=getattr(profile, "active_count", 0),
        languages=frozenset(profile.languages or []),
        idle_since=idle,
        on_shift=on_shift,
    )


def present_views(consortium: Consortium, now: datetime, queues: set[str] | None = None,
                  shift_of: Mapping[int, frozenset[str]] | None = None,
                  structure: Structure | None = None, presence: PresenceAsked | None = None) -> list[router.Librarian]:
    """present_librarians as the router sees them (librarian_view of each), in one narrow query.

    Who serves which queue, with what capacity and languages, comes from the consortium's kept
    structure (routing.structure); only presence and load, which change all the time, are read: the
    available and online librarians among those who serve `queues` (or are on shift for one), with
    their count of active chats. The cost follows the audience, not the consortium. `presence`: those
    rows asked before (presence_asked), used when they are of the same librarians.
    """
    shift_of = shift_of or {}
    picture = structure or structure_of(consortium)
    candidates = _candidates(picture, queues, shift_of)
    if not candidates:
        return []
    rows = presence.rows() if presence is not None and presence.ids == candidates else presence_and_load(candidates)
    views = []
    for profile_id, idle_since, active in rows:
        entry = picture.staff[profile_id]
        on_shift = shift_of.get(profile_id, frozenset())
        views.append(router.Librarian(
            id=profile_id,
            queues=entry.queues | on_shift if on_shift else entry.queues,
            capacity=entry.capacity if entry.capacity is not None else consortium.librarian_capacity,
            active=active,
            languages=entry.languages,
            idle_since=idle_since or now,
            on_shift=on_shift,
        ))
    return views


def _candidates(picture: Structure, queues: Iterable[str] | None, shift_of: Mapping[int, frozenset[str]]
                ) -> list[int]:
    """Whose presence and load a situation of `queues` reads: those who serve them, and those on shift
    for one; in id order."""
    if queues is None:
        candidates = set(picture.staff)
    else:
        candidates = set()
        for slug in queues:
            candidates |= picture.serving.get(slug, frozenset())
    candidates |= {pk for pk in shift_of if pk in picture.staff}
    return sorted(candidates)


def _shifts_now(picture: Structure, now: datetime, queues: Iterable[str] | None) -> dict[int, frozenset[str]]:
    """Who is on shift at `now` on rota-driven queues among `queues` (None: all), and on which."""
    wanted = None if queues is None else set(queues)
    shifts = [shift for shift in picture.shifts if wanted is None or shift.queue in wanted]
    return picture.on_shift(shifts, now) if shifts else {}


class PresenceAsked:
    """presence_and_load of `ids`, asked before it is needed: sent now, its rows read (once) when
    present_views takes them. On PostgreSQL only (consortium.queries.asked)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        sql, params = _presence_statement(ids, connections[Chat.objects.db])
        self._answer = asked(sql, params, using=Chat.objects.db)
        self._rows: list[tuple[int, datetime | None, int]] | None = None

    def rows(self) -> list[tuple[int, datetime | None, int]]:
        if self._rows is None:
            self._rows = _presence_rows(self._answer())
        return self._rows


def presence_asked(picture: Structure, now: datetime, queues: frozenset[str] | None) -> PresenceAsked | None:
    """Ask now for the presence and load that situation_for(..., queues) at `now` on `picture` will
    read (None: nobody to read). Sent in a pipeline after a lock, it runs once the lock is held, as a
    read after it would."""
    ids = _candidates(picture, queues, _shifts_now(picture, now, queues))
    return PresenceAsked(ids) if ids else None


def presence_and_load(librarian_ids: list[int]) -> list[tuple[int, datetime | None, int]]:
    """(id, idle since, active chats) of those of these librarians who are available and online.

    One statement, written out: it runs on every routing decision, where building it through the
    ORM cost more than the database took to answer it. Active chats are counted through a partial
    index of active chats by librarian (routing_chat_active_librarian), so a librarian's ended chats,
    which pile up over the years, are never read.
    """
    connection = connections[Chat.objects.db]
    sql, params = _presence_statement(librarian_ids, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _presence_rows(cursor.fetchall())


def _presence_statement(librarian_ids: list[int], connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    presence, chat = LibrarianPresence._meta.db_table, Chat._meta.db_table
    ids: list[Any]
    if connection.vendor == "postgresql":
        # One array parameter: a thousand placeholders cost more to prepare than the query to run. The
        # idle time as whole microseconds since the epoch: Django reads a timestamptz through a loader
        # written in Python, which was two thirds of this read for a shared queue's ~1,000 librarians.
        # The ids as an array's text, made in C: psycopg dumps a list element by element in Python
        # (0.28 ms for a shared queue's 200 librarians, 0.05 ms so).
        among, idle = "= ANY(%s::bigint[])", "(extract(epoch FROM p.idle_since) * 1000000)::int8"
        ids = ["{" + ",".join(map(str, map(int, librarian_ids))) + "}"]
    else:
        among, ids, idle = "IN (" + ", ".join(["%s"] * len(librarian_ids)) + ")", list(librarian_ids), "p.idle_since"
    sql = (f"SELECT p.librarian_id, {idle}, (SELECT COUNT(*) FROM {chat} c WHERE c.librarian_id = "
           f"p.librarian_id AND c.state = %s) FROM {presence} p "
           f"WHERE p.status = %s AND p.online AND p.librarian_id {among}")
    return sql, [ChatState.ACTIVE.value, LibrarianPresence.Status.AVAILABLE.value, *ids]


def _presence_rows(rows: Iterable[Any]) -> list[tuple[int, datetime | None, int]]:
    return [(int(librarian_id), _aware(idle_since), int(active)) for librarian_id, idle_since, active in rows]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(value: datetime | str | int | None) -> datetime | None:
    """A timestamp column read without the ORM: SQLite gives naive UTC (or its text), PostgreSQL an
    aware datetime."""
    if value is None:
        return None
    if isinstance(value, int):  # microseconds since the epoch (PostgreSQL, read without Django's loader)
        return EPOCH + timedelta(microseconds=value)
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def situation_for(consortium: Consortium, now: datetime, queues: set[str] | None = None,
                  structure: Structure | None = None, presence: PresenceAsked | None = None) -> router.Situation:
    """The situation at `now`: every queue of the consortium, or only `queues` (a chat's plan) when given.

    The structure (queues, hours, rota, who serves what) comes from routing.structure, kept while
    unchanged; presence and load are read here, in one statement.
    """
    picture = structure or structure_of(consortium)
    queue_rows = [q for slug, q in picture.queues.items() if queues is None or slug in queues]
    open_queues: set[str] = set()
    changes: dict[str, datetime | None] = {}
    modes: dict[str, str] = {}
    rota_driven: set[str] = set()
    for queue, (open_now, change) in zip(queue_rows, hours_at(queue_rows, now, picture.hours), strict=True):
        if open_now:
            open_queues.add(queue.slug)
        changes[queue.slug] = change
        modes[queue.slug] = queue.mode
        if queue.rota_driven:
            rota_driven.add(queue.slug)
    # The rota: who is on shift now on rota-driven queues, and when a shift starts or ends (a chat
    # waiting for such a queue is looked at again then, so the next shift is offered it at once).
    for slug, change in picture.shift_changes(now).items():
        if queues is not None and slug not in queues:
            continue
        hours_change = changes.get(slug)
        changes[slug] = change if hours_change is None else min(hours_change, change)
    shift_of = _shifts_now(picture, now, queues)
    present: dict[str, list[router.Librarian]] = defaultdict(list)
    for view in present_views(consortium, now, queues, shift_of, picture, presence):
        for slug in view.queues:
            if queues is None or slug in queues:
                present[slug].append(view)
    return router.Situation(
        now=now,
        open_queues=frozenset(open_queues),
        present={slug: tuple(libs) for slug, libs in present.items()},
        queue_mode=modes,
        rota_driven=frozenset(rota_driven),
        next_change=changes,
        offer_timeout=consortium.offer_timeout,
        max_wait=consortium.max_wait,
        patron_grace=consortium.patron_grace,
    )


_OPEN = Offer.Status.OPEN.value
_DECLINED = frozenset({Offer.Status.DECLINED.value, Offer.Status.EXPIRED.value})


@dataclass(frozen=True)
class StepOffers:
    """A chat's offers of its current step as the router sees them: those still open, everyone
    offered whatever came of it, and who declined or let theirs expire."""

    open: tuple[router.OpenOffer, ...] = ()
    offered: frozenset[int] = frozenset()
    declined: frozenset[int] = frozenset()

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[int, str, str, datetime | None]]) -> StepOffers:
        """From (librarian, status, mode, expires_at) rows, in one pass: a chat re-routed by a
        presence change may have an offer per librarian of a shared queue, and a shared-queue
        librarian's change re-routes hundreds of such chats."""
        open_offers: list[router.OpenOffer] = []
        offered: set[int] = set()
        declined: set[int] = set()
        for librarian, status, mode, expires in rows:
            offered.add(librarian)
            if status == _OPEN:
                open_offers.append(router.OpenOffer(librarian, mode, expires))
            elif status in _DECLINED:
                declined.add(librarian)
        return cls(tuple(open_offers), frozenset(offered), frozenset(declined))


NO_OFFERS = StepOffers()


def current_step_offers(chat: Chat) -> Q:
    """The chat's offers of its current step: those made or closed in it (their `step_serial`), and
    every offer still open, whatever step made it. A step's open offers stay open in the steps after it
    (the cumulative audience keeps them eligible, docs/routing.md "Offers follow the chat") and their
    rows are not written again when the chat moves on; a close writes the step it happened in."""
    return Q(chat=chat) & (Q(step_serial=chat.step_serial) | Q(status=Offer.Status.OPEN))


def waiting_chat_view(chat: Chat, offers: StepOffers | None = None) -> router.WaitingChat:
    """The chat as the router sees it. `offers`: its offers of the current step, when the caller
    read them already (a batch, or a chat made a moment ago: NO_OFFERS)."""
    # Four columns, not model instances: a chat in a late step has an offer row per librarian of
    # its audience, and this runs on every routing of it.
    if offers is None:
        offers = StepOffers.of_rows(Offer.objects.filter(current_step_offers(chat))
                                    .values_list("librarian_id", "status", "mode", "expires_at"))
    gone: datetime | None = chat.patron_left_at
    if not chat.patron_joined:
        gone = chat.created_at + NEVER_JOINED_AFTER
    return router.WaitingChat(
        id=chat.pk,
        plan=plan_from_json(chat.plan),
        step_index=chat.step_index,
        step_entered_at=chat.step_entered_at,
        arrived_at=chat.arrived_at,
        created_at=chat.created_at,
        language=chat.language,
        offers=offers.open,
        offered=offers.offered,
        declined=offers.declined,
        max_wait_passed=chat.max_wait_passed,
        patron_gone_since=gone if chat.state == ChatState.QUEUED else None,
    )


def queue_position(chat: Chat) -> int:
    """1 + the queued chats that arrived earlier and wait for any queue of this chat's audience."""
    if chat.state != ChatState.QUEUED or chat.step_index < 0:
        return 0
    mine = set(router.audience(plan_from_json(chat.plan), chat.step_index))
    connection = connections[Chat.objects.db]
    if connection.vendor == "postgresql":
        return _chats_ahead_counted(connection, chat, mine) + 1
    rows = Chat.objects.filter(
        consortium_id=chat.consortium_id, state=ChatState.QUEUED, arrived_at__lt=chat.arrived_at, step_index__gte=0
    )
    ahead = 0
    for plan, step_index in mentioning(rows, mine).values_list("plan", "step_index"):
        if mine & set(router.audience(plan_from_json(plan), step_index)):
            ahead += 1
    return ahead + 1


def queue_positions(chats: list[Chat]) -> dict[str, int]:
    """queue_position of each of these chats, in one statement on PostgreSQL (a batch of chats moved
    on by the timer tells each patron their place: a count each was a round trip each)."""
    return queue_positions_asked(chats)()


def queue_positions_asked(chats: list[Chat]) -> Callable[[], dict[str, int]]:
    """queue_positions, asked now and read when the answer is called for. On PostgreSQL in a pipeline
    the count is only sent here: read after the block's COMMIT, its answer comes back with the
    COMMIT's, not in a round trip of its own (routing.services.route.chat_route)."""
    connection = connections[Chat.objects.db]
    counted = [chat for chat in chats if chat.state == ChatState.QUEUED and chat.step_index >= 0]
    positions = {chat.pk: 0 for chat in chats}
    if connection.vendor != "postgresql" or not counted:
        positions.update({chat.pk: queue_position(chat) for chat in counted})
        return lambda: positions
    rows = json.dumps([{"id": chat.pk, "consortium": chat.consortium_id, "arrived": chat.arrived_at.isoformat(),
                        "queues": sorted(router.audience(plan_from_json(chat.plan), chat.step_index))}
                       for chat in counted])
    table = Chat._meta.db_table
    sql = (f"SELECT s.id, (SELECT COUNT(*) FROM {table} c WHERE c.consortium_id = s.consortium AND c.state = %s "
           "AND c.arrived_at < s.arrived AND c.step_index >= 0 AND c.audience && s.queues) "
           "FROM jsonb_to_recordset(%s::jsonb) AS s(id text, consortium bigint, arrived timestamptz, queues text[])")
    answer = asked(sql, [ChatState.QUEUED.value, rows], using=Chat.objects.db)

    def read() -> dict[str, int]:
        for chat_id, ahead in answer():
            positions[chat_id] = int(ahead) + 1
        return positions

    return read


def _chats_ahead_counted(connection: BaseDatabaseWrapper, chat: Chat, queues: set[str]) -> int:
    """queue_position's count, made by PostgreSQL: the waiting chats of the consortium that arrived
    earlier and whose audience (a column PostgreSQL keeps from each chat's plan and step, migration
    0022) shares a queue with this one's. Written out: the ORM took longer to build it than
    PostgreSQL to run it."""
    if not queues:
        return 0  # an audience of no queue (a transfer to a named librarian) waits behind nobody
    table = Chat._meta.db_table
    sql = (f"SELECT COUNT(*) FROM {table} c WHERE c.consortium_id = %s AND c.state = %s AND c.arrived_at < %s "
           "AND c.step_index >= 0 AND c.audience && %s::text[]")
    params: list[Any] = [chat.consortium_id, ChatState.QUEUED.value, chat.arrived_at, sorted(queues)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (count,) = cursor.fetchone()
    return int(count)


# consortium id -> (monotonic time read, seconds): a median over the last 50 answers moves slowly, and
# it was read for every state frame a patron is sent.
_TYPICAL_WAIT: dict[int, tuple[float, int]] = {}
TYPICAL_WAIT_KEPT_SECONDS = 10.0


def typical_wait_seconds(consortium: Consortium) -> int:
    """Median time to accept over the consortium's last 50 answered chats (60 s when there are none),
    read again at most every TYPICAL_WAIT_KEPT_SECONDS per process."""
    kept = _TYPICAL_WAIT.get(consortium.pk)
    if kept is not None and time.monotonic() - kept[0] < TYPICAL_WAIT_KEPT_SECONDS:
        return kept[1]
    seconds = _typical_wait_read(consortium)
    _TYPICAL_WAIT[consortium.pk] = (time.monotonic(), seconds)
    return seconds


def _typical_wait_read(consortium: Consortium) -> int:
    rows = list(
        Chat.objects.filter(consortium=consortium, first_accepted_at__isnull=False)
        .order_by("-first_accepted_at")
        .values_list("arrived_at", "first_accepted_at")[:50]
    )
    if not rows:
        return 60
    waits = sorted((accepted - arrived).total_seconds() for arrived, accepted in rows if accepted is not None)
    return max(5, int(waits[len(waits) // 2]))


def plan_queues(chat: Chat) -> set[str] | None:
    """Every queue a chat's plan names: all that routing it can depend on (None: it needs everyone,
    as a transfer to a named librarian does, who may serve no queue of the plan)."""
    plan = plan_from_json(chat.plan)
    if any(step.librarian is not None for step in plan):
        return None
    return {queue for step in plan for queue in step.queues}


def plan_json_queues(plan: list[dict[str, Any]]) -> set[str] | None:
    """plan_queues for a plan as stored (JSON), without a Chat."""
    if any(step.get("librarian") is not None for step in plan):
        return None
    return {queue for step in plan for queue in step.get("queues") or ()}


# A slug that json.dumps writes as itself between double quotes: no quote, backslash, control or
# non-ASCII character.
_PLAIN_SLUG = re.compile(r"^[A-Za-z0-9_.\-]+$")


def mentioning(chats: QuerySet[Chat], queues: Iterable[str]) -> QuerySet[Chat]:
    """Narrow `chats` to those whose plan names one of `queues` in some step, in the database.

    Only a first cut: naming a queue in a later step is not having it in the audience yet, so
    callers still check the audience of each row. It spares them reading and parsing the plan of
    every waiting chat of the consortium to find the few that concern one librarian or one chat,
    which made presence changes and queue positions grow with the whole consortium.
    """
    slugs = sorted(set(queues))
    if not slugs:
        return chats
    named = Q()
    if connections[chats.db].vendor == "postgresql":
        # jsonb containment: a step whose queues hold the slug. Several times cheaper per row than
        # matching the plan's text, which PostgreSQL would first have to print.
        for slug in slugs:
            named |= Q(plan__contains=[{"queues": [slug]}])
        return chats.filter(named)
    if not all(_PLAIN_SLUG.match(slug) for slug in slugs):
        return chats  # a slug whose JSON spelling may differ from itself: read them all
    # Elsewhere (SQLite) the plan is stored as the text json.dumps wrote, quotes and all.
    for slug in slugs:
        named |= Q(plan_text__contains=f'"{slug}"')
    return chats.annotate(plan_text=Cast("plan", output_field=TextField())).filter(named)


def waiting_for(chats: QuerySet[Chat], queues: Iterable[str]) -> QuerySet[Chat]:
    """Narrow waiting `chats` to those whose audience may hold one of `queues`, in the database.

    On PostgreSQL through the audience column a trigger keeps (migration 0022) and its GIN index: a
    shared queue is named in the last step of almost every plan, so `mentioning` kept every waiting
    chat of the consortium (2,000 at benchmark scale) for a shared-queue librarian's change, of which
    about 650 have it in their audience. A chat not routed yet (step -1) has an empty column and is
    kept. Still a first cut, as `mentioning` is: callers check each row's audience themselves.
    """
    slugs = sorted(set(queues))
    if not slugs or connections[chats.db].vendor != "postgresql":
        return mentioning(chats, slugs)
    table = Chat._meta.db_table
    return chats.filter(RawSQL(f"({table}.audience && %s::text[] OR {table}.step_index < 0)", (slugs,),
                               output_field=BooleanField()))


def with_chat_channel(rows: QuerySet[Message]) -> QuerySet[Message]:
    """Messages that carry their chat's channel (Message.chat_channel, for their frames), read by the
    same query: a join on the chat's key, no query per message."""
    # The annotation fills the model's plain attribute on purpose (django-stubs sees a redefinition).
    return rows.annotate(chat_channel=F("chat__channel"))  # type: ignore[no-redef]


def messages_after(chat_id: str, after: int, *, for_patron: bool, reader: int | None = None,
                   upto: int | None = None) -> list[Message]:
    """A chat's messages with seq > after (<= upto), in order; without internal notes for the patron,
    and without the whispers the staff `reader` may not read (routing.whispers). Each carries its
    chat's channel for its frame, read by the same query."""
    if upto is None:  # a join's history: compiled once (below); a gap's fill is rare
        if for_patron:
            return _HISTORY_FOR_PATRON(chat_id, after)
        if reader is not None:
            return _HISTORY_FOR_STAFF(chat_id, after, reader)
    return list(_history(chat_id, after, upto, for_patron=for_patron, reader=reader))


def _history(chat_id: str, after: int, upto: int | None, *, for_patron: bool,
             reader: int | None) -> QuerySet[Message]:
    rows = with_chat_channel(Message.objects.filter(chat_id=chat_id, seq__gt=after).select_related("file")
                             .order_by("seq"))
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return rows.filter(internal=False) if for_patron else rows.filter(whispers.visible_q(reader))


# A join's history, for the patron and for a librarian: every socket's join reads it, and a reconnect
# storm every socket's at once. Compiled once per process (consortium.queries.KeyedRows). The keys'
# sentinels are values no chat or librarian has; the seq's is within a positive integer's range, since
# Django drops a comparison with a value below it from the query (every seq is above it), and the
# sentinel must be found among the parameters. At a call, a negative `after` is compared all the same.
_HISTORY_FOR_PATRON = KeyedRows(lambda chat_id, after: _history(chat_id, after, None, for_patron=True, reader=None),
                                key_field=("chat_id", "seq"), sentinel=(TEXT_KEY, 2_147_000_010))
_HISTORY_FOR_STAFF = KeyedRows(lambda chat_id, after, reader: _history(chat_id, after, None, for_patron=False,
                                                                       reader=reader),
                               key_field=("chat_id", "seq", "librarian_id"),
                               sentinel=(TEXT_KEY, 2_147_000_011, -7_000_012))


def librarian_holds(librarian_id: int, chat_id: str) -> bool:
    return _HOLDS(librarian_id, chat_id) is not None


_HOLDS = KeyedValues(lambda librarian_id, chat_id: Chat.objects.filter(
    pk=chat_id, librarian_id=librarian_id, state=ChatState.ACTIVE).values_list("pk"),
    key_field=("librarian_id", "pk"), sentinel=(-7_000_013, TEXT_KEY))


def session_expiry(key: str) -> datetime | None:
    """When a signed-in session ends (None: it has ended, or never was)."""
    return Session.objects.filter(session_key=key).values_list("expire_date", flat=True).first()


def live_chats_and_web_processes(now: datetime, dead_after: timedelta) -> tuple[int, int]:
    """The chats going on in the whole deployment (waiting or being answered, every consortium: one
    partial index of them alone, routing_chat_live) and the web processes heart-beating, for admission
    (routing.admission): the chats the processes carry together, and how many carry them."""
    live = Chat.objects.filter(state__in=LIVE_STATES).count()
    processes = ServerProcess.objects.filter(heartbeat_at__gte=now - dead_after).count()
    return live, processes
