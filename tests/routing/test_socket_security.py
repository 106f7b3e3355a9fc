"""Issue 13, items 5, 10 and 11 through Channels' WebsocketCommunicator: sockets per chat, the message
rate a chat's transports share, a switched-off librarian or coordinator losing their sockets, and
the order of the checks on join and on a repeated client_id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.utils import timezone

from consortium import ratelimit
from coordination import consumers as coordinator_consumers
from libraries.models import StaffProfile
from routing import frames
from routing.events import chat_group
from routing.models import Connection, Message
from routing.services import chats
from routing.ws_urls import websocket_urlpatterns
from tests.routing.socket_helpers import (
    a1_holding_a_chat,
    available,
    expect,
    patron_socket,
    socket_world,
    staff_socket,
    start_chat,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]


async def outputs_until_closed(comm: WebsocketCommunicator, timeout: float = 5) -> tuple[list[dict[str, Any]], int]:
    """Every frame the socket sends up to its close, and the close code."""
    sent: list[dict[str, Any]] = []
    while True:
        out = await comm.receive_output(timeout=timeout)
        if out["type"] == "websocket.close":
            return sent, int(out["code"])
        sent.append(json.loads(out["text"]))


# --- item 11: the token before the chat's group; the client_id after the authorization ----------


async def test_a_wrong_token_gets_nothing_of_the_chat_not_even_while_its_join_is_checked() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, _token = await start_chat(w)
    layer = get_channel_layer()
    stop = asyncio.Event()

    async def chatter() -> None:  # the chat is busy: typing frames to its group, all the time
        while not stop.is_set():
            await layer.group_send(chat_group(chat.pk), {
                "type": "vr.event", "frame": frames.typing_frame(chat.pk, "librarian")})
            await asyncio.sleep(0.001)

    busy = asyncio.create_task(chatter())
    try:
        comm = await patron_socket(chat.pk, "not-the-token")
        sent, code = await outputs_until_closed(comm)
        await asyncio.sleep(0.3)  # anything the socket was subscribed to would come now
        assert await comm.receive_nothing(timeout=0.3)
    finally:
        stop.set()
        await busy
    assert code == 4403
    assert sent == [frames.error_frame("forbidden", "wrong chat or token")]


async def test_a_librarian_repeating_another_librarians_client_id_is_refused_not_echoed() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, _token, _ = await a1_holding_a_chat(w)
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "private words", "client_id": "c-1"})
    await expect(a1, "message", client_id="c-1")
    a2 = await staff_socket(w["a2"])
    await expect(a2, "hello")
    await a2.send_json_to({"type": "message", "chat": chat.pk, "body": "x", "client_id": "c-1"})
    refused = await expect(a2, "error")
    assert refused["code"] == "forbidden" and refused["client_id"] == "c-1"
    assert "private words" not in json.dumps(refused)
    # a1 repeating their own line is answered, stored once: the line again, marked `resent` since this
    # socket sent it already (docs/protocol.md; a new socket would get it with its history).
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "private words", "client_id": "c-1"})
    acked = await expect(a1, "message", client_id="c-1")
    assert acked["chat"] == chat.pk and acked["resent"] is True
    assert await database_sync_to_async(Message.objects.filter(chat_id=chat.pk, client_id="c-1").count)() == 1
    await a1.disconnect()
    await a2.disconnect()


# --- item 5: sockets per chat, and one message rate per chat ------------------------------------


async def test_a_chat_takes_five_patron_sockets_the_sixth_is_told_and_closed_with_4429() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    socks = []
    for _ in range(ratelimit.PATRON_SOCKETS_PER_CHAT):
        comm = await patron_socket(chat.pk, token)
        await expect(comm, "joined")
        socks.append(comm)
    sixth = await patron_socket(chat.pk, token)
    sent, code = await outputs_until_closed(sixth)
    assert code == 4429 and [f["code"] for f in sent] == ["rate_limited"] and "sockets" in sent[0]["detail"]
    count = Connection.objects.filter(chat_id=chat.pk, kind="patron").count
    assert await database_sync_to_async(count)() == 5, "the refused socket is not counted"
    await socks[0].disconnect()
    again = await patron_socket(chat.pk, token)
    await expect(again, "joined")  # one closed: room for one more
    for comm in [*socks[1:], again]:
        await comm.disconnect()


def a_fresh_minute() -> None:
    """The message limit counts in fixed one-minute windows: do not start a count near a window's end."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


async def test_past_the_chats_message_rate_a_socket_message_is_refused_by_client_id_and_not_stored() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _assigned = await a1_holding_a_chat(w)
    comm = await patron_socket(chat.pk, token)
    await expect(comm, "joined")
    await database_sync_to_async(a_fresh_minute)()
    limit, _window = ratelimit.parse_rate(ratelimit.CHAT_MESSAGE.rate)

    def over_http() -> None:  # what the HTTP fallback counts for this chat (routing.patron.api)
        for i in range(limit):
            chats.message_post(chat.pk, sender="patron", body=f"line {i}", client_id=f"http-{i}",
                               now=timezone.now(), counted=True)

    await database_sync_to_async(over_http)()
    await comm.send_json_to({"type": "message", "body": "one too many", "client_id": "late"})
    refused = await expect(comm, "error")
    assert refused["code"] == "rate_limited" and refused["client_id"] == "late"
    assert "not sent" in refused["detail"]
    assert not await database_sync_to_async(Message.objects.filter(chat_id=chat.pk, client_id="late").exists)()
    await comm.send_json_to({"type": "ping"})
    await expect(comm, "pong")  # told, not closed
    await comm.disconnect()
    await a1.disconnect()


# --- item 10: switched off, the sockets close ----------------------------------------------------


async def test_a_librarian_switched_off_loses_the_staff_socket() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)

    def switch_off() -> None:
        profile = StaffProfile.objects.get(pk=w["a1"].pk)
        profile.is_active = False
        profile.save()

    await database_sync_to_async(switch_off)()
    sent, code = await outputs_until_closed(a1)
    assert code == 4403 and sent[-1]["code"] == "forbidden"


async def test_a_deactivated_account_loses_the_staff_socket() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)

    def deactivate() -> None:
        user = get_user_model().objects.get(pk=w["a1"].user_id)
        user.is_active = False
        user.save()

    await database_sync_to_async(deactivate)()
    _sent, code = await outputs_until_closed(a1)
    assert code == 4403


async def test_a_switched_off_librarian_whose_close_was_lost_cannot_accept() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)
    chat, _token = await start_chat(w)
    await expect(a1, "offer", chat=chat.pk)
    # Switched off without the signal (a bulk update): only the re-check on accept stands in the way.
    await database_sync_to_async(StaffProfile.objects.filter(pk=w["a1"].pk).update)(is_active=False)
    await a1.send_json_to({"type": "accept", "chat": chat.pk})
    sent, code = await outputs_until_closed(a1)
    assert code == 4403 and not [f for f in sent if f["type"] == "assigned"]
    await database_sync_to_async(chat.refresh_from_db)()
    assert chat.librarian_id is None


async def test_a_coordinator_whose_role_is_taken_away_loses_the_board(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coordinator_consumers, "REFRESH_SECONDS", 0.05)
    w = await database_sync_to_async(socket_world)()
    coordinator = w["a2"]
    await database_sync_to_async(StaffProfile.objects.filter(pk=coordinator.pk).update)(role="coordinator")
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/coordinator/?consortium=sock",
                                 headers=[(b"origin", b"http://127.0.0.1:8000")])
    comm.scope["user"] = await database_sync_to_async(lambda: get_user_model().objects.get(pk=coordinator.user_id))()
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "board"
    await database_sync_to_async(StaffProfile.objects.filter(pk=coordinator.pk).update)(role="librarian")
    code = 0
    with contextlib.suppress(TimeoutError):
        while True:
            out = await comm.receive_output(timeout=5)
            if out["type"] == "websocket.close":
                code = int(out["code"])
                break
    assert code == 4403
