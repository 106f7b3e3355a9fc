"""The coordinator socket `/ws/coordinator/?consortium=<slug>`: the live board, kept current.

On connect it sends a `board` frame (coordination.board.board_snapshot), then reads the snapshot
again every `REFRESH_SECONDS` and sends it when something changed. Polling the database keeps the
board right whichever process a change happened on, and costs a bounded number of queries per
coordinator every few seconds; nothing in routing has to know the board exists. Each refresh asks
again whether the user still coordinates the consortium (a role taken away closes the socket with
4403 within REFRESH_SECONDS). Clients send nothing but `ping`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.utils import timezone, translation

from consortium.language import staff_language
from consortium.models import Consortium
from coordination.access import Refused, coordinator_of
from coordination.board import board_snapshot, without_clock
from routing.access import origin_allowed
from routing.sockets.base import header
from routing.validation import Invalid, json_object

REFRESH_SECONDS = 2.0
# Even when nothing changed, a fresh snapshot this often keeps waits and alert minutes exact.
RESEND_SECONDS = 30.0


def _consortium_for(user: Any, slug: str) -> Consortium:
    if not slug:
        profile = getattr(user, "staff", None)
        slug = profile.library.consortium.slug if profile is not None else ""
    return coordinator_of(user, slug).consortium


def _board_if_still_coordinator(user_id: int, consortium: Consortium) -> dict[str, Any]:
    """The board, after asking again whether this user coordinates the consortium (Refused if not).

    The user is read afresh: a coordinator whose role is taken away, or whose account or staff
    profile is switched off, loses the board at the next refresh, on whichever process it runs."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise Refused(403, "no such account")
    coordinator_of(user, consortium.slug)
    with translation.override(staff_language(user)):  # the alerts' words, in the coordinator's language
        return board_snapshot(consortium, timezone.now())


class CoordinatorConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.poller: asyncio.Task[None] | None = None
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse("sign in first", 4401)
            return
        if not origin_allowed(header(self.scope, b"origin"), None):
            await self._refuse("origin not allowed", 4403)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.consortium = await database_sync_to_async(_consortium_for)(user, query.get("consortium", [""])[0])
        except Refused as refused:
            await self._refuse(refused.detail, 4403)
            return
        self.user_id = user.pk
        self.poller = asyncio.get_running_loop().create_task(self._poll())

    async def _refuse(self, detail: str, code: int) -> None:
        await self.send(json.dumps({"type": "error", "code": "forbidden", "detail": detail}))
        await self.close(code=code)

    async def _poll(self) -> None:
        last: dict[str, Any] | None = None
        sent_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                snapshot = await database_sync_to_async(_board_if_still_coordinator)(self.user_id, self.consortium)
            except Refused as refused:
                await self._refuse(refused.detail, 4403)
                return
            current = without_clock(snapshot)
            if current != last or loop.time() - sent_at >= RESEND_SECONDS:
                await self.send(json.dumps(snapshot))
                last, sent_at = current, loop.time()
            await asyncio.sleep(REFRESH_SECONDS)

    async def disconnect(self, code: int) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Anything but a ping is ignored, whatever it is (a frame nested too deep included: validation).
        with contextlib.suppress(Invalid):
            if json_object(text_data or "", what="a frame").get("type") == "ping":
                await self.send(json.dumps({"type": "pong"}))
