"""The mentor live view (docs/console.md, "Mentors"): watch a live chat read-only, whisper to its
librarian, join it as a second librarian, take it over.

Who may: routing.access (`may_watch`: a mentor of the consortium, or a colleague `@named` in the
chat; `may_mentor`: a mentor, for join and take-over). Every watch, whisper, join and take-over is
in the chat's trace, and told to those watching it (events.watch_group), never to its patron.

A whisper is an internal note addressed to the chat's librarian (`Message.whisper_to`): it travels
every path an internal note does, so the patron's socket, long-poll, transcript and mail leave it
out as they leave out every internal note; and among staff only its addressee and its author read
it (routing.whispers), on the sockets and in every transcript.

A take-over moves the chat to the mentor under the chat's row lock, in one transaction, as an
accept does: the librarian, the trace, the system line and the frames change together or not at
all. It races the librarian's own end (or transfer) on that lock, and the second to get it finds
the chat no longer as it was and is refused: one outcome. Without coordinator authority it waits
for the librarian's consent (`Chat.takeover_asked_by`), which is checked again under the lock.

Lock order: the chat row only (routing.services.common).
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from libraries.models import StaffProfile
from routing import access, events, frames, whispers
from routing.models import Chat, ChatState, LibrarianPresence, Message, TraceEvent
from routing.selectors import librarian_queues, with_chat_channel
from routing.services.common import ServiceError, chat_lock, chat_state_publish, system_message_post
from routing.services.route import waiting_chats_route


def _trace(chat: Chat, kind: str, now: datetime, **data: object) -> None:
    """In the chat's trace, and told to those watching it once committed."""
    event = TraceEvent.objects.create(chat=chat, at=now, kind=kind, data=data)
    events.publish(events.watch_group(chat.pk), frames.trace_frame(chat.pk, event))


def _watchable(profile: StaffProfile, chat_id: str) -> Chat:
    chat = (Chat.objects.select_related("home_library", "librarian__library", "librarian__user",
                                        "second_librarian__library", "second_librarian__user")
            .filter(pk=chat_id).first())
    if chat is None or not access.may_watch(profile, chat):
        raise ServiceError("not_found", gettext_lazy("no such chat"))  # never says whether it exists elsewhere
    return chat


def chat_watch(profile: StaffProfile, chat_id: str, now: datetime) -> dict[str, object]:
    """Open a chat read-only: the `watching` frame, and the watch in its trace."""
    with transaction.atomic():
        chat = _watchable(profile, chat_id)
        _trace(chat, "watched", now, librarian=profile.pk, name=profile.display_name,
               library=profile.library.slug)
        trace = list(TraceEvent.objects.filter(chat=chat).order_by("at", "id"))
    return frames.watching_frame(chat, trace, may_mentor=access.may_mentor(profile, chat),
                                 you_joined=chat.second_librarian_id == profile.pk)


def _locked_for(profile: StaffProfile, chat_id: str, *, mentor: bool) -> Chat:
    chat = chat_lock(chat_id)
    if chat is None or not (access.may_mentor(profile, chat) if mentor else access.may_watch(profile, chat)):
        raise ServiceError("not_found", gettext_lazy("no such chat"))
    return chat


def whisper_post(profile: StaffProfile, chat_id: str, body: str, *, client_id: str | None,
                 now: datetime) -> tuple[Message, bool]:
    """A line only the chat's librarian (and its author) sees: an internal note addressed to them.
    Idempotent by client_id, as every line: (the message, stored now?)."""
    with transaction.atomic():
        chat = _locked_for(profile, chat_id, mentor=False)
        if client_id:
            earlier = with_chat_channel(Message.objects.filter(chat=chat, sender=Message.Sender.LIBRARIAN,
                                                               client_id=client_id, librarian=profile)).first()
            if earlier is not None:
                return earlier, False
        if chat.state != ChatState.ACTIVE or chat.librarian_id is None:
            raise ServiceError("ended", gettext_lazy("nobody answers this chat now: there is no one to whisper to"))
        if chat.librarian_id == profile.pk:
            raise ServiceError("invalid", gettext_lazy("this is your own chat: write an internal note instead"))
        chat.last_seq += 1
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    chat=chat, seq=chat.last_seq, sender=Message.Sender.LIBRARIAN, librarian=profile,
                    name=profile.display_name, body=body, client_id=client_id or None, at=now, internal=True,
                    whisper_to_id=chat.librarian_id)
        except IntegrityError as e:  # the same client_id from another librarian of this chat
            raise ServiceError("invalid", gettext_lazy("that client_id was used already in this chat")) from e
        chat.save(update_fields=["last_seq"])
        message.chat_channel = chat.channel
        _trace(chat, "whispered", now, librarian=profile.pk, name=profile.display_name, to=chat.librarian_id,
               seq=message.seq)
        events.to_chat(chat.pk, frames.message_frame(message), seq=message.seq, internal=True,
                       audience=whispers.audience(message))
    return message, True


def _said_to_patron(chat: Chat, text: str, **names: str) -> str:
    """A system line the patron reads, in the chat's language."""
    with translation.override(chat.language or "en"):
        return gettext(text) % names


def chat_second_join(mentor: StaffProfile, chat_id: str, now: datetime) -> Chat:
    """The mentor becomes a second librarian in the chat; the patron is told."""
    with transaction.atomic():
        chat = _locked_for(mentor, chat_id, mentor=True)
        if chat.state != ChatState.ACTIVE:
            raise ServiceError("ended", gettext_lazy("only a chat being answered can be joined"))
        if mentor.pk in (chat.librarian_id, chat.second_librarian_id):
            raise ServiceError("invalid", gettext_lazy("you are in this chat already"))
        if chat.second_librarian_id is not None:
            raise ServiceError("taken", gettext_lazy("another mentor has joined this chat"))
        chat.second_librarian = mentor
        chat.version += 1
        chat.save(update_fields=["second_librarian", "version"])
        _trace(chat, "mentor_joined", now, librarian=mentor.pk, name=mentor.display_name,
               library=mentor.library.slug)
        system_message_post(chat, _said_to_patron(chat, "%(name)s, a senior librarian, joined the chat.",
                                                  name=mentor.display_name), now)
        events.to_librarian(mentor.pk, frames.second_joined_frame(chat))
    return chat


def takeover_ask(mentor: StaffProfile, chat_id: str, now: datetime) -> str:
    """Take the chat over: at once by coordinator authority ("taken"), else once its librarian
    consents ("asked": they are asked in their console)."""
    with transaction.atomic():
        chat = _locked_for(mentor, chat_id, mentor=True)
        _check_active(chat, mentor)
        if access.is_coordinator_of(mentor, chat):
            taken_from = chat.librarian_id
            _take_over_locked(chat, mentor, now, by="coordinator")
            result = "taken"
        else:
            assert chat.librarian_id is not None
            chat.takeover_asked_by = mentor
            chat.save(update_fields=["takeover_asked_by"])
            _trace(chat, "takeover_asked", now, librarian=mentor.pk, name=mentor.display_name)
            events.to_librarian(chat.librarian_id, frames.takeover_asked_frame(chat.pk, mentor))
            taken_from = None
            result = "asked"
    if taken_from is not None:
        _route_freed(taken_from, now)
    return result


def takeover_answer(librarian: StaffProfile, chat_id: str, *, consent: bool, now: datetime) -> Chat:
    """The chat's librarian answers a mentor's take-over: yes moves the chat, no tells the mentor."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
            raise ServiceError("not_found", gettext_lazy("you do not hold that chat"))
        mentor = chat.takeover_asked_by
        if mentor is None:
            raise ServiceError("not_found", gettext_lazy("nobody asks to take this chat over"))
        chat.takeover_asked_by = None
        moved = consent and mentor.is_active and access.may_mentor(mentor, chat)
        if moved:
            _take_over_locked(chat, mentor, now, by="consent")
        else:
            chat.save(update_fields=["takeover_asked_by"])
            _trace(chat, "takeover_declined", now, librarian=librarian.pk, mentor=mentor.pk)
            events.to_librarian(mentor.pk, frames.takeover_declined_frame(chat.pk, librarian))
    if moved:
        _route_freed(librarian.pk, now)
    return chat


def _check_active(chat: Chat, mentor: StaffProfile) -> None:
    if chat.state != ChatState.ACTIVE or chat.librarian_id is None:
        raise ServiceError("ended", gettext_lazy("only a chat being answered can be taken over"))
    if chat.librarian_id == mentor.pk:
        raise ServiceError("invalid", gettext_lazy("you hold this chat already"))


def _take_over_locked(chat: Chat, mentor: StaffProfile, now: datetime, *, by: str) -> None:
    """Move the locked, active chat to `mentor`: all of it in the caller's transaction."""
    previous = chat.librarian_id
    assert previous is not None
    chat.librarian = mentor
    chat.takeover_asked_by = None
    if chat.second_librarian_id == mentor.pk:
        chat.second_librarian = None
    chat.accepted_at = now
    chat.version += 1
    chat.save(update_fields=["librarian", "takeover_asked_by", "second_librarian", "accepted_at", "version"])
    LibrarianPresence.objects.filter(pk=previous).update(idle_since=now)
    _trace(chat, "taken_over", now, librarian=mentor.pk, name=mentor.display_name, library=mentor.library.slug,
           previous=previous, by=by)
    events.to_librarian(previous, frames.unassigned_frame(chat.pk, "taken_over"), leave_chat=chat.pk)
    events.to_librarian(mentor.pk, frames.assigned_frame(chat), join_chat=chat.pk)
    system_message_post(chat, _said_to_patron(chat, "%(name)s, a senior librarian, took over the chat.",
                                              name=mentor.display_name), now)
    chat_state_publish(chat)


def _route_freed(librarian_id: int, now: datetime) -> None:
    """The librarian who lost a chat has room for a waiting one."""
    holder = StaffProfile.objects.select_related("library__consortium").filter(pk=librarian_id).first()
    if holder is not None:
        waiting_chats_route(holder.consortium, now, set(librarian_queues(holder)))


def mentors_set(consortium_id: int, mentor_ids: set[int]) -> int:
    """A coordinator's choice: exactly `mentor_ids` (staff of this consortium) carry the mentor flag.
    Returns how many flags changed. Coordinators are mentors whatever the flag says."""
    with transaction.atomic():
        staff = StaffProfile.objects.filter(library__consortium_id=consortium_id)
        added = staff.filter(pk__in=mentor_ids, is_mentor=False).update(is_mentor=True)
        removed = staff.exclude(pk__in=mentor_ids).filter(is_mentor=True).update(is_mentor=False)
    return added + removed
