"""The routing loop: load a queued chat and the situation, ask routing.router, apply and record the
decision; and re-route the chats a change affects (a librarian available, away or freed)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

import psycopg
from django.db import connections, transaction
from django.db.models import Field, QuerySet

from consortium.models import Consortium
from consortium.queries import asked, atomic_pipelined, pipelined
from libraries.models import StaffProfile
from routing import events, frames, router
from routing.models import Chat, ChatState, LibrarianPresence, Offer, StructureVersion, TraceEvent
from routing.plan import plan_from_json
from routing.selectors import (
    EPOCH,
    NO_OFFERS,
    PresenceAsked,
    StepOffers,
    librarian_queues,
    plan_json_queues,
    plan_queues,
    presence_asked,
    queue_positions_asked,
    situation_for,
    waiting_chat_view,
    waiting_for,
)
from routing.services.common import (
    LOGGED_KINDS,
    chat_end_locked,
    chat_state_publish,
    librarian_set_away,
    log_decision,
)
from routing.structure import Structure, structure_of
from routing.structure import kept as kept_structure

# Chats routed together in one transaction by chats_route (a presence change, a burst of deadlines):
# enough to make a few statements serve many chats, few enough that no lock is held for long.
BATCH = 50


def chat_route_locked(chat: Chat, now: datetime, situation: router.Situation | None = None) -> set[int]:
    """Decide and apply for a locked queued chat. Returns librarians whose other offers need a look."""
    view = waiting_chat_view(chat)
    decision = router.decide(view, situation) if situation else _decide(chat, view, now)
    writes = Writes()
    touched = _apply(chat, decision, now, writes)
    writes.flush()
    return touched


def _decide(chat: Chat, view: router.WaitingChat, now: datetime, structure: Structure | None = None,
            presence: PresenceAsked | None = None) -> router.Decision:
    """router.decide for one chat, the situation read only as far along its plan as needed (with the
    presence and load asked before, `presence`, when they are of the librarians it reads)."""
    return router.decide_reading(view, now, lambda queues: situation_for(
        chat.consortium, now, None if queues is None else set(queues), structure, presence))


def chat_route_new(chat: Chat, now: datetime, *, first_trace: TraceLine, structure: Structure | None = None,
                   check: Callable[[], None] | None = None) -> None:
    """Route a chat not yet written (chats.chat_start): it has no offers to read, and its row, its first
    trace line (`first_trace`) and the router's lines and offers are written in one go, in the
    caller's transaction. `check`, called once decided and before anything is written, may refuse
    the decision (chats.chat_start: the structure it was made on is not current)."""
    view = waiting_chat_view(chat, offers=NO_OFFERS)
    decision = _decide(chat, view, now, structure)
    if check is not None:
        check()
    writes = Writes()
    writes.created.append(chat)
    writes.traces.append(first_trace)
    _apply(chat, decision, now, writes)
    writes.flush()


class SharedSituation:
    """One situation for many chats routed one after another at the same instant `now`.

    Routing one chat writes only that chat, its offers and its trace: nothing a situation holds
    (hours, presence, active chats, profiles). So the chats a presence change re-routes can share
    one read of the world instead of one each, which made a librarian on a shared queue cost a full
    situation per waiting chat. It is read again when routing did change the world (a direct offer
    expired: that librarian goes away; a chat found active may have ended and freed its librarian),
    and after MAX_AGE, so what another process changes meanwhile is seen as soon as it would have
    been with a read per chat, give or take that much.
    """

    # Seconds of wall-clock time. It was read again for every batch of BATCH chats: a read of ~1,000
    # librarians' presence and load cost a fifth of re-routing a shared queue's 650 chats.
    MAX_AGE = 0.25

    def __init__(self, consortium: Consortium, now: datetime, queues: set[str] | None) -> None:
        self.consortium = consortium
        self.now = now
        self.queues = queues  # the union of the plans' queues of the chats to route (None: all)
        self.situation: router.Situation | None = None
        self.read_at = 0.0

    def for_chat(self, chat: Chat) -> router.Situation:
        needed = plan_queues(chat)
        if self.queues is not None and (needed is None or not needed <= self.queues):
            # Its plan changed since the chats were listed (a transfer): read what it needs alone.
            return situation_for(chat.consortium, self.now, needed)
        if self.situation is None or time.monotonic() - self.read_at > self.MAX_AGE:
            self.situation = situation_for(self.consortium, self.now, self.queues)
            self.read_at = time.monotonic()
        return self.situation

    def stale(self) -> None:
        self.situation = None


def queues_of_plans(plans: Iterable[list[Any]]) -> set[str] | None:
    union: set[str] = set()
    for plan in plans:
        queues = plan_json_queues(plan)
        if queues is None:
            return None
        union |= queues
    return union


class TraceLine(NamedTuple):
    """A trace line to write: a TraceEvent's columns without the model, whose instance cost more to
    make than to write (a step offering a shared queue writes one per librarian)."""

    chat_id: str
    at: datetime
    kind: str
    data: dict[str, Any]


class RouteHint(NamedTuple):
    """What a caller that listed a waiting chat knows of it (sweeps.due_sweep: its deadline passed).
    From it, chat_route asks the presence and load its decision will read with the chat's lock,
    instead of in a round trip after it. Only a hint: the decision checks that they are of the
    librarians it reads, and reads them itself if not (the chat moved on meanwhile)."""

    consortium_id: int
    plan: list[Any]  # as stored (Chat.plan)
    step_index: int
    step_entered_at: datetime | None


class OfferMade(NamedTuple):
    """A new open offer to write (an Offer's columns, as TraceLine is a trace line's), and to announce
    (frames.offer_frame)."""

    chat_id: str
    librarian_id: int
    step_serial: int
    step: str
    queue: str
    mode: str
    created_at: datetime
    expires_at: datetime | None


class Close(NamedTuple):
    """An open offer closed (expired, withdrawn) by a decision. Its row takes the serial of the step
    it was closed in: an offer made in an earlier step and still open belongs to the chat's current
    step (docs/routing.md, "Offers follow the chat"), and a decline or expiry counts in that step."""

    status: str
    at: datetime
    reason: str
    chat_id: str
    librarian_id: int
    serial: int


class Writes:
    """What applying decisions writes, gathered so that a batch of chats costs a few statements:
    one UPDATE for the offers expired or withdrawn, one INSERT for every trace line, one upsert for
    every new offer and one UPDATE for the chats; then one count of the waiting patrons' places,
    whose answer brings back the writes' too. Flushed once, at the end of the transaction that gathered it."""

    def __init__(self, *, places_after_commit: bool = False) -> None:
        # True (a block of atomic_pipelined that ends with the flush): the count of the patrons'
        # places is sent with the writes and read with the COMMIT's answer, by tell_places() after
        # the block, instead of a round trip of its own between the writes and the COMMIT.
        self.places_after_commit = places_after_commit
        self._places: Callable[[], dict[str, int]] | None = None
        self.created: list[Chat] = []  # chats to insert (already holding what was decided), first
        self.closes: list[Close] = []
        self.traces: list[TraceLine] = []
        self.offers: list[OfferMade] = []
        self.chats: dict[tuple[str, ...], list[Chat]] = defaultdict(list)  # fields -> chats
        self.states: list[Chat] = []  # waiting chats whose patrons are told their state (and place)

    def flush(self) -> None:
        with pipelined():  # nothing here reads an answer: one round trip for all
            self._write()
        if not self.places_after_commit:
            self.tell_places()

    def tell_places(self) -> None:
        """Tell each waiting patron of `states` their state and place, from the count flush() asked."""
        places, self._places = self._places, None
        if places is not None:
            positions = places()
            for chat in self.states:
                events.to_chat(chat.pk, frames.patron_state_frame(chat, positions[chat.pk]))

    def _write(self) -> None:
        if self.created:
            _chats_insert(self.created)
        if self.closes:
            # Offers expired or withdrawn, before any move or new offer (a chat's open offers only).
            if _by_hand():
                _offers_close(self.closes)
            else:
                connection = connections[Offer.objects.db]
                table = connection.ops.quote_name(Offer._meta.db_table)
                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"UPDATE {table} SET status = %s, closed_at = %s, reason = %s, step_serial = %s "
                        f"WHERE chat_id = %s AND librarian_id = %s AND status = '{Offer.Status.OPEN.value}'",
                        [(c.status, Offer._meta.get_field("closed_at").get_db_prep_save(c.at, connection),
                          c.reason, c.serial, c.chat_id, c.librarian_id) for c in self.closes])
        if self.traces:
            # Ids, hence each chat's trace order, follow the list.
            if _by_hand():
                _traces_insert(self.traces)
            else:
                TraceEvent.objects.bulk_create([TraceEvent(**line._asdict()) for line in self.traces])
        if self.offers:
            # One row per (chat, librarian, step) by constraint. A broadcast offer withdrawn because
            # the librarian went away or filled up is offered again when they are eligible again in
            # the same step (ROUTING.md: every eligible librarian is offered), so that row is
            # reopened. Declined and expired rows never get here (the router leaves those librarians
            # out for the rest of the step).
            if _by_hand():
                _offers_upsert(self.offers)
            else:
                Offer.objects.bulk_create(
                    [Offer(**offer._asdict(), status=Offer.Status.OPEN, closed_at=None, reason="")
                     for offer in self.offers],
                    update_conflicts=True, unique_fields=["chat", "librarian", "step_serial"],
                    update_fields=list(OFFER_UPSERTED))
        for fields, chats in self.chats.items():
            if len(chats) == 1 and not _by_hand():  # (save reads the row count: not in a pipeline)
                chats[0].save(update_fields=list(fields))
            else:
                _chats_update(chats, fields)
        if self.states:
            # After the writes, in the same round trip: each patron's place counted on the queue as
            # this batch leaves it (before, a count each, before the batch's own moves were written).
            self._places = queue_positions_asked(self.states)


OFFER_UPSERTED = ("step", "queue", "mode", "created_at", "expires_at", "status", "closed_at", "reason")


def _by_hand() -> bool:
    return connections[Offer.objects.db].vendor == "postgresql"


# A step that offers a chat to a shared queue writes an offer and a trace line for each of its
# librarians (50 on average at benchmark scale). Through bulk_create, Django prepared and psycopg
# quoted every value in Python, half of a step timeout's CPU. Then each column went as one array
# bound by the server, but psycopg dumps a text array in Python, escaping every element by regular
# expression: a third of a step timeout's CPU again. Now all rows go as one JSON text, made by the
# json module's C encoder and taken apart by the server, in a statement prepared once per connection.
# A broadcast's rows differ only in the librarian and their queue: they go as one element holding
# what they share once and those two as arrays, which the server unfolds in order (ROWS FROM zips
# them). Encoding a row per librarian was most of what writing a shared queue's step cost in Python.
_TRACES_SQL = (f"INSERT INTO {TraceEvent._meta.db_table} (chat_id, at, kind, data) "
               "SELECT r->>0, (r->>1)::timestamptz, r->>2, CASE WHEN u.m IS NULL THEN r->3 "
               "ELSE (r->3) || jsonb_build_object('librarian', u.librarian, 'queue', u.queue) END "
               "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(r, n) LEFT JOIN LATERAL ROWS FROM "
               "(jsonb_array_elements(r->4), jsonb_array_elements(r->5)) WITH ORDINALITY AS u(librarian, queue, m) "
               "ON true ORDER BY n, m")
_OFFERS_SQL = (
    f"INSERT INTO {Offer._meta.db_table} (chat_id, librarian_id, step_serial, step, queue, mode, created_at, "
    "expires_at, status, closed_at, reason) SELECT r->>0, u.librarian::bigint, (r->>1)::integer, r->>2, u.queue, "
    f"r->>3, (r->>4)::timestamptz, (r->>5)::timestamptz, '{Offer.Status.OPEN.value}', NULL, '' "
    "FROM jsonb_array_elements(%s::jsonb) AS t(r), ROWS FROM (jsonb_array_elements_text(r->6), "
    "jsonb_array_elements_text(r->7)) AS u(librarian, queue) "
    "ON CONFLICT (chat_id, librarian_id, step_serial) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in OFFER_UPSERTED))


# Offers closed (expired, withdrawn) as runs of one status, instant and reason: a librarian gone away
# closes one offer in each of hundreds of chats, which went as a statement each (80 us of the
# server's time and a pipelined round of the client's each).
_CLOSES_SQL = (f"UPDATE {Offer._meta.db_table} o SET status = r->>0, closed_at = (r->>1)::timestamptz, "
               "reason = r->>2, step_serial = u.serial::integer FROM jsonb_array_elements(%s::jsonb) AS t(r), "
               "ROWS FROM (jsonb_array_elements_text(r->3), jsonb_array_elements_text(r->4), "
               "jsonb_array_elements_text(r->5)) AS u(chat_id, librarian, serial) "
               f"WHERE o.chat_id = u.chat_id AND o.librarian_id = u.librarian::bigint "
               f"AND o.status = '{Offer.Status.OPEN.value}'")


def _by_server(sql: str, params: list[Any], *, rows: bool = False) -> list[tuple[Any, ...]]:
    """One statement on psycopg's own cursor, in the caller's transaction; its rows, all at once
    when asked (fetched a row at a time, thousands of offers cost more than the query)."""
    connection = connections[Offer.objects.db]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)  # (none behind pgbouncer: message_store)
        return cursor.fetchall() if rows else []


def _traces_insert(traces: list[TraceLine]) -> None:
    iso = _Iso()  # a batch's lines share a few instants
    rows: list[tuple[Any, ...]] = []
    run: tuple[list[Any], list[Any]] = ([], [])
    shared: tuple[str, datetime, Any] | None = None
    for line in traces:
        data = line.data
        if line.kind == "offered" and data.keys() == _OFFERED_KEYS:  # (router.decide's line per offer)
            key = (line.chat_id, line.at, data["mode"])
            if key != shared:  # a run of a chat's offers of one instant and mode: one element
                shared, run = key, ([], [])
                rows.append((line.chat_id, iso[line.at], "offered", {"mode": data["mode"]}, *run))
            run[0].append(data["librarian"])
            run[1].append(data["queue"])
        else:
            shared = None
            rows.append((line.chat_id, iso[line.at], line.kind, data))
    _by_server(_TRACES_SQL, [json.dumps(rows)])


_OFFERED_KEYS = frozenset({"librarian", "queue", "mode"})


def _offers_close(closes: list[Close]) -> None:
    """Each close: that librarian's open offer of that chat closed, in that step. The first close of
    an offer counts, as when each went as a statement of its own (a later one found it closed)."""
    iso = _Iso()
    rows: list[tuple[Any, ...]] = []
    run: tuple[list[str], list[int], list[int]] = ([], [], [])
    shared: tuple[str, datetime, str] | None = None
    seen: set[tuple[str, int]] = set()
    for close in closes:
        if (close.chat_id, close.librarian_id) in seen:
            continue
        seen.add((close.chat_id, close.librarian_id))
        if (close.status, close.at, close.reason) != shared:
            shared, run = (close.status, close.at, close.reason), ([], [], [])
            rows.append((close.status, iso[close.at], close.reason, *run))
        run[0].append(close.chat_id)
        run[1].append(close.librarian_id)
        run[2].append(close.serial)
    _by_server(_CLOSES_SQL, [json.dumps(rows)])


def _offers_upsert(offers: list[OfferMade]) -> None:
    iso = _Iso()  # the offers of a batch share a few instants
    rows: list[tuple[Any, ...]] = []
    run: tuple[list[int], list[str]] = ([], [])
    shared: tuple[Any, ...] | None = None
    for o in offers:
        key = (o.chat_id, o.step_serial, o.step, o.mode, o.created_at, o.expires_at)
        if key != shared:  # a run of one chat's offers alike but for the librarian and queue: one element
            shared, run = key, ([], [])
            rows.append((o.chat_id, o.step_serial, o.step, o.mode, iso[o.created_at], iso[o.expires_at], *run))
        run[0].append(o.librarian_id)
        run[1].append(o.queue)
    _by_server(_OFFERS_SQL, [json.dumps(rows)])


class _Iso(dict[datetime | None, str | None]):
    def __missing__(self, at: datetime | None) -> str | None:
        text = self[at] = None if at is None else at.isoformat()
        return text


def _chats_insert(chats: list[Chat]) -> None:
    """`chat.save(force_insert=True)` for chats being created, without reading anything back. save()
    adds RETURNING for the columns that have a database default (db_default: rows written by raw SQL
    or older code), and in a pipeline a statement whose answer is read is a round trip of its own:
    the chat's row went alone and its trace, offers and first line in a second trip. Every column is
    written from the instance, so there is nothing to read back. On PostgreSQL one chat (a chat
    start) goes as a statement prepared once per connection with plain parameters: Django's insert
    compiler built the SQL and psycopg quoted every value in Python each time (0.40 ms of CPU a row,
    0.25 ms this way; docs/routing.md)."""
    alias = Chat.objects.db
    values = _chat_insert_values(chats[0], connections[alias]) if len(chats) == 1 and _by_hand() else None
    if values is not None:
        _by_server(_CHAT_INSERT_SQL, values)
    else:
        Chat._base_manager._insert(chats, fields=Chat._meta.local_concrete_fields,  # type: ignore[attr-defined]
                                   returning_fields=None, using=alias)
    for chat in chats:
        chat._state.adding = False
        chat._state.db = alias


def _chat_insert_values(chat: Chat, connection: Any) -> list[Any] | None:
    """Each column's value as Django's insert would send it (pre_save, then get_db_prep_save), in the
    order of _CHAT_INSERT_SQL (the chat's columns, _CHAT_COLUMNS); None when a value is an expression
    (a column left to its database default, say), which only Django's compiler writes."""
    values = []
    for field in Chat._meta.concrete_fields:
        value = field.pre_save(chat, True)
        if hasattr(value, "resolve_expression"):
            return None
        values.append(field.get_db_prep_save(value, connection))
    return values


def _chats_update(chats: list[Chat], fields: tuple[str, ...]) -> None:
    """`chat.save(update_fields=fields)` for many chats. Django's bulk_update builds a CASE per field
    and row, which cost more Python than the rest of routing a batch. On PostgreSQL: one statement,
    each column bound by the server as one array (one chat: one value each); elsewhere one
    statement sent once per row in a single round of executemany."""
    connection = connections[Chat.objects.db]
    columns = [field for name in fields if isinstance(field := Chat._meta.get_field(name), Field)]
    assert len(columns) == len(fields), "columns of the chat's own table only"
    values = [[column.get_db_prep_save(getattr(chat, column.attname), connection) for chat in chats]
              for column in columns]
    ids = [chat.pk for chat in chats]
    quote = connection.ops.quote_name
    table = quote(Chat._meta.db_table)
    if _by_hand() and len(chats) == 1:
        # One chat (chat_route): plain parameters, which psycopg dumps in C; an array is dumped in Python.
        sql = _CHAT_UPDATE_SQL.get(fields)
        if sql is None:
            assignments = ", ".join(f"{quote(str(column.column))} = %s" for column in columns)
            sql = _CHAT_UPDATE_SQL[fields] = f"UPDATE {table} SET {assignments} WHERE id = %s"
        _by_server(sql, [*(column_values[0] for column_values in values), ids[0]])
        return
    if _by_hand():
        sql = _CHATS_UPDATE_SQL.get(fields)
        if sql is None:  # made once per set of fields (a handful) per process
            arrays = ", ".join(f"%s::{column.db_type(connection)}[]" for column in [Chat._meta.pk, *columns])
            names = ", ".join(f"c{i}" for i in range(len(columns)))
            assignments = ", ".join(f"{quote(str(column.column))} = v.c{i}" for i, column in enumerate(columns))
            sql = _CHATS_UPDATE_SQL[fields] = (f"UPDATE {table} SET {assignments} FROM unnest({arrays}) "
                                               f"AS v(id, {names}) WHERE {table}.id = v.id")
        _by_server(sql, [ids, *values])
        return
    assignments = ", ".join(f"{quote(str(column.column))} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s",
                           [[*row, chat_id] for *row, chat_id in zip(*values, ids, strict=True)])


_CHATS_UPDATE_SQL: dict[tuple[str, ...], str] = {}
_CHAT_UPDATE_SQL: dict[tuple[str, ...], str] = {}


def _apply(chat: Chat, decision: router.Decision, now: datetime, writes: Writes
           ) -> set[int]:
    touched: set[int] = set()
    plan = plan_from_json(chat.plan)
    writes.traces += [TraceLine(chat.pk, now, note.kind, dict(note.data)) for note in decision.notes]
    for note in decision.notes:
        if note.kind in LOGGED_KINDS:
            log_decision(chat, note.kind, dict(note.data))

    for librarian_id in decision.expired:
        writes.closes.append(Close(Offer.Status.EXPIRED, now, "expired", chat.pk, librarian_id, chat.step_serial))
        events.to_librarian(librarian_id, frames.withdrawn_frame(chat.pk, "expired"))
        # After commit: the presence row is locked only outside a chat's lock (presence before chat).
        transaction.on_commit(partial(librarian_set_away, librarian_id, "offer_expired", now))
        touched.add(librarian_id)
    for librarian_id, reason in decision.withdraw.items():
        writes.closes.append(Close(Offer.Status.WITHDRAWN, now, reason, chat.pk, librarian_id, chat.step_serial))
        events.to_librarian(librarian_id, frames.withdrawn_frame(chat.pk, reason))

    fields = ("step_index", "step_entered_at", "max_wait_passed", "deadline", "state", "step_serial", "version")
    publish_state = decision.max_wait_passed and not chat.max_wait_passed
    if decision.step_changed:
        # Offers still open stay as they are: they belong to the new step by being open (no row written
        # for them; those closed above count in the step they were closed in).
        chat.step_serial += 1
        publish_state = True
    # A decision that leaves the chat's row as it was (an offer more in the same step, which is what
    # a librarian coming back means to most waiting chats) writes only offers and trace: a shared
    # queue's 650 chats were each written again for nothing.
    ends = decision.state in (ChatState.UNSTAFFED, ChatState.ABANDONED)
    row_changed = (ends or decision.step_changed or chat.step_index != decision.step_index
                   or chat.step_entered_at != decision.step_entered_at
                   or chat.max_wait_passed != decision.max_wait_passed or chat.deadline != decision.deadline)
    chat.step_index = decision.step_index
    chat.step_entered_at = decision.step_entered_at
    chat.max_wait_passed = decision.max_wait_passed
    chat.deadline = decision.deadline
    if row_changed:
        chat.version += 1

    # A chat being created has nobody in its group yet (its id goes back in the answer to the
    # start): its patron is sent its state when their socket or poll joins. Publishing it here read
    # the queue position (a count over the consortium's waiting chats) for no one.
    created = chat in writes.created
    if ends:
        chat.state = decision.state
        chat.deadline = None
        chat.ended_at = now if decision.state == ChatState.ABANDONED else None
        if not created:
            writes.chats[(*fields, "ended_at")].append(chat)
            chat_state_publish(chat)
        return touched

    step = plan[chat.step_index]
    if decision.offers:
        made = [OfferMade(chat.pk, new.librarian, chat.step_serial, step.name, new.queue, new.mode, now, new.expires_at)
                for new in decision.offers]
        writes.offers += made
        # A broadcast tells every librarian of the step the same thing: one frame for all of them.
        shown: dict[tuple[str, str, datetime | None], frames.Frame] = {}
        events.to_librarians([(offer.librarian_id, shown.get((offer.queue, offer.mode, offer.expires_at))
                               or shown.setdefault((offer.queue, offer.mode, offer.expires_at),
                                                   frames.offer_frame(offer, chat)))
                              for offer in made])
    if not created and row_changed:
        writes.chats[fields].append(chat)
        if publish_state:
            writes.states.append(chat)
    return touched


def chat_route(chat_id: str, now: datetime, *, skip_locked: bool = False,
               shared: SharedSituation | None = None, hint: RouteHint | None = None) -> None:
    """Look at one chat again (its deadline passed, or something it depends on changed). `hint`: what
    the caller knows of the chat, from which its decision's presence and load are asked with its lock."""
    touched: set[int] = set()
    outbox: events.Outbox = []  # its offer frames and its patron's state: one trip to the channel layer
    # BEGIN, the lock (with the structure's stamp), the chat's offers and (given a hint) the presence and
    # load of who it may be offered to in one round trip; the writes, COMMIT and the patron's place in one.
    with events.collected(outbox):
        writes = Writes(places_after_commit=True)
        with atomic_pipelined() as pipeline:
            locked = _locked_alone(chat_id, skip_locked, hint, now)
            if locked is None:
                return
            chat, offers, presence = locked
            if chat.state != ChatState.QUEUED:
                pipeline.leave()  # an active chat's idle deadline may end it, through Django's save()
            stamped = getattr(chat, "structure_stamp", None)  # read by the lock (PostgreSQL): no query of its own
            picture = structure_of(chat.consortium_id, None if stamped is None else lambda: int(stamped))
            chat.consortium = picture.consortium
            if (home := picture.libraries_by_id.get(chat.home_library_id or 0)) is not None:
                chat.home_library = home  # (an inactive home library is read when needed)
            touched = _route_one_locked(chat, now, shared, offers, writes, picture, presence)
            writes.flush()
        writes.tell_places()
    events.send_all(outbox)
    offers_reroute(touched, now)


def _locked_alone(chat_id: str, skip_locked: bool, hint: RouteHint | None = None, now: datetime | None = None
                  ) -> tuple[Chat, StepOffers | None, PresenceAsked | None] | None:
    """One chat locked for routing (chat_route), its own row only: its consortium and home library come
    from the kept structure (the caller's). On PostgreSQL, with the offers of its current step, asked
    in the same round trip (None: to be read when needed), and given a `hint` and the decision's `now`,
    the presence and load its decision will likely read, asked in that round trip too."""
    if not _by_hand():
        chat = next(iter(_for_routing(Chat.objects.filter(pk=chat_id), skip_locked)), None)
        return None if chat is None else (chat, None, None)
    # Read by hand, not as a raw queryset: that reads the columns' names before any row, which in a
    # pipeline (route.chat_route's) are not there until the answer is. On psycopg's own cursor, as the
    # offers beside it, so that it is prepared once per connection: Django's binds on the client, and
    # the server parsed and planned the lock at every step (0.1-0.2 ms of its round trip).
    connection = connections[Chat.objects.db]
    lock_rows = asked(_LOCK_ALONE_SQL + (" SKIP LOCKED" if skip_locked else ""), [chat_id], prepare=True,
                      using=Chat.objects.db)
    # Sent before the lock's answer is read, run once the lock is held: the step's serial is the
    # locked row's. (Skipped, or not waiting, the chat's offers are read for nothing.)
    offer_rows = asked(_OFFERS_OF_LOCKED_SQL, [chat_id, _DECLINED, _OPEN, _OPEN, _OPEN], prepare=True,
                       using=Offer.objects.db)
    presence = _presence_hinted(hint, now) if hint is not None and now is not None else None
    locked = lock_rows()
    offers = _step_offers_of_rows(offer_rows()).get(chat_id, NO_OFFERS)
    if not locked:
        return None
    *values, stamp = locked[0]
    for i, (column, converters) in enumerate(_chat_converters(connection)):
        for convert in converters:  # as Django's compiler does for every value it reads
            values[i] = convert(values[i], column, connection)
    chat = Chat.from_db(Chat.objects.db, _CHAT_ATTNAMES, values)
    chat.structure_stamp = stamp  # type: ignore[attr-defined]
    return chat, offers, presence


def _presence_hinted(hint: RouteHint, now: datetime) -> PresenceAsked | None:
    """The presence and load the decision on the hinted chat will read first, asked now, from the kept
    picture of its consortium (none kept: nothing asked). A picture or plan that changed meanwhile at
    worst asks for librarians the decision does not read: it reads its own then."""
    picture = kept_structure(hint.consortium_id)
    if picture is None:
        return None
    queues = router.first_reading(plan_from_json(hint.plan), hint.step_index, hint.step_entered_at, now)
    return presence_asked(picture, now, queues)


def _chat_converters(connection: Any) -> list[tuple[Any, list[Any]]]:
    """Each column of the chat's row with what Django applies to it when it reads the row (JSON text to
    a value, and so on): made once per connection's vendor."""
    kept = _CONVERTERS.get(connection.vendor)
    if kept is None:
        kept = _CONVERTERS[connection.vendor] = [
            (column, connection.ops.get_db_converters(column) + column.get_db_converters(connection))
            for column in (field.get_col(Chat._meta.db_table) for field in Chat._meta.concrete_fields)]
    return kept


_CONVERTERS: dict[str, list[tuple[Any, list[Any]]]] = {}
_CHAT_ATTNAMES = [field.attname for field in Chat._meta.concrete_fields]


def _locked_batch(chat_ids: list[str], skip_locked: bool, consortium: Consortium, picture: Structure) -> list[Chat]:
    """A batch's chats locked in id order (as every service that holds several chats takes them, so no
    two wait on each other in a circle), with the batch's consortium (the caller's) and each home
    library from the kept structure."""
    if not _by_hand():
        return _for_routing(Chat.objects.filter(pk__in=chat_ids).order_by("pk"), skip_locked, consortium)
    found = list(Chat.objects.raw(_LOCK_BATCH_SQL + (" SKIP LOCKED" if skip_locked else ""), [chat_ids]))
    for chat in found:
        if chat.consortium_id == consortium.pk:
            chat.consortium = consortium
        if (home := picture.libraries_by_id.get(chat.home_library_id or 0)) is not None:
            chat.home_library = home  # (an inactive home library is read when needed)
    return found


# On PostgreSQL, routing's locks are statements written out, of the chat's own columns: the ORM's lock
# with its joins, compiled each time and loaded into three models a row, cost more CPU than the
# decisions (a step timeout's lock 3.1 ms of its 10 ms; a batch's 9 ms of 50 chats' routing).
_CHAT_COLUMNS = ", ".join(str(field.column) for field in Chat._meta.concrete_fields)
# A new chat's row (_chats_insert), its values in the same order (_chat_insert_values).
_CHAT_INSERT_SQL = (f"INSERT INTO {Chat._meta.db_table} ({_CHAT_COLUMNS}) "
                    f"VALUES ({', '.join(['%s'] * len(Chat._meta.concrete_fields))})")
# A chat locked alone brings the structure's stamp with it (`structure_stamp`): one round trip, not two.
_LOCK_ALONE_SQL = (f"SELECT {_CHAT_COLUMNS}, (SELECT stamp FROM {StructureVersion._meta.db_table} WHERE id = 1) "
                   f"AS structure_stamp FROM {Chat._meta.db_table} WHERE id = %s FOR UPDATE")
_LOCK_BATCH_SQL = f"SELECT {_CHAT_COLUMNS} FROM {Chat._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"


def _for_routing(chats: QuerySet[Chat], skip_locked: bool, consortium: Consortium | None = None) -> list[Chat]:
    """Chats locked for routing through the ORM (SQLite), with what routing reads of them: the
    consortium's settings and the home library (offer frames name it). Not the librarian, as
    services.common.chat_lock does: a waiting chat has none (an idle active chat ended here loads its
    librarian when it needs them). Given the batch's `consortium`, it is not read again per chat."""
    locked = chats.select_for_update(skip_locked=skip_locked, of=("self",))
    if consortium is None:
        return list(locked.select_related("consortium", "home_library"))
    found = list(locked.select_related("home_library"))
    for chat in found:
        if chat.consortium_id == consortium.pk:
            chat.consortium = consortium
    return found


def _route_one_locked(chat: Chat, now: datetime, shared: SharedSituation | None,
                      offers: StepOffers | None, writes: Writes, structure: Structure | None = None,
                      presence: PresenceAsked | None = None) -> set[int]:
    touched: set[int] = set()
    if chat.state == ChatState.QUEUED:
        if offers is None and _by_hand():  # one chat alone (a deadline): its offers as one row of arrays
            offers = _current_offers({chat.pk: chat.step_serial})[chat.pk]
        view = waiting_chat_view(chat, offers=offers)
        decision = (router.decide(view, shared.for_chat(chat)) if shared
                    else _decide(chat, view, now, structure, presence))
        touched = _apply(chat, decision, now, writes)
        if touched and shared:
            shared.stale()
    elif chat.state == ChatState.ACTIVE:
        if shared:
            shared.stale()
        # A texting patron answers at the pace of texts, with no socket to lose: sms_idle (docs/sms.md).
        idle = chat.consortium.sms_idle if chat.channel == "sms" else chat.consortium.idle_timeout
        idle_at = chat.last_activity_at + timedelta(seconds=idle)
        if now >= idle_at:
            chat_end_locked(chat, now, by="system", reason="idle")
        elif chat.deadline != idle_at:
            chat.deadline = idle_at
            chat.save(update_fields=["deadline"])
    elif chat.deadline is not None:
        chat.deadline = None
        chat.save(update_fields=["deadline"])
    return touched


def chats_route(chat_ids: list[str], now: datetime, *, shared: SharedSituation, skip_locked: bool = False) -> None:
    """chat_route for many chats, BATCH at a time: each batch locked in one statement (_locked_batch),
    its offers read in one, decided one after another (in the order given) on the shared situation,
    and written in a few."""
    if not chat_ids:
        return
    touched: set[int] = set()
    picture = structure_of(shared.consortium)  # the home libraries, once
    for first in range(0, len(chat_ids), BATCH):
        batch = chat_ids[first:first + BATCH]
        # What the batch tells (an offer frame per chat, mostly) goes out together once it has
        # committed: one trip into the event loop instead of one per chat.
        outbox: events.Outbox = []
        with events.collected(outbox), transaction.atomic():
            locked = _locked_batch(batch, skip_locked, shared.consortium, picture)
            serials = {chat.pk: chat.step_serial for chat in locked if chat.state == ChatState.QUEUED}
            offers = _current_offers(serials)
            writes = Writes()
            by_id = {chat.pk: chat for chat in locked}
            for chat_id in batch:  # in the caller's order (arrival, deadline): the order of the offers sent
                if chat_id in by_id:
                    touched |= _route_one_locked(by_id[chat_id], now, shared, offers.get(chat_id), writes)
            writes.flush()
        events.send_all(outbox)
    offers_reroute(touched, now)


def _current_offers(serials: dict[str, int]) -> dict[str, StepOffers]:
    """The offers of these chats' current steps (chat -> step serial), as waiting_chat_view takes them.

    A chat in a shared queue's step has an offer per librarian of its audience (about a hundred at
    benchmark scale): thousands of rows for a batch. On PostgreSQL the server groups them into a row
    of arrays per chat, which psycopg's C loaders read whole, and only the open offers' modes and
    expiries come back (in microseconds since the epoch: Django's timestamptz loader is Python)."""
    if not serials:
        return {}
    if not _by_hand():
        rows: dict[str, list[tuple[int, str, str, datetime | None]]] = {pk: [] for pk in serials}
        for chat_id, serial, librarian_id, status, mode, expires in (
                Offer.objects.filter(chat_id__in=list(serials))
                .values_list("chat_id", "step_serial", "librarian_id", "status", "mode", "expires_at")):
            if serial == serials[chat_id] or status == _OPEN:  # (open: the current step's, whatever its serial)
                rows[chat_id].append((librarian_id, status, mode, expires))
        return {chat_id: StepOffers.of_rows(found) for chat_id, found in rows.items()}
    ids = list(serials)
    return {**dict.fromkeys(serials, NO_OFFERS), **_step_offers_of_rows(_by_server(
        _OFFERS_OF_STEPS_SQL, [ids, [serials[pk] for pk in ids], _DECLINED, _OPEN, _OPEN, _OPEN], rows=True))}


def _step_offers_of_rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, StepOffers]:
    """The rows of _OFFERS_OF_STEPS_SQL (or _OFFERS_OF_LOCKED_SQL) as each chat's StepOffers; a chat
    with no offers in its step has no row."""
    found: dict[str, StepOffers] = {}
    for chat_id, offered, declined, open_ids, open_modes, open_expiries in rows:
        if set(open_modes) <= _BROADCAST_MODE and not any(open_expiries):
            open_offers = tuple(map(_BROADCAST_OFFERS.__getitem__, open_ids))
        else:  # a direct offer, one at a time, with its countdown
            open_offers = tuple(router.OpenOffer(librarian, mode, None if expires is None else EPOCH + timedelta(
                microseconds=expires)) for librarian, mode, expires in zip(open_ids, open_modes, open_expiries,
                                                                           strict=True))
        found[chat_id] = StepOffers(open=open_offers, offered=frozenset(offered), declined=frozenset(declined))
    return found


class _BroadcastOffers(dict[int, router.OpenOffer]):
    """An open broadcast offer is the same value for every chat (librarian, broadcast, no expiry): one
    per librarian, made once per process. A shared queue's chats hold about a hundred each, and
    making them afresh for each chat was a sixth of re-routing them."""

    def __missing__(self, librarian: int) -> router.OpenOffer:
        offer = self[librarian] = router.OpenOffer(librarian, router.BROADCAST, None)
        return offer


_BROADCAST_OFFERS = _BroadcastOffers()
_BROADCAST_MODE = frozenset({router.BROADCAST})
_OPEN = Offer.Status.OPEN.value
_DECLINED = [Offer.Status.DECLINED.value, Offer.Status.EXPIRED.value]
# A chat's offers of its current step: made or closed in it, or still open (selectors.current_step_offers).
# Each chat's offers aggregated on their own (LATERAL), not joined and then grouped: grouping sorted
# the batch's ~5,000 rows by chat id (text), and each ordered aggregate sorted its chat's rows again;
# a third of the statement's time. The three open-offer arrays stay aligned without an ORDER BY:
# PostgreSQL feeds every aggregate of a group the same rows in the same order, and their filters are
# the same.
_OFFER_AGGREGATES = (
    " CROSS JOIN LATERAL ("
    "SELECT array_agg(o.librarian_id), "
    "coalesce(array_agg(o.librarian_id) FILTER (WHERE o.status = ANY(%s::text[])), '{}'), "
    "coalesce(array_agg(o.librarian_id) FILTER (WHERE o.status = %s), '{}'), "
    "coalesce(array_agg(o.mode) FILTER (WHERE o.status = %s), '{}'), "
    "coalesce(array_agg((extract(epoch FROM o.expires_at) * 1000000)::int8) FILTER (WHERE o.status = %s), '{}') "
    f"FROM {Offer._meta.db_table} o WHERE o.chat_id = s.chat_id "
    f"AND (o.step_serial = s.serial OR o.status = '{Offer.Status.OPEN.value}') "
    "HAVING count(*) > 0) AS a")
_OFFERS_OF_STEPS_SQL = ("SELECT s.chat_id, a.* FROM unnest(%s::text[], %s::integer[]) AS s(chat_id, serial)"
                        + _OFFER_AGGREGATES)
# A chat's offers of its current step, its serial read from its row (chat_route's lock, queued just
# before: the row is locked when this runs).
_OFFERS_OF_LOCKED_SQL = (f"SELECT s.chat_id, a.* FROM (SELECT id, step_serial FROM {Chat._meta.db_table} "
                         "WHERE id = %s) AS s(chat_id, serial)" + _OFFER_AGGREGATES)


def offers_reroute(librarian_ids: Iterable[int], now: datetime) -> set[str]:
    """Chats with open offers to these librarians: a librarian who went away or filled up is replaced.
    Returns the chats routed."""
    ids = list(librarian_ids)
    if not ids:
        return set()
    rows = dict(Offer.objects.filter(librarian_id__in=ids, status=Offer.Status.OPEN)
                .values_list("chat_id", "chat__plan"))
    if not rows:
        return set()
    consortium = Consortium.objects.get(chats__pk=next(iter(rows)))
    shared = SharedSituation(consortium, now, queues_of_plans(rows.values()))
    chats_route(sorted(rows), now, shared=shared)
    return set(rows)


def waiting_chats_route(consortium: Consortium, now: datetime, queues: set[str] | None = None,
                        routed: Collection[str] = ()) -> None:
    """Route every waiting chat of a consortium (whose audience meets `queues`, if given), but those
    in `routed`: routed a moment ago at the same instant `now`, which routing again would not change
    (the router's property: deciding again at the same instant changes nothing).

    Called when someone may have become eligible: a librarian available or freed, a connection back.
    """
    rows = Chat.objects.filter(consortium=consortium, state=ChatState.QUEUED).order_by("arrived_at")
    if queues is not None:
        rows = waiting_for(rows, queues)
    chosen: list[tuple[str, list[Any]]] = []
    for chat_id, plan, step_index in rows.values_list("pk", "plan", "step_index"):
        if chat_id in routed:
            continue
        if queues is not None:
            reach = set(router.audience(plan_from_json(plan), max(step_index, 0)))
            if not reach & queues:
                continue
        chosen.append((chat_id, plan))
    if not chosen:
        return
    shared = SharedSituation(consortium, now, queues_of_plans(plan for _, plan in chosen))
    chats_route([chat_id for chat_id, _plan in chosen], now, shared=shared)


def librarian_presence_changed(librarian: StaffProfile, status: str, now: datetime) -> None:
    """After commit of a presence change: available, waiting chats may now be offered; away, a step
    this librarian alone made answerable must move on now, not at its deadline (busy is not absent;
    away is)."""
    routed: set[str] = set()
    if status == LibrarianPresence.Status.AWAY:
        # The chats offered to them, then the other waiting chats of their queues (a chat they
        # declined in a step only they staffed): each chat once.
        routed = offers_reroute([librarian.pk], now)
    waiting_chats_route(librarian.consortium, now, set(librarian_queues(librarian)), routed)
