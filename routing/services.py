"""Routing services: every write that a patron or librarian must hear about happens here.

Each public function runs its writes in one transaction, with rows locked in a fixed order
(a librarian's presence before any chat; one chat at a time), publishes events only after commit
(routing.events), and then routes the chats its change affects, each in a transaction of its own.
The decisions themselves are made by routing.router; this module loads, applies and records them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q

from consortium.models import Consortium
from libraries import duty
from libraries.models import Library, Queue, StaffProfile
from libraries.rota import rota_queues_of
from routing import events, frames, message_store, router
from routing.access import token_hash
from routing.models import (
    Chat,
    ChatState,
    Connection,
    LibrarianPresence,
    Message,
    Offer,
    ServerProcess,
    Ticket,
    TraceEvent,
)
from routing.plan import default_plan, plan_from_json, plan_to_json, transfer_plan
from routing.selectors import (
    mentioning,
    plan_json_queues,
    plan_queues,
    queue_position,
    situation_for,
    typical_wait_seconds,
    waiting_chat_view,
)

# A web process that has not heart-beaten for this long is dead: its sockets count as closed.
PROCESS_DEAD_AFTER = timedelta(seconds=20)
LIVE_STATES = (ChatState.QUEUED, ChatState.ACTIVE)


class ServiceError(Exception):
    """A refused action, with the protocol's machine-readable reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


# --- small shared pieces ------------------------------------------------------------------------


def trace(chat: Chat, kind: str, at: datetime, **data: object) -> None:
    TraceEvent.objects.create(chat=chat, at=at, kind=kind, data=data)
    if kind in LOGGED_KINDS:
        _log_decision(chat, kind, data)


def _system_message(chat: Chat, body: str, now: datetime, *, internal: bool = False) -> Message:
    chat.last_seq += 1
    message = Message.objects.create(chat=chat, seq=chat.last_seq, sender=Message.Sender.SYSTEM, body=body,
                                     at=now, internal=internal)
    chat.save(update_fields=["last_seq"])
    events.to_chat(chat.pk, frames.message_frame(message), seq=message.seq)
    return message


def _publish_state(chat: Chat) -> None:
    position = estimated = None
    if chat.state == ChatState.QUEUED:
        position = queue_position(chat)
        estimated = position * typical_wait_seconds(chat.consortium)
    events.to_chat(chat.pk, frames.state_frame(chat, position=position, estimated_wait=estimated))


def _lock_chat(chat_id: str, *, skip_locked: bool = False) -> Chat | None:
    return (
        Chat.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("consortium", "home_library", "librarian__library", "librarian__user")
        .filter(pk=chat_id)
        .first()
    )


def _presence(librarian: StaffProfile, *, lock: bool = True) -> LibrarianPresence:
    presence, _ = LibrarianPresence.objects.get_or_create(librarian=librarian)
    if lock:
        presence = LibrarianPresence.objects.select_for_update().get(pk=presence.pk)
    return presence


# --- resolving the home library and starting a chat --------------------------------------------


def home_library_resolve(consortium: Consortium, library_slug: str | None,
                         zip_code: str | None) -> tuple[Library | None, str]:
    """The library named by the widget or ask page; else the one whose service area holds the ZIP."""
    if library_slug:
        library = Library.objects.filter(consortium=consortium, slug=library_slug, is_active=True).first()
        if library is None:
            raise ServiceError("not_found", f"no library {library_slug!r} in this consortium")
        return library, "library"
    if zip_code:
        code = zip_code.strip()[:5]
        for library in Library.objects.filter(consortium=consortium, is_active=True).order_by("pk"):
            if code in (library.zip_codes or []):
                return library, "zip"
    return None, "none"


def chat_start(*, consortium: Consortium, question: str, library_slug: str | None = None,
               zip_code: str | None = None, name: str = "", email: str = "", language: str = "",
               ip: str | None = None, now: datetime) -> tuple[Chat, str]:
    home, found_by = home_library_resolve(consortium, library_slug, zip_code)
    token = secrets.token_urlsafe(24)
    plan = default_plan(home, consortium)
    with transaction.atomic():
        chat = Chat.objects.create(
            consortium=consortium, home_library=home, home_found_by=found_by, question=question,
            language=language, patron_name=name, patron_email=email, patron_ip=ip,
            token_hash=token_hash(token), created_at=now, arrived_at=now, last_activity_at=now,
            plan=plan_to_json(plan), last_seq=1,
        )
        Message.objects.create(chat=chat, seq=1, sender=Message.Sender.PATRON, name=name, body=question, at=now)
        trace(chat, "created", now, home_library=home.slug if home else None, found_by=found_by,
              language=language or None)
        if not plan:
            chat.state = ChatState.UNSTAFFED
            chat.save(update_fields=["state"])
            trace(chat, "unstaffed", now, reason="the consortium has no queue for this chat")
        else:
            _route(chat, now)
    return chat, token


# --- routing --------------------------------------------------------------------------------------


def _route(chat: Chat, now: datetime, situation: router.Situation | None = None) -> set[int]:
    """Decide and apply for a locked queued chat. Returns librarians whose other offers need a look."""
    situation = situation or situation_for(chat.consortium, now, plan_queues(chat))
    decision = router.decide(waiting_chat_view(chat), situation)
    return _apply(chat, decision, now)


class _SharedSituation:
    """One situation for many chats routed one after another at the same instant `now`.

    Routing one chat writes only that chat, its offers and its trace: nothing a situation holds
    (hours, presence, active chats, profiles). So the chats a presence change re-routes can share
    one read of the world instead of one each, which made a librarian on a shared queue cost a full
    situation per waiting chat. It is read again when routing did change the world (a direct offer
    expired: that librarian goes away; a chat found active may have ended and freed its librarian),
    and after MAX_AGE, so what another process changes meanwhile is seen as soon as it would have
    been with a read per chat, give or take that much.
    """

    MAX_AGE = 0.2  # seconds of wall-clock time

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


def _queues_of_plans(plans: Iterable[list[Any]]) -> set[str] | None:
    union: set[str] = set()
    for plan in plans:
        queues = plan_json_queues(plan)
        if queues is None:
            return None
        union |= queues
    return union


def _apply(chat: Chat, decision: router.Decision, now: datetime) -> set[int]:
    touched: set[int] = set()
    plan = plan_from_json(chat.plan)
    # What trace() does for each note, in one INSERT: a broadcast writes an "offered" line per
    # librarian of the audience. Ids, hence the trace's order, follow the list.
    TraceEvent.objects.bulk_create([TraceEvent(chat=chat, at=now, kind=note.kind, data=dict(note.data))
                                    for note in decision.notes])
    for note in decision.notes:
        if note.kind in LOGGED_KINDS:
            _log_decision(chat, note.kind, dict(note.data))

    for librarian_id in decision.expired:
        Offer.objects.filter(chat=chat, librarian_id=librarian_id, status=Offer.Status.OPEN).update(
            status=Offer.Status.EXPIRED, closed_at=now, reason="expired")
        events.to_librarian(librarian_id, frames.withdrawn_frame(chat.pk, "expired"))
        # After commit: the presence row is locked only outside a chat's lock (presence before chat).
        transaction.on_commit(partial(_set_away, librarian_id, "offer_expired", now))
        touched.add(librarian_id)
    for librarian_id, reason in decision.withdraw.items():
        Offer.objects.filter(chat=chat, librarian_id=librarian_id, status=Offer.Status.OPEN).update(
            status=Offer.Status.WITHDRAWN, closed_at=now, reason=reason)
        events.to_librarian(librarian_id, frames.withdrawn_frame(chat.pk, reason))

    fields = ["step_index", "step_entered_at", "max_wait_passed", "deadline", "state", "step_serial", "version"]
    publish_state = decision.max_wait_passed and not chat.max_wait_passed
    if decision.step_changed:
        chat.step_serial += 1
        # Offers still open follow the chat into its new step (cumulative audience): no churn for
        # the librarians who already see it.
        Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).update(
            step_serial=chat.step_serial, step=plan[decision.step_index].name)
        publish_state = True
    chat.step_index = decision.step_index
    chat.step_entered_at = decision.step_entered_at
    chat.max_wait_passed = decision.max_wait_passed
    chat.deadline = decision.deadline
    chat.version += 1

    if decision.state in (ChatState.UNSTAFFED, ChatState.ABANDONED):
        chat.state = decision.state
        chat.deadline = None
        chat.ended_at = now if decision.state == ChatState.ABANDONED else None
        chat.save(update_fields=[*fields, "ended_at"])
        _publish_state(chat)
        return touched

    step = plan[chat.step_index]
    if decision.offers:
        # One row per (chat, librarian, step) by constraint. A broadcast offer withdrawn because the
        # librarian went away or filled up is offered again when they are eligible again in the same
        # step (ROUTING.md: every eligible librarian is offered), so reopen that row: a plain insert
        # raised IntegrityError out of presence_set / chat_end. Declined and expired rows never get
        # here (the router leaves those librarians out for the rest of the step). One upsert for
        # all of them: a broadcast to a whole shared queue is one statement, not two per librarian.
        made = [Offer(chat=chat, librarian_id=new.librarian, step_serial=chat.step_serial, step=step.name,
                      queue=new.queue, mode=new.mode, created_at=now, expires_at=new.expires_at,
                      status=Offer.Status.OPEN, closed_at=None, reason="")
                for new in decision.offers]
        Offer.objects.bulk_create(made, update_conflicts=True, unique_fields=["chat", "librarian", "step_serial"],
                                  update_fields=["step", "queue", "mode", "created_at", "expires_at", "status",
                                                 "closed_at", "reason"])
        events.to_librarians([(offer.librarian_id, frames.offer_frame(offer, chat)) for offer in made])
    chat.save(update_fields=fields)
    if publish_state:
        _publish_state(chat)
    return touched


def chat_route(chat_id: str, now: datetime, *, skip_locked: bool = False,
               shared: _SharedSituation | None = None) -> None:
    """Look at one chat again (its deadline passed, or something it depends on changed)."""
    touched: set[int] = set()
    with transaction.atomic():
        chat = _lock_chat(chat_id, skip_locked=skip_locked)
        if chat is None:
            return
        if chat.state == ChatState.QUEUED:
            touched = _route(chat, now, shared.for_chat(chat) if shared else None)
            if touched and shared:
                shared.stale()
        elif chat.state == ChatState.ACTIVE:
            if shared:
                shared.stale()
            idle_at = chat.last_activity_at + timedelta(seconds=chat.consortium.idle_timeout)
            if now >= idle_at:
                _end(chat, now, by="system", reason="idle")
            elif chat.deadline != idle_at:
                chat.deadline = idle_at
                chat.save(update_fields=["deadline"])
        elif chat.deadline is not None:
            chat.deadline = None
            chat.save(update_fields=["deadline"])
    _reroute_offers_of(touched, now)


def _reroute_offers_of(librarian_ids: Iterable[int], now: datetime) -> None:
    """Chats with open offers to these librarians: a librarian who went away or filled up is replaced."""
    ids = list(librarian_ids)
    if not ids:
        return
    rows = dict(Offer.objects.filter(librarian_id__in=ids, status=Offer.Status.OPEN)
                .values_list("chat_id", "chat__plan"))
    if not rows:
        return
    consortium = Consortium.objects.get(chats__pk=next(iter(rows)))
    shared = _SharedSituation(consortium, now, _queues_of_plans(rows.values()))
    for chat_id in sorted(rows):
        chat_route(chat_id, now, shared=shared)


def waiting_chats_route(consortium: Consortium, now: datetime, queues: set[str] | None = None) -> None:
    """Route every waiting chat of a consortium (whose audience meets `queues`, if given).

    Called when someone may have become eligible: a librarian available or freed, a connection back.
    """
    rows = Chat.objects.filter(consortium=consortium, state=ChatState.QUEUED).order_by("arrived_at")
    if queues is not None:
        rows = mentioning(rows, queues)
    chosen: list[tuple[str, list[Any]]] = []
    for chat_id, plan, step_index in rows.values_list("pk", "plan", "step_index"):
        if queues is not None:
            reach = set(router.audience(plan_from_json(plan), max(step_index, 0)))
            if not reach & queues:
                continue
        chosen.append((chat_id, plan))
    if not chosen:
        return
    shared = _SharedSituation(consortium, now, _queues_of_plans(plan for _, plan in chosen))
    for chat_id, _plan in chosen:
        chat_route(chat_id, now, shared=shared)


def _librarian_queues(librarian: StaffProfile) -> set[str]:
    # With the rota-driven queues they have shifts on: on shift, they serve those too (libraries.rota).
    return {librarian.library.slug, *librarian.queues.values_list("slug", flat=True), *rota_queues_of(librarian)}


# --- presence -------------------------------------------------------------------------------------


def _set_away(librarian_id: int, reason: str, now: datetime) -> None:
    LibrarianPresence.objects.filter(pk=librarian_id).update(
        status=LibrarianPresence.Status.AWAY, away_reason=reason, changed_at=now,
        shift_end=None, shift_warned=False, shift_due=None, stay_until=None)
    events.to_librarian(librarian_id, {"type": "presence", "status": "away", "reason": reason})


def presence_set(librarian: StaffProfile, status: str, now: datetime, *, reason: str = "") -> str:
    if status not in LibrarianPresence.Status.values:
        raise ServiceError("invalid", "status must be available or away")
    with transaction.atomic():
        presence = _presence(librarian)
        changed = presence.status != status
        presence.status = status
        presence.away_reason = reason if status == "away" else ""
        presence.changed_at = now
        if presence.idle_since is None:
            presence.idle_since = now
        if status == LibrarianPresence.Status.AWAY:
            _shift_clear(presence)
        elif changed:
            _shift_schedule(presence, librarian, now, starting=True)
        presence.save()
    if changed:
        _presence_changed(librarian, status, now)
    return status


def _presence_changed(librarian: StaffProfile, status: str, now: datetime) -> None:
    """After commit of a presence change: available, waiting chats may now be offered; away, a step
    this librarian alone made answerable must move on now, not at its deadline (busy is not absent;
    away is)."""
    if status == LibrarianPresence.Status.AWAY:
        _reroute_offers_of([librarian.pk], now)
    waiting_chats_route(librarian.consortium, now, _librarian_queues(librarian))


@dataclass
class StaffState:
    presence: str
    chats: list[Chat]
    offers: list[Offer]
    shift: dict[str, Any]  # the shift or shift_ending frame in force


def staff_connected(librarian: StaffProfile, channel_name: str, process_id: str, now: datetime) -> StaffState:
    with transaction.atomic():
        presence = _presence(librarian)
        in_grace = presence.online and (presence.grace_until is None or presence.grace_until > now)
        if not in_grace:
            # A first connection starts away: nobody is offered chats until they say they are there.
            presence.status = LibrarianPresence.Status.AWAY
            _shift_clear(presence)
        presence.online = True
        presence.grace_until = None
        presence.save()
        Connection.objects.update_or_create(
            channel_name=channel_name,
            defaults={"kind": Connection.Kind.STAFF, "process_id": process_id, "librarian": librarian,
                      "opened_at": now},
        )
    chats = list(Chat.objects.filter(librarian=librarian, state=ChatState.ACTIVE)
                 .select_related("home_library").order_by("accepted_at"))
    offers = list(Offer.objects.filter(librarian=librarian, status=Offer.Status.OPEN)
                  .select_related("chat__home_library").order_by("chat__arrived_at"))
    return StaffState(presence=presence.status, chats=chats, offers=offers,
                      shift=_shift_frame(presence, librarian.consortium))


def staff_disconnected(channel_name: str, now: datetime) -> None:
    with transaction.atomic():
        connection = Connection.objects.filter(channel_name=channel_name).select_related("librarian").first()
        if connection is None or connection.librarian is None:
            return
        librarian = connection.librarian
        presence = _presence(librarian)
        connection.delete()
        if not Connection.objects.filter(librarian=librarian).exists():
            presence.grace_until = now + timedelta(seconds=librarian.consortium.reconnect_grace)
            presence.save(update_fields=["grace_until"])


def librarian_lost(librarian_id: int, now: datetime) -> bool:
    """The reconnect grace ran out: offline, offers withdrawn, active chats back to routing."""
    requeued: list[str] = []
    with transaction.atomic():
        presence = (LibrarianPresence.objects.select_for_update(skip_locked=True)
                    .filter(pk=librarian_id, grace_until__lte=now).first())
        if presence is None:
            return False
        librarian = StaffProfile.objects.select_related("library__consortium").get(pk=librarian_id)
        if Connection.objects.filter(librarian=librarian).exists():
            presence.grace_until = None
            presence.save(update_fields=["grace_until"])
            return False
        presence.online = False
        presence.grace_until = None
        presence.changed_at = now
        _shift_clear(presence)
        presence.save()
        for chat_id in Chat.objects.filter(librarian=librarian, state=ChatState.ACTIVE).order_by("pk") \
                .values_list("pk", flat=True):
            chat = _lock_chat(chat_id)
            if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
                continue
            _requeue(chat, now, reason="librarian_lost")
            requeued.append(chat.pk)
    _reroute_offers_of([librarian_id], now)
    for chat_id in requeued:
        chat_route(chat_id, now)
    waiting_chats_route(librarian.consortium, now, _librarian_queues(librarian))
    return True


def _requeue(chat: Chat, now: datetime, *, reason: str) -> None:
    """Back to routing at the step it was accepted in, keeping its arrival time."""
    old = chat.librarian
    chat.state = ChatState.QUEUED
    chat.librarian = None
    chat.step_index = chat.accepted_step_index if chat.accepted_step_index is not None else 0
    chat.step_serial += 1
    chat.step_entered_at = now
    chat.deadline = now
    chat.version += 1
    chat.save()
    trace(chat, "requeued", now, reason=reason, librarian=old.pk if old else None)
    if old is not None:
        events.to_librarian(old.pk, {"type": "unassigned", "chat": chat.pk, "reason": reason}, leave_chat=chat.pk)
    _system_message(chat, "Your librarian was disconnected. We are finding you another librarian; "
                          "please stay here.", now)
    _publish_state(chat)


def patron_connected(chat: Chat, channel_name: str, process_id: str, now: datetime) -> None:
    with transaction.atomic():
        locked = _lock_chat(chat.pk)
        if locked is None:
            return
        Connection.objects.update_or_create(
            channel_name=channel_name,
            defaults={"kind": Connection.Kind.PATRON, "process_id": process_id, "chat": locked, "opened_at": now},
        )
        was_gone = locked.patron_left_at is not None
        locked.patron_joined = True
        locked.patron_left_at = None
        locked.save(update_fields=["patron_joined", "patron_left_at"])
        if locked.state == ChatState.QUEUED:
            _route(locked, now)
        elif locked.state == ChatState.ACTIVE and was_gone and locked.librarian_id:
            events.to_librarian(locked.librarian_id, {"type": "patron_presence", "chat": locked.pk, "present": True})


def patron_disconnected(channel_name: str, now: datetime) -> None:
    with transaction.atomic():
        connection = Connection.objects.filter(channel_name=channel_name).first()
        if connection is None or connection.chat_id is None:
            return
        chat = _lock_chat(connection.chat_id)
        connection.delete()
        if chat is None or Connection.objects.filter(chat=chat, kind=Connection.Kind.PATRON).exists():
            return
        chat.patron_left_at = now
        chat.save(update_fields=["patron_left_at"])
        if chat.state == ChatState.QUEUED:
            _route(chat, now)
        elif chat.state == ChatState.ACTIVE and chat.librarian_id:
            events.to_librarian(chat.librarian_id, {"type": "patron_presence", "chat": chat.pk, "present": False})


# --- the end of a shift ---------------------------------------------------------------------------
# An available librarian is set away at the end of the stretch of duty they are in (libraries/duty.py),
# warned the consortium's shift_warning before. The end the console was told is kept on the presence
# row with the next instant the timer must look at it (shift_due: the warning, then the end), so a
# console on a sleeping laptop stops being available all the same; the timer fires it like any other
# deadline (SKIP LOCKED, decided again from the stored state, so it fires once). The end never comes
# earlier than the console was told; it moves later when the librarian stays on or the rota
# lengthens their stretch, both of which are read again each time the timer looks.

_SHIFT_FIELDS = ["shift_end", "shift_warned", "shift_due", "stay_until"]


def _shift_clear(presence: LibrarianPresence) -> None:
    presence.shift_end = None
    presence.shift_warned = False
    presence.shift_due = None
    presence.stay_until = None


def _shift_frame(presence: LibrarianPresence, consortium: Consortium) -> dict[str, Any]:
    return frames.shift_frame(presence.shift_end, warned=presence.shift_warned,
                              extend_by=consortium.shift_extension)


def _shift_schedule(presence: LibrarianPresence, librarian: StaffProfile, now: datetime, *,
                    starting: bool) -> str:
    """Set an available librarian's shift end, warning and due instant at `now` (not saved).

    Returns "away" when the end has come, "changed" when the console must be told, else "".
    """
    consortium = librarian.consortium
    before = (presence.shift_end, presence.shift_warned)
    spans = duty.duty_spans(librarian, now, now + duty.HORIZON)
    if starting:
        _shift_clear(presence)
        if not duty.has_schedule(librarian):
            return ""  # nothing is known of when they work: only the console's idle away applies
        if not duty.stretch_at(spans, now).on:
            # Available outside their duty (early, late, a day off): that is staying on, for a while.
            presence.stay_until = now + timedelta(seconds=consortium.shift_extension)
    if presence.stay_until is not None and presence.stay_until > now:
        spans.append((now, presence.stay_until))
    found = duty.stretch_at(spans, now)
    if found.on and found.ends_at is None:
        _shift_clear(presence)  # a stretch with no end in sight is not a shift
        return "changed" if before != (None, False) else ""
    end = presence.shift_end
    if found.ends_at is not None and (end is None or found.ends_at > end):
        end = found.ends_at
    if end is None or end <= now:
        return "away"
    presence.shift_end = end
    presence.shift_warned = end - timedelta(seconds=consortium.shift_warning) <= now
    presence.shift_due = end if presence.shift_warned else end - timedelta(seconds=consortium.shift_warning)
    return "changed" if (presence.shift_end, presence.shift_warned) != before else ""


def shift_state(librarian: StaffProfile) -> dict[str, Any]:
    """The shift or shift_ending frame in force for this librarian (what hello carries)."""
    return _shift_frame(_presence(librarian, lock=False), librarian.consortium)


def shift_stay_on(librarian: StaffProfile, now: datetime, *, seconds: int | None = None) -> dict[str, Any]:
    """"I'm staying on": available until at least `seconds` (default shift_extension) from now."""
    consortium = librarian.consortium
    with transaction.atomic():
        presence = _presence(librarian)
        if presence.status != LibrarianPresence.Status.AVAILABLE:
            raise ServiceError("invalid", "you are away: there is no end of shift to stay on past")
        if presence.shift_end is None:
            raise ServiceError("invalid", "no end of shift is scheduled for you: nothing to stay on past")
        until = now + timedelta(seconds=seconds or consortium.shift_extension)
        presence.stay_until = max(until, presence.stay_until or until)
        _shift_schedule(presence, librarian, now, starting=False)
        presence.save(update_fields=_SHIFT_FIELDS)
        frame = _shift_frame(presence, consortium)
        events.to_librarian(librarian.pk, frame)  # every console of theirs hears it
    return frame


def librarian_shift_due(librarian_id: int, now: datetime) -> bool:
    """The timer: warn an available librarian that their shift is ending, or set them away at its end."""
    away = None
    with transaction.atomic():
        presence = (LibrarianPresence.objects.select_for_update(skip_locked=True)
                    .filter(pk=librarian_id, shift_due__lte=now).first())
        if presence is None:
            return False  # another timer holds it, or it was handled meanwhile
        if presence.status != LibrarianPresence.Status.AVAILABLE or not presence.online:
            _shift_clear(presence)
            presence.save(update_fields=_SHIFT_FIELDS)
            return True
        librarian = StaffProfile.objects.select_related("library__consortium", "user").get(pk=librarian_id)
        outcome = _shift_schedule(presence, librarian, now, starting=False)
        if outcome == "away":
            ended = presence.shift_end or now
            presence.status = LibrarianPresence.Status.AWAY
            presence.away_reason = "shift_end"
            presence.changed_at = now
            _shift_clear(presence)
            presence.save()
            # Chats they hold stay with them: going away never drops a chat.
            events.to_librarian(librarian_id, {"type": "presence", "status": "away", "reason": "shift_end",
                                               "ends_at": ended.isoformat()})
            away = librarian
        else:
            presence.save(update_fields=_SHIFT_FIELDS)
            if outcome == "changed":
                events.to_librarian(librarian_id, _shift_frame(presence, librarian.consortium))
    if away is not None:
        _presence_changed(away, LibrarianPresence.Status.AWAY, now)
    return True


# --- offers: accept and decline --------------------------------------------------------------------


def chat_accept(librarian: StaffProfile, chat_id: str, now: datetime) -> Chat:
    """Exactly one librarian wins a chat, however many accept at once on however many processes."""
    with transaction.atomic():
        presence = _presence(librarian)  # serializes this librarian's accepts: capacity holds
        chat = _lock_chat(chat_id)
        if chat is None or chat.consortium_id != librarian.library.consortium_id:
            raise ServiceError("not_offered", "that chat was not offered to you")
        if chat.state == ChatState.ACTIVE:
            raise ServiceError("taken", "another librarian accepted this chat")
        if chat.state != ChatState.QUEUED:
            raise ServiceError("ended", "this chat is over")
        offer = Offer.objects.filter(chat=chat, librarian=librarian, step_serial=chat.step_serial,
                                     status=Offer.Status.OPEN).first()
        if offer is None:
            raise ServiceError("not_offered", "that chat is not offered to you now")
        active = Chat.objects.filter(librarian=librarian, state=ChatState.ACTIVE).count()
        capacity = librarian.capacity if librarian.capacity is not None else chat.consortium.librarian_capacity
        if active >= capacity:
            raise ServiceError("at_capacity", f"you already have {active} chats (your limit is {capacity})")
        plan = plan_from_json(chat.plan)
        chat.state = ChatState.ACTIVE
        chat.librarian = librarian
        chat.accepted_at = now
        chat.accepted_step_index = chat.step_index
        chat.answered_step = plan[chat.step_index].name if 0 <= chat.step_index < len(plan) else ""
        if chat.answered_by_id is None:
            chat.answered_by = librarian
            chat.first_accepted_at = now
        chat.deadline = now + timedelta(seconds=chat.consortium.idle_timeout)
        chat.last_activity_at = now
        chat.version += 1
        chat.save()
        offer.status = Offer.Status.ACCEPTED
        offer.closed_at = now
        offer.save(update_fields=["status", "closed_at"])
        events.to_librarians([(other, frames.withdrawn_frame(chat.pk, "accepted")) for other in Offer.objects.filter(
            chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True)])
        Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).update(
            status=Offer.Status.WITHDRAWN, closed_at=now, reason="accepted")
        presence.idle_since = now
        presence.save(update_fields=["idle_since"])
        trace(chat, "accepted", now, librarian=librarian.pk, username=librarian.user.username,
              library=librarian.library.slug, step=chat.answered_step, queue=offer.queue,
              waited=int((now - chat.arrived_at).total_seconds()))
        events.to_librarian(librarian.pk, frames.assigned_frame(chat), join_chat=chat.pk)
        who = f"{librarian.display_name}, {librarian.library.name}"
        _system_message(chat, f"{who} joined the chat.", now)
        _publish_state(chat)
        full = active + 1 >= capacity
    if full:
        _reroute_offers_of([librarian.pk], now)
    return chat


def chat_decline(librarian: StaffProfile, chat_id: str, now: datetime) -> None:
    with transaction.atomic():
        chat = _lock_chat(chat_id)
        if chat is None:
            raise ServiceError("not_found", "no such chat")
        updated = Offer.objects.filter(chat=chat, librarian=librarian, status=Offer.Status.OPEN).update(
            status=Offer.Status.DECLINED, closed_at=now, reason="declined")
        if not updated:
            raise ServiceError("not_offered", "that chat is not offered to you")
        trace(chat, "declined", now, librarian=librarian.pk, username=librarian.user.username)
        events.to_librarian(librarian.pk, frames.withdrawn_frame(chat.pk, "declined"))
        if chat.state == ChatState.QUEUED:
            _route(chat, now)


# --- the conversation ----------------------------------------------------------------------------


def message_post(chat_id: str, *, sender: str, body: str, client_id: str | None, now: datetime,
                 librarian: StaffProfile | None = None, internal: bool = False,
                 file_id: str | None = None) -> tuple[Message, bool]:
    """Store a message (its seq allocated under the chat's lock), then tell everyone. Idempotent by client_id:
    (the message, True) when stored now, (the message stored earlier, False) for a client_id seen before."""
    name = librarian.display_name if librarian else None
    stored = message_store.store(chat_id, sender=sender, body=body, client_id=client_id, at=now,
                                 librarian_id=librarian.pk if librarian else None, name=name, internal=internal,
                                 file_id=file_id)
    if stored is None:
        raise ServiceError("not_found", "no such chat")
    if stored.duplicate_of is not None:
        return Message.objects.get(pk=stored.duplicate_of), False
    if stored.message_id is None or stored.seq is None:
        if sender == Message.Sender.LIBRARIAN and (librarian is None or stored.librarian_id != librarian.pk):
            raise ServiceError("forbidden", "only the chat's librarian may send")
        raise ServiceError("ended", "this chat is over")
    message = Message(pk=stored.message_id, chat_id=chat_id, seq=stored.seq, sender=sender, librarian=librarian,
                      name=stored.patron_name if name is None else name, body=body, client_id=client_id or None,
                      at=now, internal=internal, file_id=file_id)
    # Announced after the commit: on its own the statement has committed already; inside a caller's
    # transaction, on_commit waits for that one.
    events.to_chat(chat_id, frames.message_frame(message), seq=stored.seq, internal=internal)
    return message, True


def _end(chat: Chat, now: datetime, *, by: str, reason: str) -> None:
    previous = chat.librarian_id
    events.to_librarians([(librarian_id, frames.withdrawn_frame(chat.pk, "ended")) for librarian_id in Offer.objects
                          .filter(chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True)])
    Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).update(
        status=Offer.Status.WITHDRAWN, closed_at=now, reason="ended")
    chat.state = ChatState.ENDED
    chat.ended_at = now
    chat.end_reason = reason
    chat.deadline = None
    chat.version += 1
    chat.save()
    trace(chat, "ended", now, by=by, reason=reason)
    text = {"idle": "The chat ended after a long silence.", "patron": "The patron ended the chat.",
            "librarian": "The librarian ended the chat."}.get(reason, "The chat has ended.")
    _system_message(chat, text, now)
    _publish_state(chat)
    if previous is not None:
        LibrarianPresence.objects.filter(pk=previous).update(idle_since=now)
        events.to_librarian(previous, {"type": "unassigned", "chat": chat.pk, "reason": "ended"}, leave_chat=chat.pk)


def chat_end(chat_id: str, now: datetime, *, by: str, librarian: StaffProfile | None = None) -> Chat:
    with transaction.atomic():
        chat = _lock_chat(chat_id)
        if chat is None:
            raise ServiceError("not_found", "no such chat")
        if librarian is not None and chat.librarian_id != librarian.pk:
            raise ServiceError("forbidden", "you do not hold this chat")
        if chat.state in LIVE_STATES:
            _end(chat, now, by=by, reason=by)
            freed = chat.librarian_id
        else:
            freed = None
    if freed is not None or librarian is not None:
        holder = librarian or (StaffProfile.objects.filter(pk=freed).first() if freed else None)
        if holder is not None:
            waiting_chats_route(holder.consortium, now, _librarian_queues(holder))
    return chat


def chat_transfer(librarian: StaffProfile, chat_id: str, now: datetime, *, queue: str | None = None,
                  to_librarian: str | None = None, note: str = "") -> Chat:
    """Move an active chat to a queue or a present librarian; refused whole, or done whole."""
    with transaction.atomic():
        chat = _lock_chat(chat_id)
        if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
            raise ServiceError("not_found", "you do not hold that chat")
        situation = situation_for(chat.consortium, now)
        target_id: int | None = None
        if queue is not None:
            target = Queue.objects.filter(consortium=chat.consortium, slug=queue, is_active=True).first()
            if target is None:
                raise ServiceError("not_found", f"no queue {queue!r}")
            current = Offer.objects.filter(chat=chat, status=Offer.Status.ACCEPTED).order_by("-closed_at").first()
            if current is not None and current.queue == queue:
                raise ServiceError("same_queue", "the chat is already in that queue")
            if queue not in situation.open_queues:
                raise ServiceError("closed", f"{target.name} is closed now")
            others = [lib for lib in situation.present.get(queue, ()) if lib.id != librarian.pk]
            if not others:
                raise ServiceError("nobody", f"nobody is present in {target.name}")
            description = target.name
        else:
            other = StaffProfile.objects.filter(user__username=to_librarian, is_active=True,
                                                library__consortium=chat.consortium).first()
            if other is None:
                raise ServiceError("not_found", f"no librarian {to_librarian!r}")
            if other.pk == librarian.pk:
                raise ServiceError("same_queue", "you already hold this chat")
            present_ids = {lib.id for libs in situation.present.values() for lib in libs}
            if other.pk not in present_ids:
                raise ServiceError("nobody", f"{other.display_name} is not present")
            target_id = other.pk
            description = f"{other.display_name} ({other.library.name})"
        chat.plan = plan_to_json(transfer_plan(queue, target_id))
        chat.transfer_note = note
        chat.accepted_step_index = 0
        trace(chat, "transferred", now, librarian=librarian.pk, to_queue=queue, to_librarian=to_librarian,
              note=bool(note))
        events.to_librarian(librarian.pk, {"type": "unassigned", "chat": chat.pk, "reason": "transferred"},
                            leave_chat=chat.pk)
        _system_message(chat, f"You are being transferred to {description}. Please stay here.", now)
        chat.state = ChatState.QUEUED
        chat.librarian = None
        chat.step_index = 0
        chat.step_serial += 1
        chat.step_entered_at = now
        chat.version += 1
        chat.save()
        # The librarian who passed the chat on is not offered it back in its new step.
        Offer.objects.create(chat=chat, librarian=librarian, step_serial=chat.step_serial, step="transfer",
                             queue=queue or "", mode="broadcast", created_at=now, status=Offer.Status.DECLINED,
                             closed_at=now, reason="transferred")
        _route(chat, now, situation)
        _publish_state(chat)
    waiting_chats_route(librarian.consortium, now, _librarian_queues(librarian))
    return chat


def transcript_text(chat: Chat, *, for_patron: bool) -> str:
    lines = []
    for m in chat.messages.order_by("seq"):
        if m.internal and for_patron:
            continue
        who = {"patron": chat.patron_name or "You" if for_patron else chat.patron_name or "Patron",
               "system": "—"}.get(m.sender, m.name or "Librarian")
        lines.append(f"[{m.at:%Y-%m-%d %H:%M}] {who}: {m.body}")
    return "\n".join(lines)


def ticket_create(*, consortium: Consortium, library: Library | None, chat: Chat | None, question: str,
                  email: str, name: str = "", note: str = "", source: str, now: datetime,
                  created_by: StaffProfile | None = None) -> Ticket:
    from routing.tasks import mail_ticket_created  # tasks import services: keep the import graph one-way

    ticket = Ticket.objects.create(
        consortium=consortium, library=library, chat=chat, question=question,
        transcript=transcript_text(chat, for_patron=False) if chat else "", patron_name=name,
        patron_email=email, note=note, source=source, created_at=now, created_by=created_by,
    )
    if chat is not None:
        trace(chat, "ticket", now, ticket=ticket.pk, library=library.slug if library else None, source=source)
    if email:
        transaction.on_commit(lambda: mail_ticket_created.delay(ticket.pk))
    return ticket


def chat_refer(librarian: StaffProfile, chat_id: str, now: datetime, *, library_slug: str | None,
               note: str = "") -> Ticket:
    with transaction.atomic():
        chat = _lock_chat(chat_id)
        if chat is None or chat.librarian_id != librarian.pk:
            raise ServiceError("not_found", "you do not hold that chat")
        library = chat.home_library
        if library_slug:
            library = Library.objects.filter(consortium=chat.consortium, slug=library_slug).first()
            if library is None:
                raise ServiceError("not_found", f"no library {library_slug!r}")
        return ticket_create(consortium=chat.consortium, library=library, chat=chat, question=chat.question,
                             email=chat.patron_email, name=chat.patron_name, note=note, source="referral",
                             now=now, created_by=librarian)


def question_leave(*, consortium: Consortium, question: str, email: str, name: str = "",
                   library_slug: str | None = None, zip_code: str | None = None, chat: Chat | None = None,
                   now: datetime) -> Ticket:
    """The offline question form: a follow-up ticket for the home library (or the consortium)."""
    library, _ = home_library_resolve(consortium, library_slug, zip_code)
    with transaction.atomic():
        if chat is not None:
            locked = _lock_chat(chat.pk)
            if locked is not None:
                library = library or locked.home_library
                if locked.state == ChatState.QUEUED:
                    _end(locked, now, by="patron", reason="question_form")
        return ticket_create(consortium=consortium, library=library, chat=chat, question=question, email=email,
                             name=name, source="question_form", now=now)


# --- the timer's sweeps ----------------------------------------------------------------------------


def process_heartbeat(process_id: str, now: datetime) -> None:
    updated = ServerProcess.objects.filter(pk=process_id).update(heartbeat_at=now)
    if not updated:
        ServerProcess.objects.get_or_create(pk=process_id, defaults={"started_at": now, "heartbeat_at": now})


def dead_processes_reap(now: datetime) -> int:
    """Sockets of a process that died without saying goodbye count as closed."""
    dead = list(ServerProcess.objects.filter(heartbeat_at__lt=now - PROCESS_DEAD_AFTER).values_list("pk", flat=True))
    for process_id in dead:
        for channel_name, kind in Connection.objects.filter(process_id=process_id).values_list("channel_name", "kind"):
            if kind == Connection.Kind.STAFF:
                staff_disconnected(channel_name, now)
            else:
                patron_disconnected(channel_name, now)
        ServerProcess.objects.filter(pk=process_id, heartbeat_at__lt=now - PROCESS_DEAD_AFTER).delete()
    return len(dead)


def due_sweep(now: datetime, limit: int = 200) -> int:
    """Fire every deadline that has passed: graces, step timeouts, offer expiries, idle ends.

    Safe to run in any number of processes at once: each row is taken with SKIP LOCKED, and a
    decision made from the stored state is the same however often it is made.
    """
    done = 0
    for librarian_id in LibrarianPresence.objects.filter(grace_until__lte=now).values_list("pk", flat=True)[:limit]:
        done += librarian_lost(librarian_id, now)
    due = Chat.objects.filter(deadline__lte=now).filter(Q(state=ChatState.QUEUED) | Q(state=ChatState.ACTIVE))
    for chat_id in due.order_by("deadline").values_list("pk", flat=True)[:limit]:
        chat_route(chat_id, now, skip_locked=True)
        done += 1
    # After the chats: at an instant where a queue closes and its librarian's shift ends, the chats
    # move on for the queue's reason (closed), as they did before shifts ended.
    for librarian_id in (LibrarianPresence.objects.filter(shift_due__lte=now).order_by("shift_due")
                         .values_list("pk", flat=True)[:limit]):
        done += librarian_shift_due(librarian_id, now)
    return done


# --- logs of routing decisions ------------------------------------------------------------------------
# One line for each turn in a chat's life, for operators: ids, slugs and kinds only. Never the question,
# a message, a patron's name or e-mail, a token, nor a librarian's name (their profile id is enough).
# Written when the transaction commits, so a decision that was rolled back is never logged.

decision_logger = logging.getLogger("routing.decisions")
LOGGED_KINDS = frozenset({"created", "escalated", "accepted", "abandoned", "unstaffed", "requeued",
                          "transferred", "ended"})
# Trace fields that are safe in a log line, and the log field each becomes.
_LOGGED_DATA = {"home_library": "home_library", "found_by": "found_by", "language": "language",
                "from": "from_step", "reason": "reason", "step": "step", "queue": "queue", "library": "library",
                "librarian": "librarian", "waited": "waited_s", "to_queue": "queue", "by": "by"}


def _log_decision(chat: Chat, kind: str, data: dict[str, object]) -> None:
    extra: dict[str, object] = {"event": kind, "chat": chat.pk, "consortium": chat.consortium.slug}
    for key, field in _LOGGED_DATA.items():
        if data.get(key) is not None:
            extra[field] = data[key]
    transaction.on_commit(partial(decision_logger.info, "chat %s", kind, extra=extra))
