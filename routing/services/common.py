"""What the services share: the refusal, the trace and the decision log, row locks, system messages,
the state a patron is told, and the end of a chat (by anyone, or by the router).

Lock order, for every service: a librarian's presence row (presence_lock) before any chat row
(chat_lock); several chats (a batch of route.chats_route, a librarian's chats when they are lost)
only in id order; so concurrent transactions never wait on each other in a circle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, cast

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from consortium.queries import KeyedRow
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import Chat, ChatState, LibrarianPresence, Message, Offer, TraceEvent
from routing.patron.i18n import patron_language

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ServiceError(Exception):
    """A refused action, with the protocol's machine-readable reason. Its `detail` is for people: often
    lazy (gettext_lazy), so that it reads in the language of whoever is told (a librarian's socket or
    page: theirs; a patron: English, as the protocol's details always were)."""

    def __init__(self, reason: str, detail: StrOrPromise = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        # Typed as the str it reads as: rendered, formatted, or written as JSON (Django's encoder, and the
        # sockets' ProtocolConsumer.words), a lazy string becomes the text of the active language.
        self.detail = cast(str, detail or reason)


class Refused(ServiceError):
    """A refused request, with the fields at fault (for forms and JSON alike)."""

    def __init__(self, reason: str, detail: StrOrPromise = "",
                 fields: Mapping[str, Sequence[StrOrPromise]] | None = None) -> None:
        super().__init__(reason, detail)
        # Made text now: the fields are for pages and JSON answers (never a socket's frame), whose request
        # has the reader's language active already.
        self.fields = {name: [str(text) for text in texts] for name, texts in (fields or {}).items()}


def trace(chat: Chat, kind: str, at: datetime, **data: object) -> None:
    TraceEvent.objects.create(chat=chat, at=at, kind=kind, data=data)
    if kind in LOGGED_KINDS:
        log_decision(chat, kind, data)


def in_patron_language(chat: Chat) -> translation.override:
    """Words the patron reads in the chat (its system lines) are written in the patron's language: the
    chat's, as the ask page or widget gave it (routing.patron.i18n.patron_language)."""
    return translation.override(patron_language(chat.language))


def system_message_post(chat: Chat, body: str, now: datetime, *, internal: bool = False) -> Message:
    chat.last_seq += 1
    message = Message.objects.create(chat=chat, seq=chat.last_seq, sender=Message.Sender.SYSTEM, body=body,
                                     at=now, internal=internal)
    chat.save(update_fields=["last_seq"])
    events.to_chat(chat.pk, frames.message_frame(message, chat.channel), seq=message.seq)
    return message


def chat_state_publish(chat: Chat) -> None:
    events.to_chat(chat.pk, frames.patron_state_frame(chat))


def _chat_locked(skip_locked: bool) -> KeyedRow[Chat]:
    return KeyedRow(lambda chat_id: Chat.objects.select_for_update(skip_locked=skip_locked, of=("self",))
                    .select_related("consortium", "home_library", "librarian__library", "librarian__user")
                    .filter(pk=chat_id))


# Compiled once per process (consortium.queries.KeyedRow): every accept, transfer and end takes this lock.
_CHAT_LOCKED = {skip_locked: _chat_locked(skip_locked) for skip_locked in (False, True)}


def chat_lock(chat_id: str, *, skip_locked: bool = False) -> Chat | None:
    return _CHAT_LOCKED[skip_locked](chat_id)


# Compiled once per process; a librarian's id is never negative.
_PRESENCE_LOCKED = KeyedRow(lambda librarian_id: LibrarianPresence.objects.select_for_update()
                            .filter(librarian_id=librarian_id), key_field="librarian_id", sentinel=-7_000_001)


def presence_lock(librarian: StaffProfile, *, lock: bool = True) -> LibrarianPresence:
    """The librarian's presence row (made on first use), locked unless `lock` is False (a read)."""
    if lock:  # the row exists but for a librarian's first sign-in: one statement then
        found = _PRESENCE_LOCKED(librarian.pk)
        if found is not None:
            return found
    presence, _ = LibrarianPresence.objects.get_or_create(librarian=librarian)
    if lock:
        presence = LibrarianPresence.objects.select_for_update().get(pk=presence.pk)
    return presence


def chat_end_locked(chat: Chat, now: datetime, *, by: str, reason: str) -> None:
    """End a chat the caller holds locked: offers withdrawn, everyone told, its librarian freed."""
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
    from routing.services.shares import shares_end_for_chat  # shares builds on this module: imported here

    shares_end_for_chat(chat, now)
    with in_patron_language(chat):
        text = {"idle": _("The chat ended after a long silence."), "patron": _("The patron ended the chat."),
                "librarian": _("The librarian ended the chat."),
                "self_served": _("The patron found the answer among the published answers and left."),
                }.get(reason, _("The chat has ended."))
    system_message_post(chat, text, now)
    chat_state_publish(chat)
    if chat.channel == "sms":
        from texting.conversation import sms_chat_ended  # texting builds on routing: imported here

        sms_chat_ended(chat, reason, now)
    if previous is not None:
        LibrarianPresence.objects.filter(pk=previous).update(idle_since=now)
        events.to_librarian(previous, frames.unassigned_frame(chat.pk, "ended"), leave_chat=chat.pk)


def librarian_set_away(librarian_id: int, reason: str, now: datetime) -> None:
    LibrarianPresence.objects.filter(pk=librarian_id).update(
        status=LibrarianPresence.Status.AWAY, away_reason=reason, changed_at=now,
        shift_end=None, shift_warned=False, shift_due=None, stay_until=None)
    events.to_librarian(librarian_id, frames.presence_frame("away", reason=reason))


decision_logger = logging.getLogger("routing.decisions")


LOGGED_KINDS = frozenset({"created", "escalated", "accepted", "abandoned", "unstaffed", "requeued",
                          "transferred", "ended"})


# Trace fields that are safe in a log line, and the log field each becomes.
_LOGGED_DATA = {"home_library": "home_library", "found_by": "found_by", "language": "language",
                "from": "from_step", "reason": "reason", "step": "step", "queue": "queue", "library": "library",
                "librarian": "librarian", "waited": "waited_s", "to_queue": "queue", "by": "by"}


def log_decision(chat: Chat, kind: str, data: dict[str, object]) -> None:
    extra: dict[str, object] = {"event": kind, "chat": chat.pk, "consortium": chat.consortium.slug}
    for key, field in _LOGGED_DATA.items():
        if data.get(key) is not None:
            extra[field] = data[key]
    transaction.on_commit(partial(decision_logger.info, "chat %s", kind, extra=extra))
