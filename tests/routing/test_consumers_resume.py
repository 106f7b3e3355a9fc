"""A console that reconnects gets each held chat's messages once and in order: a live message that
arrives between `hello` and the console's `join {after}` is kept back and sent after the history
(found by the fault tests: after a mass reconnect, a live seq 4 reached consoles before the 3 their
join asked for, and the history then sent 3 and 4 again)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from routing.services import chats
from routing.sockets import staff as staff_sockets
from tests.routing.socket_helpers import (
    a1_holding_a_chat,
    expect,
    socket_world,
    staff_socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]


async def post(chat_id: str, body: str) -> None:
    await database_sync_to_async(chats.message_post)(chat_id, sender="patron", body=body, client_id=body,
                                                        now=timezone.now())


async def test_a_live_message_before_the_join_comes_after_the_history_once() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, assigned = await a1_holding_a_chat(w)
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": assigned["last_seq"]})  # as the console does
    await post(chat.pk, "seen")
    seen = (await expect(a1, "message", body="seen"))["seq"]
    await a1.disconnect()
    await post(chat.pk, "missed")  # while the console was away

    back = await staff_socket(w["a1"])
    hello = await expect(back, "hello")
    assert [c["chat"] for c in hello["chats"]] == [chat.pk]
    await post(chat.pk, "live")  # after hello, before the console's join: kept back
    assert await back.receive_nothing(0.3)
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen})
    got = [await expect(back, "message") for _ in range(2)]
    assert [g["body"] for g in got] == ["missed", "live"]
    assert [g["seq"] for g in got] == [seen + 1, seen + 2]
    assert await back.receive_nothing(0.3), "nothing sent twice"
    await back.disconnect()


async def test_a_client_that_never_joins_gets_live_messages_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that does not resume with join still gets what came after hello once the wait is over,
    without waiting for a next message (bench/ws_load.py's bots lost 40 of 105 before this)."""
    # Long enough that a busy machine posts the message within it (0.5 s failed under CI's load).
    monkeypatch.setattr(staff_sockets, "JOIN_WAIT", 2.0)
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    await a1.disconnect()
    back = await staff_socket(w["a1"])
    hello = await expect(back, "hello")
    last = hello["chats"][0]["last_seq"]
    await post(chat.pk, "live")
    assert await back.receive_nothing(0.2)  # kept back: a join may still come
    got = await expect(back, "message", timeout=6)
    assert (got["body"], got["seq"]) == ("live", last + 1)
    await back.disconnect()


async def test_a_message_between_assigned_and_the_join_is_sent_at_once_and_not_again() -> None:
    """After `assigned` live messages flow at once (a client need not join: docs/protocol.md); the
    console's join for the transcript then leaves out what it already got live, so no line twice."""
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, assigned = await a1_holding_a_chat(w)
    await post(chat.pk, "early")  # before the console's join
    live = [await expect(a1, "message")]
    while live[-1]["body"] != "early":
        live.append(await expect(a1, "message"))
    assert [m["seq"] for m in live] == list(range(assigned["last_seq"] + 1, assigned["last_seq"] + 1 + len(live)))
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": 0})
    history = [await expect(a1, "message") for _ in range(assigned["last_seq"])]
    assert [m["seq"] for m in history] == list(range(1, assigned["last_seq"] + 1))
    assert await a1.receive_nothing(0.3), "nothing sent twice"
    await a1.disconnect()
