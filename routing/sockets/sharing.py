"""The sharing frames both sockets speak (docs/protocol.md, "Additions (issue 19: sharing)"): the relay of
WebRTC signalling between the two sockets bound to a share, and the end of a share.

A socket is bound to a share when it asked for it (the librarian's) or consented to it (the patron's).
Signalling (`share_offer`, `share_answer`, `share_ice`) is accepted only from a bound socket and
delivered only to the socket bound on the other side (the `only_role` and `only_share` controls that
ProtocolConsumer.vr_event honours), through the chat's group: the two may be on different web
processes. Nothing of it is stored; a relay needs no database round trip.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from routing import frames, sharing
from routing.events import chat_group
from routing.services import shares
from routing.threads import in_thread
from routing.validation import Fields, Invalid

Frame = dict[str, Any]


class SharingFrames:
    """Mixed into PatronConsumer and StaffConsumer (after ProtocolConsumer's connect set `self.shares`)."""

    role: str
    shares: dict[int, tuple[str, str]]  # share id -> (chat id, kind), for the shares this socket is bound to
    channel_layer: Any

    def share_bind(self, share_id: int, chat_id: str, kind: str) -> None:
        self.shares[share_id] = (chat_id, kind)

    def bound_share(self, f: Fields) -> tuple[int, str]:
        share_id = sharing.share_id_of(f)
        f.check()
        bound = self.shares.get(share_id)
        if bound is None:
            raise Invalid("you are not part of that share", fields={"share": ["is not a share of this socket"]})
        return share_id, bound[0]

    async def relay(self, kind: str, chat_id: str, share_id: int, payload: dict[str, Any]) -> None:
        other = "patron" if self.role == "librarian" else "librarian"
        await self.channel_layer.group_send(chat_group(chat_id), {
            "type": "vr.event", "frame": frames.share_signal_frame(kind, chat_id, share_id, self.role, payload),
            "only_role": other, "only_share": share_id})

    async def frame_share_offer(self, frame: Frame) -> None:
        f = Fields(frame)
        sdp = sharing.sdp_of(f)
        share_id, chat_id = self.bound_share(f)
        await self.relay("share_offer", chat_id, share_id, {"sdp": sdp})

    async def frame_share_answer(self, frame: Frame) -> None:
        f = Fields(frame)
        sdp = sharing.sdp_of(f)
        share_id, chat_id = self.bound_share(f)
        await self.relay("share_answer", chat_id, share_id, {"sdp": sdp})

    async def frame_share_ice(self, frame: Frame) -> None:
        f = Fields(frame)
        candidates = sharing.candidates_of(f)
        share_id, chat_id = self.bound_share(f)
        await self.relay("share_ice", chat_id, share_id, {"candidates": candidates})

    async def shares_release(self, *, media_only: bool) -> None:
        """This socket is closing: the shares bound to it end (a patron's page share excepted when
        `media_only`: it outlives a page load, the widget's socket with it)."""
        ended = [sid for sid, (_, kind) in self.shares.items() if not media_only or kind in sharing.MEDIA_KINDS]
        if ended:
            chats = {sid: self.shares[sid][0] for sid in ended}
            await in_thread(shares.shares_end_for_socket)(ended, chats, timezone.now())
