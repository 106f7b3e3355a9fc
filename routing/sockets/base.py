"""What the patron and staff sockets of docs/protocol.md share: frame parsing and metering, seq
delivery with gap-fill from the database, and the hold-back of live messages behind a resume.

Each socket (routing.sockets.patron, routing.sockets.staff) parses and checks a frame, calls a
service in a worker thread, and answers. Events from other processes arrive through the channel
layer (`vr.event`); message frames carry a sequence number, and a socket that sees a gap fills it
from the database before going on, so a client gets every message once and in order even when the
layer drops one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.functional import Promise

from consortium import ratelimit
from routing import frames, validation, whispers
from routing.events import chat_group
from routing.layer_watch import socket_closed, socket_opened
from routing.process import ensure_registered
from routing.selectors import messages_after
from routing.services import common
from routing.sockets.sequence import Accounted, BusyClock, HeldBack
from routing.threads import in_thread
from routing.validation import Fields, Invalid

logger = logging.getLogger(__name__)
Frame = dict[str, Any]

BAD_FRAME = ratelimit.SOCKET_FRAMES.bad_frame_cost  # what a frame that is refused unread costs


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


def _messages_after(chat_id: str, after: int, *, for_patron: bool, reader: int | None,
                    upto: int | None = None) -> list[Frame]:
    return [frames.message_frame(m) for m in messages_after(chat_id, after, for_patron=for_patron, reader=reader,
                                                            upto=upto)]


class ProtocolConsumer(AsyncWebsocketConsumer):
    role = ""
    reader_id: int | None = None  # the librarian behind a staff socket (routing.whispers)

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
        busy = getattr(self, "busy", None)  # made in connect (the first message dispatched)
        if busy is None:
            await handler(message)
            return
        busy.start(time.monotonic())
        try:
            await handler(message)
        finally:
            busy.stop(time.monotonic())

    async def connect(self) -> None:
        self.meter = ratelimit.Meter(ratelimit.SOCKET_FRAMES)  # frames in, per connection
        self.seqs: dict[str, int] = {}  # chat -> last seq sent to this client
        self.accounted: dict[str, Accounted] = {}  # chat -> the seqs this socket has sent (or need not)
        self.sending = asyncio.Lock()  # see deliver_message
        # chat -> live messages kept back while the client's (re)join of that chat is pending: sent after
        # its history, so that a reconnecting client never gets a live message before older ones.
        self.held_back: dict[str, HeldBack] = {}
        self.busy = BusyClock()  # the window above counts only the time this socket was free to read a join
        self.release_tasks: set[asyncio.Task[None]] = set()
        self.shares: dict[int, tuple[str, str]] = {}  # the shares this socket is bound to (sockets.sharing)
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
        try:
            frame = validation.json_object(raw, what="a frame")
        except Invalid as problem:
            await self.refuse(problem.code, problem.detail, cost=BAD_FRAME)
            return
        if not isinstance(frame.get("type"), str):
            await self.refuse("invalid", "a frame must be a JSON object with a string type", cost=BAD_FRAME)
            return
        if frame["type"] == "join" and self.meter.tokens > -self.meter.bucket.size:
            # Not refused for rate (short of a flood of joins): a console resuming after a reconnect
            # sends a join per chat and its unsent lines at once, and a join refused left that chat's
            # history unsent for good (its live messages went out after the hold-back window: a gap
            # never filled). Charged all the same, so the frames after it wait for the refill.
            self.meter.charge(1.0)
        elif not self.meter.spend(1.0):
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
        await self.send(text_data=json.dumps(frame, default=self.words))

    def words(self, value: object) -> str:
        """A refusal's `detail` written with gettext_lazy (routing.services), in the language this socket's
        reader reads: English here (the patron's side; the protocol's details are not for patrons to
        read); the staff socket's override gives the librarian's. Only called for what json cannot write
        by itself, so a frame without one costs nothing more."""
        if isinstance(value, Promise):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    async def frame_ping(self, frame: Frame) -> None:
        await self.send_json(frames.pong_frame())

    # -- events out -----------------------------------------------------------------------------

    async def vr_event(self, event: dict[str, Any]) -> None:
        frame: Frame = event["frame"]
        only_role, only_share = event.get("only_role"), event.get("only_share")
        if only_role is not None and only_role != self.role:
            return  # for the other side of the chat only (a share's request, its signalling)
        if only_share is not None and self.shares.get(only_share, ("",))[0] != frame.get("chat"):
            return  # a share's signalling: for the one socket bound to it on that side
        join = event.get("join_chat")
        if join:
            # Assigned: live messages of the chat flow from here at once (docs/protocol.md: a client
            # need not join). The console also asks for the transcript with join {after}; what was
            # already sent live by then is left out of that history (send_history), so no line twice.
            await self.channel_layer.group_add(chat_group(join), self.channel_name)
            if join not in self.seqs:
                self.seqs[join] = int(frame.get("last_seq") or 0)
                self.accounted[join] = Accounted()  # nothing of it sent to this socket yet
        if frame.get("type") == "message":
            await self.deliver_message(frame, hidden=self.hides(internal=bool(event.get("internal")),
                                                                audience=event.get("audience")))
        elif frame.get("type") == "typing" and frame.get("sender") == self.role:
            pass  # your own typing is not news to you
        else:
            await self.send_json(frame)
        if frame.get("type") == "share_ended":
            self.shares.pop(int(frame["share"]), None)  # ended for both sides: nothing more to relay
        leave = event.get("leave_chat")
        if leave:
            await self.channel_layer.group_discard(chat_group(leave), self.channel_name)
            self.seqs.pop(leave, None)
            self.accounted.pop(leave, None)

    # Every path that emits a message frame (live delivery, gap fill, history, the release of what was
    # kept back, the answer to a client_id sent again) runs under `self.sending`: the release at the
    # end of the hold-back window is a task of its own, and it must not interleave with a history or a
    # gap fill that is waiting for the database, or both would send the same seqs.

    def hides(self, *, internal: bool, audience: list[int] | None) -> bool:
        """Is a message kept from this socket's client? An internal note from the patron; a whisper
        from staff outside its audience (routing.whispers). Its seq is accounted for all the same."""
        if self.role == "patron":
            return internal
        return whispers.hidden_from(self.reader_id, audience)

    async def deliver_message(self, frame: Frame, *, hidden: bool) -> None:
        async with self.sending:
            await self._deliver(frame, hidden=hidden)

    async def _emit(self, chat_id: str, frame: Frame, *, hidden: bool) -> None:
        """Send `frame` unless this socket has accounted for its seq already; account for it. A
        `hidden` one is accounted for and never sent (an internal note to a patron, another's whisper)."""
        seq = int(frame["seq"])
        accounted = self.accounted.setdefault(chat_id, Accounted())
        if accounted.has(seq):
            return
        accounted.add(seq)
        if hidden:
            return
        await self.send_json(frame)

    async def _deliver(self, frame: Frame, *, hidden: bool) -> None:
        chat_id, seq = frame["chat"], int(frame["seq"])
        held = self.held_back.get(chat_id)
        if held is not None:
            if held.open_at(self.busy, time.monotonic()):
                held.frames.append((frame, hidden))
                return
            await self._release(chat_id)  # a client that never sent join: live from here
        accounted = self.accounted.get(chat_id)
        if accounted is not None and accounted.has(seq):
            return  # already sent (a resume raced the live event)
        last = self.seqs.get(chat_id)
        if last is not None and seq > last + 1:
            # The layer dropped something: fill the gap from the database, in order. What the read
            # leaves out (internal notes for a patron, others' whispers for staff) is accounted for too.
            for missing in await in_thread(_messages_after)(
                chat_id, last, for_patron=self.role == "patron", reader=self.reader_id, upto=seq - 1
            ):
                await self._emit(chat_id, missing, hidden=False)
            gap = self.accounted.setdefault(chat_id, Accounted())
            for skipped in range(last + 1, seq):
                gap.add(skipped)
        self.seqs[chat_id] = max(seq, last or 0)
        await self._emit(chat_id, frame, hidden=hidden)

    async def send_history(self, chat_id: str, after: int) -> None:
        """Messages with seq > `after`, in order, but none this socket has sent already (live since
        `assigned`, or since the hold-back window ended before this join came); then what was kept
        back. The history is read under the lock, so nothing live goes out between its read and its
        sending."""
        async with self.sending:
            history = await in_thread(_messages_after)(chat_id, after, for_patron=self.role == "patron",
                                                       reader=self.reader_id)
            accounted = self.accounted.setdefault(chat_id, Accounted())
            for frame in history:
                await self._emit(chat_id, frame, hidden=False)
            last = max([after, *(f["seq"] for f in history)])
            accounted.add_upto(last)  # the client has everything up to here now (or said it had)
            self.seqs[chat_id] = max(last, self.seqs.get(chat_id, 0))
            await self._release(chat_id)

    async def answer_resent(self, frame: Frame, *, hidden: bool = False) -> None:
        """A client_id sent again, stored before as `frame`. If this socket has sent that seq already,
        the stored message goes out again as the contract says, marked `resent` (docs/protocol.md).
        Else it goes out as a live message would: in order, kept back behind a pending join."""
        chat_id, seq = frame["chat"], int(frame["seq"])
        async with self.sending:
            accounted = self.accounted.get(chat_id)
            if accounted is not None and accounted.has(seq):
                await self.send_json(frames.resent_frame(frame))
                return
            if chat_id in self.held_back or (self.seqs.get(chat_id) or 0) < seq:
                await self._deliver(frame, hidden=hidden)
                return
            # Below the live base but never sent here (a join is still to come): sent now; the join's
            # history will leave it out.
            await self._emit(chat_id, frame, hidden=hidden)

    def hold_back(self, chat_id: str, seconds: float) -> None:
        """Keep `chat_id`'s live messages back until its history is sent (at most `seconds` of the
        socket's free time: sequence.HeldBack). Called again with `inf` when the join is being
        answered: then nothing goes out before its history, however long the database takes to answer it."""
        held = self.held_back.get(chat_id)
        if held is not None and (seconds != float("inf") or held.seconds == float("inf")):
            return
        now = time.monotonic()
        entry = HeldBack(now, seconds, self.busy.spent(now), held.frames if held else [])
        self.held_back[chat_id] = entry  # a task waiting for an earlier entry now finds it gone
        if seconds != float("inf"):  # no join came: what was kept back goes out then, not with a next message
            task = asyncio.get_running_loop().create_task(self._release_at(chat_id, entry))
            self.release_tasks.add(task)
            task.add_done_callback(self.release_tasks.discard)

    async def _release_at(self, chat_id: str, entry: HeldBack) -> None:
        while (left := entry.until(self.busy, time.monotonic()) - time.monotonic()) > 0:
            await asyncio.sleep(left)  # again if the socket was busy meanwhile: the window grew
        async with self.sending:
            if self.held_back.get(chat_id) is entry:
                await self._release(chat_id)

    async def release_held_back(self, chat_id: str) -> None:
        async with self.sending:
            await self._release(chat_id)

    async def _release(self, chat_id: str) -> None:
        """Deliver what was kept back for `chat_id` (repeats of the history are dropped by seq)."""
        held = self.held_back.pop(chat_id, None)
        for frame, hidden in held.frames if held is not None else []:
            await self._deliver(frame, hidden=hidden)


