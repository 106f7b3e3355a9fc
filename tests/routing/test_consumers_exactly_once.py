"""Each socket sends each message seq at most once, whatever races it (issue 14.3): a client_id sent
again, a join's history against live frames, the end of the hold-back window against a join still
being answered, a reconnecting console. Found at 1,000 chats: 92 repeated seqs and 46 duplicate
messages on the staff sockets."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from routing import threads
from routing.services import chats
from routing.sockets import staff as staff_sockets
from tests.routing.socket_helpers import (
    a1_holding_a_chat,
    accept_offer,
    expect,
    patron_socket,
    socket_world,
    staff_socket,
    start_chat,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]


async def post(chat_id: str, body: str) -> int:
    message, _ = await database_sync_to_async(chats.message_post)(
        chat_id, sender="patron", body=body, client_id=body, now=timezone.now())
    return int(message.seq)


async def frames_until_quiet(comm: WebsocketCommunicator, quiet: float = 0.4) -> list[dict[str, Any]]:
    got = []
    while not await comm.receive_nothing(quiet):
        got.append(await comm.receive_json_from())
    return got


@contextlib.asynccontextmanager
async def database_threads_busy() -> AsyncIterator[None]:
    """Every database thread the sockets use is busy (a slow query elsewhere) until the block ends.
    (SQLite: Channels' one database thread; PostgreSQL: every thread of routing.threads' pool.)"""
    release = threading.Event()
    if threads.CONCURRENT:
        busy = [asyncio.wrap_future(threads.SOCKET_THREADS.submit(release.wait))
                for _ in range(threads.SOCKET_THREADS._max_workers)]
    else:
        busy = [asyncio.ensure_future(database_sync_to_async(release.wait)())]
    try:
        yield
    finally:
        release.set()
        await asyncio.gather(*busy)


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f.get("type") == "message"]


async def test_a_patron_resending_after_a_reconnect_gets_its_line_then_the_marked_echo() -> None:
    """The page lost the echo (the socket closed), joins with `after` below its line and sends its
    outbox again: the history carries the line, and the resend is answered with the contract's echo,
    marked `resent` (never an unmarked second delivery of the seq)."""
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await patron_socket(chat.pk, token)
    await expect(patron, "message", seq=1)
    await patron.send_json_to({"type": "message", "body": "hello?", "client_id": "p1"})
    mine = await expect(patron, "message", client_id="p1")
    await patron.disconnect()

    back = await patron_socket(chat.pk, token, after=mine["seq"] - 1)  # the echo never reached the page
    await expect(back, "joined")
    await back.send_json_to({"type": "message", "body": "hello?", "client_id": "p1"})
    got = [f for f in await frames_until_quiet(back) if f["type"] == "message"]
    assert [(f["seq"], f.get("resent", False)) for f in got] == [(mine["seq"], False), (mine["seq"], True)]
    assert got[1]["client_id"] == "p1"
    await back.disconnect()
    await a1.disconnect()


async def test_a_librarian_resending_after_a_reconnect_gets_the_line_once() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Hello!", "client_id": "l1"})
    mine = await expect(a1, "message", client_id="l1")
    await a1.disconnect()

    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": mine["seq"] - 1})
    await back.send_json_to({"type": "message", "chat": chat.pk, "body": "Hello!", "client_id": "l1"})
    got = [f for f in await frames_until_quiet(back) if f["type"] == "message"]
    assert [(f["seq"], f.get("resent", False)) for f in got] == [(mine["seq"], False), (mine["seq"], True)]
    await back.disconnect()


async def test_a_join_after_the_hold_back_window_leaves_out_what_went_live(monkeypatch: pytest.MonkeyPatch) -> None:
    """The window ended (the console's join was slow to come), so a live message went out; the join's
    history then brings what was missed, without that live message again."""
    monkeypatch.setattr(staff_sockets, "JOIN_WAIT", 0.3)
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    seen = await post(chat.pk, "seen")  # the last line this console got
    await expect(a1, "message", seq=seen)
    await a1.disconnect()
    missed = await post(chat.pk, "missed")

    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    live = await post(chat.pk, "live")
    assert (await expect(back, "message", timeout=5))["seq"] == live  # the window ended: sent live
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen})
    assert seqs(await frames_until_quiet(back)) == [missed]
    await back.disconnect()


async def test_the_window_does_not_end_while_a_join_waits_for_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load the join's check waited for a database thread longer than the window; the window's
    end then sent the live message, and the history sent it again (and after it, out of order)."""
    monkeypatch.setattr(staff_sockets, "JOIN_WAIT", 0.3)
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    seen = await post(chat.pk, "seen")  # the last line this console got
    await expect(a1, "message", seq=seen)
    await a1.disconnect()
    missed = await post(chat.pk, "missed")
    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    live = await post(chat.pk, "live")  # kept back

    async with database_threads_busy():  # the join must wait
        await asyncio.sleep(0.05)
        await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen})
        assert await back.receive_nothing(0.8), "nothing before the history, though the window is over"
    assert seqs(await frames_until_quiet(back)) == [missed, live]
    await back.disconnect()


async def test_the_window_counts_only_the_time_the_socket_was_free_to_read_the_join(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A console resuming two chats sends both joins at once, and the first waits for a database thread
    longer than the window. The second chat's window must not end meanwhile: the socket could not read
    its join. (Found by tests/faults when Redis came back: 25 resuming consoles got a live seq, then
    the older one from the history.)"""
    monkeypatch.setattr(staff_sockets, "JOIN_WAIT", 0.5)
    w = await database_sync_to_async(socket_world)()
    a1, first, _, _ = await a1_holding_a_chat(w)
    second, _ = await start_chat(w)
    await accept_offer(a1, second)
    seen = await post(second.pk, "seen")
    await expect(a1, "message", seq=seen)
    await a1.disconnect()
    missed = await post(second.pk, "missed")
    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    live = await post(second.pk, "live")  # kept back

    async with database_threads_busy():
        await asyncio.sleep(0.05)
        await back.send_json_to({"type": "join", "chat": first.pk, "after": 0})
        await asyncio.sleep(1.2)  # the socket is stuck on the first join, past the second chat's 0.5 s
    await back.send_json_to({"type": "join", "chat": second.pk, "after": seen})
    got = await frames_until_quiet(back)
    assert [f["seq"] for f in got if f.get("type") == "message" and f["chat"] == second.pk] == [missed, live]
    await back.disconnect()


async def test_a_resend_before_the_join_is_kept_back_and_the_history_carries_it() -> None:
    """A resend whose line this socket has not sent yet is treated as a live message: kept back
    behind the pending join, whose history then carries the line, once (the echo the console wants)."""
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    seen = await post(chat.pk, "seen")
    await expect(a1, "message", seq=seen)
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "late", "client_id": "l2"})
    line = (await expect(a1, "message", client_id="l2"))["seq"]
    await a1.disconnect()  # as if the echo had been lost with the connection

    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    await back.send_json_to({"type": "message", "chat": chat.pk, "body": "late", "client_id": "l2"})
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen})
    got = [f for f in await frames_until_quiet(back) if f["type"] == "message"]
    assert [(f["seq"], f.get("resent", False)) for f in got] == [(line, False)]
    await back.disconnect()


async def test_a_join_is_not_refused_for_rate_behind_a_burst_of_frames() -> None:
    """A console back from a reconnect sends its unsent lines and a join per chat at once. A join
    refused for rate left the chat's history unsent for good (found by tests/faults/test_overload.py:
    seq 40 after 31 on a staff socket); the frames after it are the ones slowed down."""
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    seen = await post(chat.pk, "seen")
    await expect(a1, "message", seq=seen)
    await a1.disconnect()
    missed = await post(chat.pk, "missed")
    back = await staff_socket(w["a1"])
    await expect(back, "hello")
    for _ in range(40):  # past the bucket (30 frames)
        await back.send_json_to({"type": "ping"})
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen})
    got = await frames_until_quiet(back)
    assert seqs(got) == [missed]
    assert any(f.get("code") == "rate_limited" for f in got), "the pings past the bucket were refused"
    await back.disconnect()
