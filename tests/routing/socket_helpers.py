"""Helpers for the socket tests (the patron and staff sockets through Channels' WebsocketCommunicator):
a small consortium with staff, the two sockets, and waiting for a frame."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from routing.models import Chat
from routing.services import chats
from routing.ws_urls import websocket_urlpatterns
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def socket_world() -> dict[str, Any]:
    """Consortium `sock` (one allowed patron origin): library alpha (zip 10001) with librarians a1 and
    a2, library beta with b1, who also serves the shared queue statewide."""
    consortium = make_consortium("sock", allowed_origins=["https://library.example.org"])
    statewide = make_shared_queue(consortium, "statewide")
    alpha = make_library(consortium, "alpha", zip_codes=["10001"])
    beta = make_library(consortium, "beta")
    a1 = make_staff(alpha, "a1")
    a2 = make_staff(alpha, "a2")
    b1 = make_staff(beta, "b1", queues=[statewide])
    return {"consortium": consortium, "alpha": alpha, "beta": beta, "a1": a1, "a2": a2, "b1": b1}


async def patron_socket(chat_id: str, token: str, after: int = 0,
                        origin: bytes = b"http://127.0.0.1:8000") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/patron/", headers=[(b"origin", origin)])
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "join", "chat": chat_id, "token": token, "after": after})
    return comm


async def staff_socket(profile: Any, origin: bytes = b"http://127.0.0.1:8000") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/staff/", headers=[(b"origin", origin)])
    comm.scope["user"] = await database_sync_to_async(lambda: profile.user)()
    connected, _ = await comm.connect()
    assert connected
    return comm


async def expect(comm: WebsocketCommunicator, kind: str, timeout: float = 3, **match: Any) -> dict[str, Any]:
    """The next frame of this type (skipping others), matching the given fields."""
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        if frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items()):
            return frame


async def start_chat(w: dict[str, Any], **fields: Any) -> tuple[Chat, str]:
    fields.setdefault("library_slug", "alpha")
    return await database_sync_to_async(chats.chat_start)(
        consortium=w["consortium"], question="Do you have museum passes?", now=timezone.now(), **fields)


async def available(comm: WebsocketCommunicator) -> dict[str, Any]:
    hello = await expect(comm, "hello")
    await comm.send_json_to({"type": "presence", "status": "available"})
    await expect(comm, "presence", status="available")
    return hello


async def accept_offer(comm: WebsocketCommunicator, chat: Chat) -> dict[str, Any]:
    """The librarian on `comm` waits for the offer of `chat`, accepts it, and gets its `assigned` frame."""
    await expect(comm, "offer", chat=chat.pk)
    await comm.send_json_to({"type": "accept", "chat": chat.pk})
    return await expect(comm, "assigned", chat=chat.pk)


async def a1_holding_a_chat(
    w: dict[str, Any], **chat_fields: Any
) -> tuple[WebsocketCommunicator, Chat, str, dict[str, Any]]:
    """Librarian a1's console, available, holding a chat just started at alpha: the socket, the chat,
    the patron's token and a1's `assigned` frame."""
    a1 = await staff_socket(w["a1"])
    await available(a1)
    chat, token = await start_chat(w, **chat_fields)
    assigned = await accept_offer(a1, chat)
    return a1, chat, token, assigned
