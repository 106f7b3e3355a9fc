"""The server frames of docs/protocol.md, built in one place: every frame a client is sent is built
by a function of this module, so its fields are written once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from libraries.models import Library, StaffProfile
from routing.models import Chat, Mention, Message, Offer, Share, StaffRoomLine, TraceEvent
from routing.plan import plan_from_json
from routing.selectors import queue_position, typical_wait_seconds

Frame = dict[str, Any]


def library_ref(library: Library | None) -> dict[str, str] | None:
    return {"slug": library.slug, "name": library.name} if library else None


def librarian_ref(profile: StaffProfile | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {"name": profile.display_name, "library": library_ref(profile.library)}


def step_name(chat: Chat) -> str | None:
    plan = plan_from_json(chat.plan)
    if chat.state == "queued" and 0 <= chat.step_index < len(plan):
        return plan[chat.step_index].name
    if chat.state == "active":
        return chat.answered_step or None
    return None


def state_frame(chat: Chat, *, position: int | None = None, estimated_wait: int | None = None) -> Frame:
    frame: Frame = {
        "type": "state",
        "chat": chat.pk,
        "state": chat.state,
        "step": step_name(chat),
        "librarian": librarian_ref(chat.librarian) if chat.state == "active" else None,
        "position": position,
        "estimated_wait": estimated_wait,
        # Extensions: when the question form is offered beside a waiting chat, and where the chat is.
        "offer_question_form": chat.state == "unstaffed" or (chat.state == "queued" and chat.max_wait_passed),
        "last_seq": chat.last_seq,
    }
    if chat.state == "active" and chat.librarian is not None and chat.home_library_id is not None:
        frame["partner"] = chat.librarian.library_id != chat.home_library_id
    return frame


def patron_state_frame(chat: Chat, position: int | None = None) -> Frame:
    """The state frame a patron is told (socket, long-poll and the events after a change), with the
    queue position and estimated wait while the chat waits (the position counted here unless the
    caller counted it with others: selectors.queue_positions)."""
    estimated = None
    if chat.state != "queued":
        position = None
    else:
        if position is None:
            position = queue_position(chat)
        estimated = position * typical_wait_seconds(chat.consortium)
    return state_frame(chat, position=position, estimated_wait=estimated)


def message_frame(message: Message, channel: str | None = None) -> Frame:
    """A message as every socket, poll and transcript sends it. `channel` is the chat's (docs/sms.md):
    given by the caller, else the `chat_channel` of the message's query (the history reads annotate
    it) or of the service that stored it, else its chat if loaded. Never looked up here: a frame is
    built on the sockets' event loop too, where no query may run, and once per message on the hot path."""
    frame: Frame = {
        "type": "message",
        "chat": message.chat_id,
        "seq": message.seq,
        "sender": message.sender,
        "name": message.name or None,
        "body": message.body,
        "at": message.at.isoformat(),
        "client_id": message.client_id,
    }
    if message.internal:
        frame["internal"] = True
    if message.whisper_to_id is not None:
        # A mentor's whisper (routing.mentoring): an internal note addressed to the chat's librarian.
        frame["whisper"] = True
    if message.file_id and message.file is not None:
        f = message.file
        frame["file"] = {"id": f.pk, "name": f.name, "type": f.content_type, "size": f.size,
                         "url": f"/api/v1/chats/{message.chat_id}/files/{f.pk}"}
    channel = channel or message.chat_channel or (
        message.chat.channel if Message._meta.get_field("chat").is_cached(message) else None)
    if channel:
        frame["channel"] = channel  # added by docs/sms.md: "sms" in a chat that came by text
    return frame


def resent_frame(message: Frame) -> Frame:
    """The stored message sent again for a client_id sent again, when this socket has sent it already:
    the contract's echo, marked `resent` (docs/protocol.md) so that a client, and the fault tests,
    tell it from a delivery of the same seq twice, which never happens."""
    return {**message, "resent": True}


class OfferShown(Protocol):
    """What an offer frame tells of an offer: an Offer row, or one routing has just made
    (routing.services.route.OfferMade)."""

    @property
    def queue(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


def offer_frame(offer: OfferShown, chat: Chat) -> Frame:
    return {
        "type": "offer",
        "chat": chat.pk,
        "home_library": library_ref(chat.home_library),
        "queue": offer.queue,
        "step": offer.step,
        "question": chat.question,
        "waiting_since": chat.arrived_at.isoformat(),
        "mode": offer.mode,
        "expires_at": offer.expires_at.isoformat() if offer.expires_at else None,
        "transfer_note": chat.transfer_note or None,
        "language": chat.language or None,
        "patron": {"name": chat.patron_name or None},
        # Added by docs/sms.md: "sms" for a chat that came by text (its patron name is "...1234").
        "channel": chat.channel,
    }


def withdrawn_frame(chat_id: str, reason: str) -> Frame:
    return {"type": "offer_withdrawn", "chat": chat_id, "reason": reason}


def assigned_frame(chat: Chat) -> Frame:
    return {
        "type": "assigned",
        "chat": chat.pk,
        "home_library": library_ref(chat.home_library),
        "patron": {"name": chat.patron_name or None},
        "policy_url": f"/staff/libraries/{chat.home_library.slug}/policy" if chat.home_library else None,
        "last_seq": chat.last_seq,
        "question": chat.question,
        "transfer_note": chat.transfer_note or None,
        "channel": chat.channel,
    }


def shift_frame(ends_at: datetime | None, *, warned: bool, extend_by: int) -> Frame:
    """The end of the librarian's shift as the console is told it: `shift_ending` while its warning is
    in force (with how long "I'm staying on" lasts), else `shift` (ends_at null: no automatic away)."""
    if warned and ends_at is not None:
        return {"type": "shift_ending", "ends_at": ends_at.isoformat(), "extend_by": extend_by}
    return {"type": "shift", "ends_at": ends_at.isoformat() if ends_at else None}


# --- the socket's own frames -----------------------------------------------------------------------


def error_frame(code: str, detail: str, *, client_id: str | None = None) -> Frame:
    return {"type": "error", "code": code, "detail": detail, "client_id": client_id}


def pong_frame() -> Frame:
    return {"type": "pong"}


def joined_frame(chat_id: str) -> Frame:
    return {"type": "joined", "chat": chat_id}


def typing_frame(chat_id: str, sender: str) -> Frame:
    return {"type": "typing", "chat": chat_id, "sender": sender}


# --- to librarians ----------------------------------------------------------------------------------


def hello_frame(profile: StaffProfile, *, queues: list[str], presence: str, chats: Iterable[Chat],
                offers: Iterable[Offer], shift: Frame) -> Frame:
    return {
        "type": "hello",
        "librarian": {"username": profile.user.username, "name": profile.display_name,
                      "library": profile.library.slug},
        "queues": queues,
        "presence": presence,
        "chats": [{"chat": c.pk, "state": c.state, "last_seq": c.last_seq,
                   "home_library": library_ref(c.home_library), "channel": c.channel} for c in chats],
        "offers": [offer_frame(o, o.chat) for o in offers],
        # Added: the end of the librarian's shift as a shift / shift_ending frame, so that a console
        # that reconnects shows the warning again.
        "shift": shift,
    }


def presence_frame(status: str, *, reason: str | None = None, ends_at: datetime | None = None) -> Frame:
    """The librarian's presence: the answer to their presence frame, or set away by the server (with why)."""
    frame: Frame = {"type": "presence", "status": status}
    if reason is not None:
        frame["reason"] = reason
    if ends_at is not None:
        frame["ends_at"] = ends_at.isoformat()
    return frame


def unassigned_frame(chat_id: str, reason: str) -> Frame:
    return {"type": "unassigned", "chat": chat_id, "reason": reason}


def patron_presence_frame(chat_id: str, *, present: bool) -> Frame:
    return {"type": "patron_presence", "chat": chat_id, "present": present}


def accept_failed_frame(chat_id: str, reason: str, detail: str) -> Frame:
    return {"type": "accept_failed", "chat": chat_id, "reason": reason, "detail": detail}


def transfer_failed_frame(chat_id: str, reason: str, detail: str) -> Frame:
    return {"type": "transfer_failed", "chat": chat_id, "reason": reason, "detail": detail}


def referred_frame(chat_id: str, followup_id: str) -> Frame:
    """The chat was referred to a follow-up (the word staff see); `ticket` is the protocol's name for
    it, `follow_up` the same id under that word (an addition: clients reading `ticket` go on)."""
    return {"type": "referred", "chat": chat_id, "ticket": followup_id, "follow_up": followup_id}


# --- the mentor live view and the back-channel (routing.services.mentoring, routing.mentions) -------


def watching_frame(chat: Chat, trace: Iterable[TraceEvent], *, may_mentor: bool, you_joined: bool) -> Frame:
    """A chat opened read-only: what it is, its home library's policy, its trace, what this librarian
    may do in it (whisper always; join and take over, a mentor). Its messages follow as message frames."""
    return {
        "type": "watching",
        "chat": chat.pk,
        "state": chat.state,
        "home_library": library_ref(chat.home_library),
        "policy_url": f"/staff/libraries/{chat.home_library.slug}/policy" if chat.home_library else None,
        "librarian": librarian_ref(chat.librarian),
        "second_librarian": librarian_ref(chat.second_librarian),
        "patron": {"name": chat.patron_name or None},
        "question": chat.question,
        "arrived_at": chat.arrived_at.isoformat(),
        "last_seq": chat.last_seq,
        "channel": chat.channel,
        "trace": [trace_ref(event) for event in trace],
        "may": {"whisper": True, "join": may_mentor, "take_over": may_mentor},
        "you_joined": you_joined,  # this librarian is the chat's second librarian: may write to the patron
    }


def trace_ref(event: TraceEvent) -> Frame:
    return {"at": event.at.isoformat(), "kind": event.kind, "data": event.data}


def trace_frame(chat_id: str, event: TraceEvent) -> Frame:
    """A line added to the trace of a chat that mentors watch (every watch, whisper, join, take-over)."""
    return {"type": "trace", "chat": chat_id, **trace_ref(event)}


def takeover_asked_frame(chat_id: str, mentor: StaffProfile) -> Frame:
    return {"type": "takeover_asked", "chat": chat_id, "by": librarian_ref(mentor)}


def takeover_failed_frame(chat_id: str, reason: str, detail: str) -> Frame:
    return {"type": "takeover_failed", "chat": chat_id, "reason": reason, "detail": detail}


def takeover_declined_frame(chat_id: str, librarian: StaffProfile) -> Frame:
    return {"type": "takeover_declined", "chat": chat_id, "by": librarian_ref(librarian)}


def second_joined_frame(chat: Chat) -> Frame:
    """To the mentor who joined the chat: they may write in it now."""
    return {"type": "second_joined", "chat": chat.pk, "last_seq": chat.last_seq}


def mentioned_frame(mention: Mention, excerpt: str) -> Frame:
    return {"type": "mentioned", "id": mention.pk, "chat": mention.chat_id, "by": librarian_ref(mention.by),
            "excerpt": excerpt, "at": mention.created_at.isoformat(), "url": f"/staff/mentor/{mention.chat_id}/"}


def room_frame(line: StaffRoomLine) -> Frame:
    """A line of the consortium's staff room (routing.staff_room), by its room seq."""
    return {"type": "room_message", "seq": line.seq, "name": line.name, "library": line.library or None,
            "body": line.body, "at": line.at.isoformat(), "client_id": line.client_id}


# --- sharing (routing.sharing) ------------------------------------------------------------------------


def share_request_frame(share: Share, librarian: StaffProfile, ice: dict[str, Any]) -> Frame:
    """To the patron: the librarian asks to share; `librarian` is named so the consent can say who."""
    return {"type": "share_request", "chat": share.chat_id, "share": share.pk, "kind": share.kind,
            "librarian": librarian_ref(librarian), "ice": ice}


def share_requested_frame(share: Share, ice: dict[str, Any]) -> Frame:
    """To the librarian's socket that asked: the share's id and this browser's ICE configuration."""
    return {"type": "share_requested", "chat": share.chat_id, "share": share.pk, "kind": share.kind, "ice": ice}


def share_started_frame(share: Share) -> Frame:
    return {"type": "share_started", "chat": share.chat_id, "share": share.pk, "kind": share.kind}


def share_ended_frame(share: Share) -> Frame:
    return {"type": "share_ended", "chat": share.chat_id, "share": share.pk, "kind": share.kind,
            "by": share.ended_by, "reason": share.end_reason}


def share_signal_frame(kind: str, chat_id: str, share_id: int, sender: str, payload: dict[str, Any]) -> Frame:
    """A relayed offer, answer, ICE candidates or page address: built from checked members only."""
    return {"type": kind, "chat": chat_id, "share": share_id, "from": sender, **payload}


def page_push_frame(chat_id: str, url: str, title: str, librarian: StaffProfile) -> Frame:
    return {"type": "page_push", "chat": chat_id, "url": url, "title": title, "librarian": librarian_ref(librarian)}
