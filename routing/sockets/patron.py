"""The patron's socket (/ws/patron/): join a chat with its token, then messages, typing, end."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from consortium import ratelimit
from routing import access, admission, frames, sharing, validation
from routing.events import chat_group
from routing.models import LIVE_STATES, Chat
from routing.services import chats, presence, shares
from routing.sockets.base import Frame, ProtocolConsumer, header
from routing.sockets.lines import line_post
from routing.sockets.sharing import SharingFrames
from routing.threads import in_thread
from routing.validation import Fields, Invalid


def _patron_chat(chat_id: str, token: str, origin: str | None) -> Chat | None:
    try:
        return access.patron_chat(chat_id, token, origin)
    except access.PatronRefused:
        return None


def _patron_connect(chat: Chat, channel_name: str, process_id: str) -> bool:
    return presence.patron_connected(chat, channel_name, process_id, timezone.now(),
                                     max_connections=ratelimit.PATRON_SOCKETS_PER_CHAT)


def _patron_state(chat: Chat) -> Frame:
    return frames.patron_state_frame(access.patron_chat_again(chat.pk) or chat)


class PatronConsumer(SharingFrames, ProtocolConsumer):
    role = "patron"

    async def connect(self) -> None:
        self.chat_id: str | None = None
        self.carried = False  # counted by admission as a chat this process carries (see carry)
        await super().connect()

    def carry(self, state: str) -> None:
        """Count this socket's chat as carried by this process while it goes on (routing.admission),
        and no longer once it has ended: a patron who reads the transcript of an ended chat keeps the
        socket open, and costs the process nothing."""
        live = state in LIVE_STATES
        if live and not self.carried:
            admission.ADMISSION.chat_joined()
        elif self.carried and not live:
            admission.ADMISSION.chat_left()
        self.carried = live

    async def disconnect(self, code: int) -> None:
        self.carry("closed")
        if self.chat_id:
            await self.shares_release(media_only=True)
            await self.channel_layer.group_discard(chat_group(self.chat_id), self.channel_name)
            await in_thread(presence.patron_disconnected)(self.channel_name, timezone.now())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.chat_id is None:
            # Nothing but a join (or a ping) before the chat is known. A frame that cannot be read (not
            # JSON, too large, nested too deep) is answered as after join: an error frame, socket open.
            raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
            try:
                frame = validation.json_object(raw, what="a frame")
            except Invalid:
                frame = None
            if frame is None or frame.get("type") in {"join", "ping"}:
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
        # The token first: nothing of the chat reaches a socket that has not shown it (docs/protocol.md).
        chat = await in_thread(_patron_chat)(chat_id, token, header(self.scope, b"origin"))
        if chat is None:
            await self.send_json(frames.error_frame("forbidden", "wrong chat or token"))
            await self.close(code=4403)
            return
        if not await in_thread(_patron_connect)(chat, self.channel_name, self.process_id):
            await self.send_json(frames.error_frame(
                "rate_limited", f"this chat has {ratelimit.PATRON_SOCKETS_PER_CHAT} sockets open already: "
                                "close one, or use it"))
            await self.close(code=4429)
            return
        self.chat_id = chat_id
        # Live messages from here are kept back until the history (read after this) is sent.
        self.hold_back(chat_id, float("inf"))
        await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
        state = await in_thread(_patron_state)(chat)
        self.carry(str(state["state"]))  # a change after this read comes as an event, after this join
        await self.send_json(frames.joined_frame(chat_id))
        await self.send_json(state)
        await self.send_history(chat_id, after)

    async def vr_event(self, event: dict[str, Any]) -> None:
        await super().vr_event(event)
        frame = event["frame"]
        if frame.get("type") == "state" and frame.get("chat") == self.chat_id:
            self.carry(str(frame.get("state")))

    async def frame_message(self, frame: Frame) -> None:
        assert self.chat_id
        f = Fields(frame)
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        try:
            message, created = await line_post(self.chat_id, sender="patron", body=body, client_id=cid,
                                               counted=True)  # the same count as the HTTP fallback's
        except chats.RateLimited as limited:
            # Told, with the client_id of the line not stored, so the page can offer to send it again;
            # not a strike against this socket (the count is the chat's, shared with its other sockets).
            await self.send_json(frames.error_frame("rate_limited", limited.detail, client_id=cid))
            return
        if not created:
            await self.answer_resent(frames.message_frame(message))

    async def frame_typing(self, frame: Frame) -> None:
        assert self.chat_id
        await self.channel_layer.group_send(chat_group(self.chat_id), {
            "type": "vr.event", "frame": frames.typing_frame(self.chat_id, "patron")})

    async def frame_end(self, frame: Frame) -> None:
        assert self.chat_id
        await in_thread(chats.chat_end)(self.chat_id, timezone.now(), by="patron")



    # -- sharing (routing.sockets.sharing; docs/protocol.md, issue 19) ---------------------------

    async def frame_share_consent(self, frame: Frame) -> None:
        """The patron's yes or no to a share_request. Yes binds this socket to the share."""
        assert self.chat_id
        f = Fields(frame)
        share_id = sharing.share_id_of(f)
        consent = frame.get("consent")
        if not isinstance(consent, bool):
            f.problem("consent", "must be true or false")
        unsupported = f.choice("reason", ("unsupported",), required=False) == "unsupported"
        f.check()
        share = await in_thread(shares.share_consent)(self.chat_id, share_id, timezone.now(), consent=consent,
                                                      unsupported=unsupported and not consent)
        if consent:
            self.share_bind(share.pk, self.chat_id, share.kind)

    async def frame_share_end(self, frame: Frame) -> None:
        assert self.chat_id
        f = Fields(frame)
        share_id = sharing.share_id_of(f)
        reason = f.choice("reason", ("stopped", "failed"), required=False) or "stopped"
        f.check()
        await in_thread(shares.share_end)(self.chat_id, share_id, timezone.now(), by="patron", reason=reason)
        self.shares.pop(share_id, None)

    async def frame_share_page(self, frame: Frame) -> None:
        """The page the patron is on, for the librarian bound to the page share (any of the patron's
        sockets may send it: the widget's socket is new on every page of the site). Relayed, not kept."""
        assert self.chat_id
        f = Fields(frame)
        share_id = sharing.share_id_of(f)
        url = sharing.web_address(f, "url")
        title = f.text("title", max_len=sharing.MAX_PAGE_TITLE)
        f.check()
        await self.relay("share_page", self.chat_id, share_id, {"url": url, "title": title})
