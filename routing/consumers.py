"""The patron and staff sockets of spec/PROTOCOL.md: thin adapters between frames and services.

Each consumer parses and checks a frame, calls a service in a worker thread, and answers. Events
from other processes arrive through the channel layer (`vr.event`); message frames carry a
sequence number, and a consumer that sees a gap fills it from the database before going on, so a
client gets every message once and in order even when the layer drops one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.sessions.models import Session
from django.utils import timezone

from libraries.models import StaffProfile
from routing import access, frames, ratelimit, validation
from routing.events import chat_group, librarian_group
from routing.layer_watch import socket_closed, socket_opened
from routing.models import Chat, ChatState, Message
from routing.process import ensure_registered
from routing.selectors import librarian_queues
from routing.services import chats, common, followups, offers, presence, shifts, transfers
from routing.threads import in_thread
from routing.validation import Fields, Invalid

logger = logging.getLogger(__name__)
Frame = dict[str, Any]

BAD_FRAME = ratelimit.SOCKET_FRAMES.bad_frame_cost  # what a frame that is refused unread costs
# After hello, how long a staff socket waits for the client's join of each held chat before sending
# that chat's live messages anyway (a client that does not resume with join).
JOIN_WAIT = 10.0


def chat_of(frame: Frame) -> str:
    """The frame's chat id (the one field of most staff frames)."""
    f = Fields(frame)
    chat_id = f.chat_id()
    f.check()
    return chat_id


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _messages_after(chat_id: str, after: int, *, for_patron: bool, upto: int | None = None) -> list[Frame]:
    rows = Message.objects.filter(chat_id=chat_id, seq__gt=after).select_related("file").order_by("seq")
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    if for_patron:
        rows = rows.filter(internal=False)
    return [frames.message_frame(m) for m in rows]


class ProtocolConsumer(AsyncWebsocketConsumer):
    role = ""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its aclose_old_connections() before every frame and event.

        That call closes stale database connections in Channels' single database thread: a hop to
        that thread (and a wait behind whatever it is doing) for every frame in and every event out,
        for nothing, since these handlers touch the database only through routing.threads.in_thread,
        which closes stale connections around each call itself. Delivering a message to a client
        (a layer event with no gap) now needs no thread at all.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.meter = ratelimit.Meter(ratelimit.SOCKET_FRAMES)  # frames in, per connection
        self.seqs: dict[str, int] = {}  # chat -> last seq sent to this client
        self.live_since_assigned: dict[str, int] = {}  # chat -> last_seq of its `assigned`, until its join
        # chat -> live messages kept back while the client's (re)join of that chat is pending: sent after
        # its history, so that a reconnecting client never gets a live message before older ones.
        self.held_back: dict[str, tuple[float, list[tuple[Frame, bool]]]] = {}  # chat -> (until, frames)
        self.release_tasks: set[asyncio.Task[None]] = set()
        self.process_id = await ensure_registered()
        await self.accept()
        socket_opened(self)  # to be told to reconnect if the channel layer was lost (routing.layer_watch)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        socket_closed(self)
        for task in list(getattr(self, "release_tasks", ())):
            task.cancel()
        await super().websocket_disconnect(message)

    # -- frames in ------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode("utf-8", "replace")) > validation.MAX_FRAME_BYTES:
            limit = validation.MAX_FRAME_BYTES
            await self.refuse("too_large", f"frames are limited to {limit} bytes", cost=BAD_FRAME)
            return
        try:
            frame = json.loads(raw)
        except ValueError:
            await self.refuse("invalid", "a frame must be a JSON object", cost=BAD_FRAME)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.refuse("invalid", "a frame must be a JSON object with a string type", cost=BAD_FRAME)
            return
        if not self.meter.spend(1.0):
            await self.refuse("rate_limited", "too many frames: slow down", frame=frame)
            return
        handler = getattr(self, "frame_" + frame["type"].replace("-", "_"), None)
        if handler is None or frame["type"].startswith("_"):
            await self.refuse("invalid", f"unknown frame type {frame['type'][:40]!r}", cost=BAD_FRAME)
            return
        try:
            await handler(frame)
        except Invalid as problem:
            await self.refuse(problem.code, problem.detail, frame=frame, cost=BAD_FRAME)
        except common.ServiceError as refused:
            await self.refuse(refused.reason if refused.reason in {"forbidden", "not_found"} else "invalid",
                              refused.detail, frame=frame)

    async def refuse(self, code: str, detail: str, *, frame: Frame | None = None, cost: float = 0.0) -> None:
        if code == "rate_limited" or (cost and not self.meter.spend(cost)):
            self.meter.strike()
            code = "rate_limited" if code != "too_large" else code
        cid = frame.get("client_id") if frame else None
        await self.send_json(frames.error_frame(code, detail, client_id=cid if isinstance(cid, str) else None))
        if self.meter.exhausted:
            await self.close(code=4429)

    async def send_json(self, frame: Frame) -> None:
        await self.send(text_data=json.dumps(frame))

    async def frame_ping(self, frame: Frame) -> None:
        await self.send_json(frames.pong_frame())

    # -- events out -----------------------------------------------------------------------------

    async def vr_event(self, event: dict[str, Any]) -> None:
        frame: Frame = event["frame"]
        join = event.get("join_chat")
        if join:
            # Assigned: live messages of the chat flow from here at once (spec/PROTOCOL.md: a client
            # need not join). The console also asks for the transcript with join {after}; what was
            # already sent live by then is left out of that history (send_history), so no line twice.
            self.live_since_assigned[join] = int(frame.get("last_seq") or 0)
            await self.channel_layer.group_add(chat_group(join), self.channel_name)
            self.seqs.setdefault(join, int(frame.get("last_seq") or 0))
        if frame.get("type") == "message":
            await self.deliver_message(frame, internal=bool(event.get("internal")))
        elif frame.get("type") == "typing" and frame.get("sender") == self.role:
            pass  # your own typing is not news to you
        else:
            await self.send_json(frame)
        leave = event.get("leave_chat")
        if leave:
            await self.channel_layer.group_discard(chat_group(leave), self.channel_name)
            self.seqs.pop(leave, None)
            self.live_since_assigned.pop(leave, None)

    async def deliver_message(self, frame: Frame, *, internal: bool) -> None:
        chat_id, seq = frame["chat"], int(frame["seq"])
        held = self.held_back.get(chat_id)
        if held is not None:
            if time.monotonic() < held[0]:
                held[1].append((frame, internal))
                return
            await self.release_held_back(chat_id)  # a client that never sent join: live from here
        last = self.seqs.get(chat_id)
        if last is not None and seq <= last:
            return  # already sent (a resume raced the live event)
        if last is not None and seq > last + 1:
            # The layer dropped something: fill the gap from the database, in order.
            for missing in await in_thread(_messages_after)(
                chat_id, last, for_patron=self.role == "patron", upto=seq - 1
            ):
                await self.send_json(missing)
        self.seqs[chat_id] = seq
        if internal and self.role == "patron":
            return
        await self.send_json(frame)

    async def send_history(self, chat_id: str, after: int) -> None:
        history = await in_thread(_messages_after)(chat_id, after, for_patron=self.role == "patron")
        assigned_at = self.live_since_assigned.pop(chat_id, None)
        sent_live = self.seqs.get(chat_id, 0)
        for frame in history:
            if assigned_at is not None and assigned_at < frame["seq"] <= sent_live:
                continue  # sent live since `assigned`, before this join: once is enough
            await self.send_json(frame)
        last = max([after, *(f["seq"] for f in history)])
        self.seqs[chat_id] = max(last, self.seqs.get(chat_id, 0))
        await self.release_held_back(chat_id)

    def hold_back(self, chat_id: str, seconds: float) -> None:
        """Keep `chat_id`'s live messages back until its history is sent (at most `seconds`)."""
        if chat_id in self.held_back:
            return
        entry: tuple[float, list[tuple[Frame, bool]]] = (time.monotonic() + seconds, [])
        self.held_back[chat_id] = entry
        if seconds != float("inf"):  # no join came: what was kept back goes out then, not with a next message
            task = asyncio.get_running_loop().create_task(self._release_at(chat_id, entry, seconds))
            self.release_tasks.add(task)
            task.add_done_callback(self.release_tasks.discard)

    async def _release_at(self, chat_id: str, entry: tuple[float, list[tuple[Frame, bool]]], seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.held_back.get(chat_id) is entry:
            await self.release_held_back(chat_id)

    async def release_held_back(self, chat_id: str) -> None:
        """Deliver what was kept back for `chat_id` (repeats of the history are dropped by seq)."""
        for frame, internal in self.held_back.pop(chat_id, (0.0, []))[1]:
            await self.deliver_message(frame, internal=internal)


# --- patrons ---------------------------------------------------------------------------------------


def _patron_join(chat_id: str, token: str, origin: str | None, channel_name: str,
                 process_id: str) -> tuple[Chat | None, Frame | None]:
    try:
        chat = access.patron_chat(chat_id, token, origin)
    except access.PatronRefused:
        return None, None
    presence.patron_connected(chat, channel_name, process_id, timezone.now())
    chat.refresh_from_db()
    return chat, frames.patron_state_frame(chat)


class PatronConsumer(ProtocolConsumer):
    role = "patron"

    async def connect(self) -> None:
        self.chat_id: str | None = None
        await super().connect()

    async def disconnect(self, code: int) -> None:
        if self.chat_id:
            await self.channel_layer.group_discard(chat_group(self.chat_id), self.channel_name)
            await in_thread(presence.patron_disconnected)(self.channel_name, timezone.now())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.chat_id is None:
            # Nothing but a join (or a ping) before the chat is known.
            try:
                frame = json.loads(text_data or "")
            except ValueError:
                frame = None
            if isinstance(frame, dict) and frame.get("type") in {"join", "ping"}:
                await super().receive(text_data, bytes_data)
                return
            await self.send_json(frames.error_frame("forbidden", "send join first"))
            await self.close(code=4403)
            return
        await super().receive(text_data, bytes_data)

    async def frame_join(self, frame: Frame) -> None:
        if self.chat_id is not None:
            raise Invalid("already joined")
        f = Fields(frame)
        chat_id, after = f.chat_id(), f.integer("after")
        f.check()
        token = frame.get("token")
        if not isinstance(token, str):
            token = ""
        self.hold_back(chat_id, float("inf"))  # released by send_history below
        await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
        chat, state = await in_thread(_patron_join)(
            chat_id, token, header(self.scope, b"origin"), self.channel_name, self.process_id)
        if chat is None or state is None:
            self.held_back.pop(chat_id, None)
            await self.channel_layer.group_discard(chat_group(chat_id), self.channel_name)
            await self.send_json(frames.error_frame("forbidden", "wrong chat or token"))
            await self.close(code=4403)
            return
        self.chat_id = chat_id
        await self.send_json(frames.joined_frame(chat_id))
        await self.send_json(state)
        await self.send_history(chat_id, after)

    async def frame_message(self, frame: Frame) -> None:
        assert self.chat_id
        f = Fields(frame)
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        message, created = await in_thread(chats.message_post)(
            self.chat_id, sender="patron", body=body, client_id=cid, now=timezone.now())
        if not created:
            await self.send_json(frames.message_frame(message))

    async def frame_typing(self, frame: Frame) -> None:
        assert self.chat_id
        await self.channel_layer.group_send(chat_group(self.chat_id), {
            "type": "vr.event", "frame": frames.typing_frame(self.chat_id, "patron")})

    async def frame_end(self, frame: Frame) -> None:
        assert self.chat_id
        await in_thread(chats.chat_end)(self.chat_id, timezone.now(), by="patron")


# --- staff -----------------------------------------------------------------------------------------


def _hello(profile: StaffProfile, channel_name: str, process_id: str) -> tuple[Frame, list[str]]:
    state = presence.staff_connected(profile, channel_name, process_id, timezone.now())
    hello = frames.hello_frame(profile, queues=librarian_queues(profile), presence=state.presence,
                               chats=state.chats, offers=state.offers, shift=state.shift)
    return hello, [c.pk for c in state.chats]


def _session_expiry(key: str) -> datetime | None:
    return Session.objects.filter(session_key=key).values_list("expire_date", flat=True).first()


def _presence_set(profile: StaffProfile, status: str) -> tuple[str, Frame]:
    result = presence.presence_set(profile, status, timezone.now())
    return result, shifts.shift_state(profile)


# "I'm staying on" for at most this long at once: a console cannot hold a librarian available all night.
STAY_ON_MAX_MINUTES = 240


def _holds(profile_id: int, chat_id: str) -> bool:
    return Chat.objects.filter(pk=chat_id, librarian_id=profile_id, state=ChatState.ACTIVE).exists()


class StaffConsumer(ProtocolConsumer):
    role = "librarian"

    async def connect(self) -> None:
        self.profile: StaffProfile | None = None
        await super().connect()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.send_json(frames.error_frame("forbidden", "sign in first"))
            await self.close(code=4401)
            return
        if not access.origin_allowed(header(self.scope, b"origin"), None):
            await self.send_json(frames.error_frame("forbidden", "origin not allowed"))
            await self.close(code=4403)
            return
        profile = await in_thread(access.staff_of)(user)
        if profile is None:
            await self.send_json(frames.error_frame("forbidden", "not a staff account"))
            await self.close(code=4403)
            return
        self.profile = profile
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        if self.session_key:
            self.session_watch = asyncio.get_running_loop().create_task(self._watch_session(self.session_key))
        await self.channel_layer.group_add(librarian_group(profile.pk), self.channel_name)
        hello, held = await in_thread(_hello)(profile, self.channel_name, self.process_id)
        # A console resumes each held chat with join {after}; until it does (at most JOIN_WAIT s), live
        # messages of that chat are kept back, then sent after the history the join asked for.
        for chat_id, chat in zip(held, hello["chats"], strict=True):
            self.hold_back(chat_id, JOIN_WAIT)
            await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
            self.seqs[chat_id] = chat["last_seq"]
        await self.send_json(hello)

    async def _watch_session(self, key: str) -> None:
        """Close this socket when its session expires (signing out is announced: see routing.signals)."""
        while True:
            expires = await in_thread(_session_expiry)(key)
            if expires is None or expires <= timezone.now():
                await self.send_json(frames.error_frame("forbidden", "your session has ended"))
                await self.close(code=4401)
                return
            await asyncio.sleep(min(3600.0, max(0.5, (expires - timezone.now()).total_seconds() + 0.1)))

    async def disconnect(self, code: int) -> None:
        watch = getattr(self, "session_watch", None)
        if watch is not None:
            watch.cancel()
        if self.profile is None:
            return
        await self.channel_layer.group_discard(librarian_group(self.profile.pk), self.channel_name)
        for chat_id in list(self.seqs):
            await self.channel_layer.group_discard(chat_group(chat_id), self.channel_name)
        await in_thread(presence.staff_disconnected)(self.channel_name, timezone.now())

    async def vr_close(self, event: dict[str, Any]) -> None:
        """Signed out: close the sockets of that session (other devices keep theirs)."""
        if event.get("session") in (None, self.session_key):
            await self.send_json(frames.error_frame("forbidden", "signed out"))
            await self.close(code=int(event.get("code", 4401)))

    def _me(self) -> StaffProfile:
        assert self.profile is not None
        return self.profile

    async def frame_presence(self, frame: Frame) -> None:
        f = Fields(frame)
        status = f.choice("status", ("available", "away"))
        f.check()
        result, shift = await in_thread(_presence_set)(self._me(), status)
        await self.send_json(frames.presence_frame(result))
        # Sent here rather than through the channel layer, so that it always follows the answer.
        await self.send_json(shift)

    async def frame_stay_on(self, frame: Frame) -> None:
        """Answered with a shift (or shift_ending) frame to every console of this librarian."""
        f = Fields(frame)
        minutes = f.integer("minutes", minimum=1, maximum=STAY_ON_MAX_MINUTES)
        f.check()
        await in_thread(shifts.shift_stay_on)(self._me(), timezone.now(),
                                                seconds=minutes * 60 if minutes else None)

    async def frame_accept(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        try:
            await in_thread(offers.chat_accept)(self._me(), chat_id, timezone.now())
        except common.ServiceError as refused:
            await self.send_json(frames.accept_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_decline(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        await in_thread(offers.chat_decline)(self._me(), chat_id, timezone.now())

    async def frame_message(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        internal = frame.get("internal") is True
        message, created = await in_thread(chats.message_post)(
            chat_id, sender="librarian", body=body, client_id=cid, now=timezone.now(), librarian=self._me(),
            internal=internal)
        if not created:
            await self.send_json(frames.message_frame(message))

    async def frame_typing(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        if chat_id not in self.seqs:
            raise Invalid("you do not hold that chat")
        await self.channel_layer.group_send(chat_group(chat_id), {
            "type": "vr.event", "frame": frames.typing_frame(chat_id, "librarian")})

    async def frame_transfer(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        rule = '{"queue": slug} or {"librarian": username}'
        target = f.object("to", rule, queue=str, librarian=str)
        if target and not (target.get("queue") or target.get("librarian")):
            f.problem("to", f"must be {rule}")
        note = f.text("note", max_len=validation.MAX_NOTE, strip=False)
        f.check()
        try:
            await in_thread(transfers.chat_transfer)(
                self._me(), chat_id, timezone.now(), queue=target.get("queue"),
                to_librarian=target.get("librarian") if not isinstance(target.get("queue"), str) else None,
                note=note)
        except common.ServiceError as refused:
            await self.send_json(frames.transfer_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_refer(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        target = f.object("to", '{"library": slug}', required=False, library=str)
        note = f.text("note", max_len=validation.MAX_NOTE, strip=False)
        f.check()
        ticket = await in_thread(followups.chat_refer)(
            self._me(), chat_id, timezone.now(), library_slug=target.get("library") or None, note=note)
        await self.send_json(frames.referred_frame(chat_id, ticket.pk))

    async def frame_end(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        await in_thread(chats.chat_end)(chat_id, timezone.now(), by="librarian",
                                                        librarian=self._me())

    async def frame_join(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id, after = f.chat_id(), f.integer("after")
        f.check()
        self.hold_back(chat_id, JOIN_WAIT)  # nothing live overtakes the history asked for
        if not await in_thread(_holds)(self._me().pk, chat_id):
            await self.release_held_back(chat_id)
            raise common.ServiceError("not_found", "you do not hold that chat")
        await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
        await self.send_history(chat_id, after)
