"""Issue 13, items 5, 10 and 11, black-box through the production stack (two daphne processes, the
workers, PostgreSQL and Redis): patron sockets per chat counted across processes, one message rate
per chat shared by the socket and the HTTP fallback, switched-off staff losing their sockets, and
the order of the checks on a patron's join and a librarian's repeated client_id."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.live.stack import PASSWORD, Socket, Stack, connect, librarian, login, patron, start_chat, world

WORLD = world(
    "socksec",
    libraries=[{"slug": "ss-a"}],
    staff=[
        {"username": "ss1", "library": "ss-a"},
        {"username": "ss2", "library": "ss-a"},
        {"username": "ss3", "library": "ss-a"},
        {"username": "sscoord", "library": "ss-a", "role": "coordinator"},
    ],
)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=2) as s:
        yield s


async def closed(sock: Socket, timeout: float) -> int | None:
    """The socket's close code once it closes, None if it is still open after `timeout` s."""
    deadline = time.monotonic() + timeout
    while sock.closed is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return sock.closed


def shell(stack: Stack, code: str) -> None:
    """Run `code` in a Django shell of the stack: a separate process, as an admin's change would be."""
    stack.manage("shell", "-c", code)


# --- item 11 ---------------------------------------------------------------------------------------


async def test_a_wrong_token_gets_only_its_refusal_even_from_a_busy_chat(stack: Stack) -> None:
    la, _, _ = await librarian(stack.base("web1"), "ss1", PASSWORD)
    chat = await start_chat(stack.base("web1"), "socksec", "Busy chat", library="ss-a")
    await la.expect("offer", chat=chat["id"], timeout=15)
    await la.send({"type": "accept", "chat": chat["id"]})
    await la.expect("assigned", chat=chat["id"], timeout=15)
    stop = asyncio.Event()

    async def typing() -> None:  # the librarian types all along, on the other process
        while not stop.is_set():
            await la.send({"type": "typing", "chat": chat["id"]})
            await asyncio.sleep(0.15)  # under the socket's frame rate

    busy = asyncio.create_task(typing())
    try:
        for _ in range(5):
            intruder = await connect(stack.base("web2"), "/ws/patron/")
            await intruder.send({"type": "join", "chat": chat["id"], "token": "x" * 43, "after": 0})
            assert await closed(intruder, 15) == 4403
            await asyncio.sleep(0.3)
            assert intruder.seen == [{"type": "error", "code": "forbidden", "detail": "wrong chat or token",
                                      "client_id": None}], intruder.seen
            await intruder.close()
    finally:
        stop.set()
        await busy
    await la.send({"type": "end", "chat": chat["id"]})
    await la.close()


async def test_a_librarian_cannot_read_another_librarians_message_by_its_client_id(stack: Stack) -> None:
    holder, _, _ = await librarian(stack.base("web1"), "ss2", PASSWORD)
    chat = await start_chat(stack.base("web1"), "socksec", "Private", library="ss-a")
    await holder.expect("offer", chat=chat["id"], timeout=15)
    await holder.send({"type": "accept", "chat": chat["id"]})
    await holder.expect("assigned", chat=chat["id"], timeout=15)
    await holder.send({"type": "message", "chat": chat["id"], "body": "the patron's card number", "client_id": "k1"})
    await holder.expect("message", client_id="k1", timeout=10)
    snoop, _, _ = await librarian(stack.base("web2"), "ss3", PASSWORD, available=False)
    await snoop.send({"type": "message", "chat": chat["id"], "body": "?", "client_id": "k1"})
    refused = await snoop.expect("error", timeout=10)
    assert refused["code"] == "forbidden" and refused["client_id"] == "k1"
    assert not [f for f in snoop.seen if "card number" in json.dumps(f)]
    await holder.send({"type": "end", "chat": chat["id"]})
    await holder.close()
    await snoop.close()


# --- item 5: one message rate per chat -------------------------------------------------------------


async def test_the_socket_and_the_http_fallback_share_one_message_rate_per_chat(stack: Stack) -> None:
    if time.time() % 60 > 40:  # the limit counts in fixed minutes: start this count in a fresh one
        await asyncio.sleep(61 - time.time() % 60)
    # A librarian on duty (who does not accept): the chat waits for them, live, through the count. With
    # nobody there it ends unstaffed at once, and its lines are refused as "ended", not for rate.
    on_duty, _, _ = await librarian(stack.base("web1"), "ss2", PASSWORD)
    chat = await start_chat(stack.base("web1"), "socksec", "Many lines", library="ss-a")
    sock = await patron(stack.base("web2"), chat)
    url = f"{stack.base('web1')}/api/v1/chats/{chat['id']}/messages"
    headers = {"Authorization": f"Bearer {chat['token']}", "Origin": stack.base("web1")}
    async with httpx.AsyncClient(timeout=20) as c:
        for i in range(30):  # half over HTTP...
            r = await c.post(url, json={"body": f"http {i}", "client_id": f"h{i}"}, headers=headers)
            assert r.status_code == 201, r.text
        for i in range(30):  # ...half over the socket, under its frame rate
            await sock.send({"type": "message", "body": f"socket {i}", "client_id": f"s{i}"})
            await sock.expect("message", client_id=f"s{i}", timeout=10)
            await asyncio.sleep(0.12)
        await sock.send({"type": "message", "body": "one too many", "client_id": "late"})
        refused = await sock.expect("error", timeout=10)
        assert refused["code"] == "rate_limited" and refused["client_id"] == "late"
        assert "not sent" in refused["detail"]
        r = await c.post(url, json={"body": "and over http", "client_id": "late-h"}, headers=headers)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["code"] == "rate_limited"
    stored = stack.sql(f"SELECT string_agg(client_id, ',' ORDER BY seq) FROM routing_message "
                       f"WHERE chat_id='{chat['id']}' AND client_id IS NOT NULL")
    assert stored.split(",") == [f"h{i}" for i in range(30)] + [f"s{i}" for i in range(30)], \
        "the 60 stored in order; the refused ones not stored"
    await sock.send({"type": "ping"})
    await sock.expect("pong", timeout=10)  # told, still open
    await sock.close()
    await on_duty.close()


# --- item 10: switched off, the sockets close on every process --------------------------------------


async def test_a_librarian_switched_off_loses_every_socket_within_5_seconds(stack: Stack) -> None:
    cookies = await asyncio.to_thread(login, stack.base("web1"), "ss3", PASSWORD)
    one, _, _ = await librarian(stack.base("web1"), "ss3", PASSWORD, cookies=cookies)
    two, _, _ = await librarian(stack.base("web2"), "ss3", PASSWORD, cookies=cookies, available=False)
    await asyncio.to_thread(shell, stack, "from libraries.models import StaffProfile\n"
                                          "p = StaffProfile.objects.get(user__username='ss3')\n"
                                          "p.is_active = False\np.save()\n")
    assert await closed(one, 5) == 4403
    assert await closed(two, 5) == 4403
    assert [f for f in one.seen if f.get("type") == "error"][-1]["code"] == "forbidden"
    # and cannot come back: the staff socket refuses the same session at once
    again = await connect(stack.base("web1"), "/ws/staff/",
                          {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    assert await closed(again, 10) in (4401, 4403)
    await again.close()
    await one.close()
    await two.close()


async def test_a_coordinator_whose_role_is_taken_away_loses_the_board(stack: Stack) -> None:
    cookies = await asyncio.to_thread(login, stack.base("web2"), "sscoord", PASSWORD)
    board = await connect(stack.base("web2"), "/ws/coordinator/?consortium=socksec",
                          {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    await board.expect("board", timeout=15)
    await asyncio.to_thread(shell, stack, "from libraries.models import StaffProfile\n"
                                          "p = StaffProfile.objects.get(user__username='sscoord')\n"
                                          "p.role = 'librarian'\np.save()\n")
    assert await closed(board, 5) == 4403
    await board.close()


# --- item 5: sockets per chat, across processes (last: it kills web2) ------------------------------


async def test_five_patron_sockets_per_chat_across_processes_and_a_dead_process_stops_counting(
        stack: Stack) -> None:
    chat = await start_chat(stack.base("web1"), "socksec", "Many tabs", library="ss-a")
    tabs = [await patron(stack.base("web1"), chat) for _ in range(2)]
    tabs += [await patron(stack.base("web2"), chat) for _ in range(3)]
    sixth = await connect(stack.base("web1"), "/ws/patron/")
    await sixth.send({"type": "join", "chat": chat["id"], "token": chat["token"], "after": 0})
    assert await closed(sixth, 15) == 4429
    assert [f["code"] for f in sixth.seen] == ["rate_limited"], sixth.seen
    await sixth.close()
    stack.kill("web2")  # its three sockets die with it, without a goodbye; the timer reaps them
    joined = 0
    deadline = time.monotonic() + 90  # PROCESS_DEAD_AFTER (20 s) and a sweep, on a loaded machine
    while joined < 3 and time.monotonic() < deadline:
        try:
            tab = await patron(stack.base("web1"), chat)
        except (AssertionError, websockets.ConnectionClosed):
            await asyncio.sleep(2)
            continue
        tabs.append(tab)
        joined += 1
    assert joined == 3, "the dead process's sockets still counted"
    for tab in tabs:
        await tab.close()
