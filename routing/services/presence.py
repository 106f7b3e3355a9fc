"""Librarians' presence (available, away, online within the reconnect grace) and the connections of
librarians and patrons that it follows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.queries import KeyedRows
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import Chat, ChatState, Connection, LibrarianPresence, Offer
from routing.selectors import librarian_queues
from routing.services.common import (
    ServiceError,
    chat_lock,
    chat_state_publish,
    in_patron_language,
    presence_lock,
    system_message_post,
    trace,
)
from routing.services.handbacks import handbacks_announce
from routing.services.route import (
    chat_route,
    chat_route_locked,
    librarian_presence_changed,
    offers_reroute,
    waiting_chats_route,
)
from routing.services.shares import shares_end_for_chat
from routing.services.shifts import shift_clear, shift_frame_for, shift_schedule

# How long after a presence change the timer routes its chats again if the web process that answered
# it has not (it died in between): the web process starts at once and takes well under a second.
REROUTE_FALLBACK = timedelta(seconds=5)


def presence_set(librarian: StaffProfile, status: str, now: datetime, *, reason: str = "") -> str:
    """Change a librarian's presence and route again the chats that concern them, in one call."""
    status, changed = presence_change(librarian, status, now, reason=reason)
    if changed:
        presence_reroute(librarian.pk, now)
    return status


def presence_change(librarian: StaffProfile, status: str, now: datetime, *, reason: str = "") -> tuple[str, bool]:
    """Change a librarian's presence, without routing anything yet: (status, whether it changed).

    The librarian's console is answered at once; the chats this concerns (offers to withdraw when
    away, waiting chats to offer when available) are then routed by presence_reroute, which the
    caller runs next; should it never run, the timer does at `reroute_due`.
    """
    if status not in LibrarianPresence.Status.values:
        raise ServiceError("invalid", gettext_lazy("status must be available or away"))
    with transaction.atomic():
        presence = presence_lock(librarian)
        changed = presence.status != status
        presence.status = status
        presence.away_reason = reason if status == "away" else ""
        presence.changed_at = now
        if presence.idle_since is None:
            presence.idle_since = now
        if status == LibrarianPresence.Status.AWAY:
            shift_clear(presence)
        elif changed:
            shift_schedule(presence, librarian, now, starting=True)
        if changed:
            presence.reroute_due = now + REROUTE_FALLBACK
        presence.save()
    return status, changed


def presence_reroute(librarian_id: int, now: datetime) -> None:
    """Route again what a presence change at `now` concerns, for the presence the librarian has now
    (a later change is routed for by its own call), then clear the timer's fallback for it."""
    librarian = StaffProfile.objects.select_related("library__consortium", "presence").get(pk=librarian_id)
    librarian_presence_changed(librarian, librarian.presence.status, now)
    # The way home: holders of this library's patrons' chats elsewhere learn whether it can take them back.
    handbacks_announce(librarian.library.consortium, librarian.library, now)
    LibrarianPresence.objects.filter(pk=librarian_id, changed_at__lte=now, reroute_due__isnull=False).update(
        reroute_due=None)


def reroutes_overdue(now: datetime, limit: int = 50) -> int:
    """The timer's part: presence changes whose web process did not route their chats (it died)."""
    done = 0
    for librarian_id, changed_at in (LibrarianPresence.objects.filter(reroute_due__lte=now)
                                     .values_list("pk", "changed_at")[:limit]):
        # Claimed by one timer: whoever moves reroute_due on does it; another timer finds it not due.
        if LibrarianPresence.objects.filter(pk=librarian_id, reroute_due__lte=now).update(
                reroute_due=now + REROUTE_FALLBACK):
            presence_reroute(librarian_id, max(now, changed_at or now))
            done += 1
    return done


@dataclass
class StaffState:
    presence: str
    chats: list[Chat]
    offers: list[Offer]
    shift: dict[str, Any]  # the shift or shift_ending frame in force


# A console's chats and open offers, sent in its hello: compiled once per process
# (consortium.queries.KeyedRows), since a reconnect storm asks them for every console at once. A
# librarian id is never negative.
_HELD_CHATS = KeyedRows(lambda librarian_id: Chat.objects.filter(librarian_id=librarian_id, state=ChatState.ACTIVE)
                        .select_related("home_library").order_by("accepted_at"),
                        key_field="librarian_id", sentinel=-7_000_003)
_OPEN_OFFERS = KeyedRows(lambda librarian_id: Offer.objects.filter(librarian_id=librarian_id, status=Offer.Status.OPEN)
                         .select_related("chat__home_library").order_by("chat__arrived_at"),
                         key_field="librarian_id", sentinel=-7_000_004)


# A chat's patron connections (a few at most: ratelimit.PATRON_SOCKETS_PER_CHAT), counted at every patron
# socket's join; compiled once per process.
_PATRON_CONNECTIONS: KeyedRows[Any] = KeyedRows(
    lambda chat_id: Connection.objects.filter(chat_id=chat_id, kind=Connection.Kind.PATRON).values_list("channel_name"),
    key_field="chat_id")


def connection_open(connection: Connection) -> None:
    """Count a socket's connection in: one statement (an upsert by its channel name, which a socket
    keeps for its life). update_or_create took five (two savepoints, a locking read, the insert)."""
    Connection.objects.bulk_create([connection], update_conflicts=True, unique_fields=["channel_name"],
                                   update_fields=["kind", "process", "librarian", "chat", "opened_at"])


def staff_connected(librarian: StaffProfile, channel_name: str, process_id: str, now: datetime) -> StaffState:
    with transaction.atomic():
        presence = presence_lock(librarian)
        in_grace = presence.online and (presence.grace_until is None or presence.grace_until > now)
        if not in_grace:
            # A first connection starts away: nobody is offered chats until they say they are there.
            presence.status = LibrarianPresence.Status.AWAY
            shift_clear(presence)
        presence.online = True
        presence.grace_until = None
        presence.save()
        connection_open(Connection(channel_name=channel_name, kind=Connection.Kind.STAFF, process_id=process_id,
                                   librarian=librarian, opened_at=now))
    return StaffState(presence=presence.status, chats=_HELD_CHATS(librarian.pk), offers=_OPEN_OFFERS(librarian.pk),
                      shift=shift_frame_for(presence, librarian.consortium))


def staff_disconnected(channel_name: str, now: datetime) -> None:
    with transaction.atomic():
        connection = Connection.objects.filter(channel_name=channel_name).select_related("librarian").first()
        if connection is None or connection.librarian is None:
            return
        librarian = connection.librarian
        presence = presence_lock(librarian)
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
        shift_clear(presence)
        presence.save()
        for chat_id in Chat.objects.filter(librarian=librarian, state=ChatState.ACTIVE).order_by("pk") \
                .values_list("pk", flat=True):
            chat = chat_lock(chat_id)
            if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
                continue
            _requeue(chat, now, reason="librarian_lost")
            requeued.append(chat.pk)
    routed = offers_reroute([librarian_id], now)
    for chat_id in requeued:
        chat_route(chat_id, now)
    waiting_chats_route(librarian.consortium, now, set(librarian_queues(librarian)), routed | set(requeued))
    handbacks_announce(librarian.library.consortium, librarian.library, now)
    return True


def _requeue(chat: Chat, now: datetime, *, reason: str) -> None:
    """Back to routing at the step it was accepted in, keeping its arrival time."""
    old = chat.librarian
    chat.state = ChatState.QUEUED
    chat.librarian = None
    chat.second_librarian = None  # a mentor who joined leaves with the librarian (routing.services.mentoring)
    chat.step_index = chat.accepted_step_index if chat.accepted_step_index is not None else 0
    chat.step_serial += 1
    chat.step_entered_at = now
    chat.deadline = now
    chat.version += 1
    chat.save()
    trace(chat, "requeued", now, reason=reason, librarian=old.pk if old else None)
    shares_end_for_chat(chat, now, reason="librarian_lost")  # a share never outlives its librarian's hold
    if old is not None:
        events.to_librarian(old.pk, frames.unassigned_frame(chat.pk, reason), leave_chat=chat.pk)
    with in_patron_language(chat):
        lost = _("Your librarian was disconnected. We are finding you another librarian; please stay here.")
    system_message_post(chat, lost, now)
    chat_state_publish(chat)


def patron_connected(chat: Chat, channel_name: str, process_id: str, now: datetime, *,
                     max_connections: int | None = None) -> bool:
    """Count this patron connection in; False (and nothing stored) when the chat already has
    `max_connections` others. Counted under the chat's lock from the Connection rows, so the count
    holds across web processes, and a dead process's connections stop counting once reaped."""
    with transaction.atomic():
        locked = chat_lock(chat.pk)
        if locked is None:
            return False
        if max_connections is not None:
            others = sum(1 for (name,) in _PATRON_CONNECTIONS(locked.pk) if name != channel_name)
            if others >= max_connections:
                return False
        connection_open(Connection(channel_name=channel_name, kind=Connection.Kind.PATRON, process_id=process_id,
                                   chat=locked, opened_at=now))
        was_gone = locked.patron_left_at is not None
        locked.patron_joined = True
        locked.patron_left_at = None
        locked.save(update_fields=["patron_joined", "patron_left_at"])
        if locked.state == ChatState.QUEUED:
            chat_route_locked(locked, now)
        elif locked.state == ChatState.ACTIVE and was_gone and locked.librarian_id:
            events.to_librarian(locked.librarian_id, frames.patron_presence_frame(locked.pk, present=True))
    return True


def patron_disconnected(channel_name: str, now: datetime) -> None:
    with transaction.atomic():
        connection = Connection.objects.filter(channel_name=channel_name).first()
        if connection is None or connection.chat_id is None:
            return
        chat = chat_lock(connection.chat_id)
        connection.delete()
        if chat is None or Connection.objects.filter(chat=chat, kind=Connection.Kind.PATRON).exists():
            return
        chat.patron_left_at = now
        chat.save(update_fields=["patron_left_at"])
        if chat.state == ChatState.QUEUED:
            chat_route_locked(chat, now)
        elif chat.state == ChatState.ACTIVE and chat.librarian_id:
            events.to_librarian(chat.librarian_id, frames.patron_presence_frame(chat.pk, present=False))
