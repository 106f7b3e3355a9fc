"""Issue 13.4 and 13.9, black-box through the production stack (two daphne processes, PostgreSQL, Redis):
a chat's files are bounded in number, bytes, rate and the consortium's disk budget, whichever process
takes them; exports stream and lists come in bounded pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import PASSWORD, Socket, Stack, librarian, login, start_chat, world

WORLD = world("bnd", libraries=[{"slug": "bnd-a"}],
              staff=[{"username": "bnd1", "library": "bnd-a"},
                     {"username": "bndcoord", "library": "bnd-a", "role": "coordinator"}])
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
RATE = 8


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD], VR_CHAT_FILES_MAX="3", VR_CHAT_FILE_UPLOAD_RATE=f"{RATE}/h",
                       VR_CONSORTIUM_FILES_BUDGET_MB="1").running(webs=2) as s:
        yield s


async def open_chat(stack: Stack, question: str) -> tuple[dict[str, str], Socket]:
    """A chat that waits for the librarian on duty (with nobody on duty it would be unstaffed, and over)."""
    sock, _hello, _cookies = await librarian(stack.base(), "bnd1", PASSWORD)
    return await start_chat(stack.base(), "bnd", question, library="bnd-a"), sock


async def send_file(base: str, chat: dict[str, str], data: bytes, name: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as c:
        return await c.post(f"{base}/api/v1/chats/{chat['id']}/files", files={"file": (name, data, "image/png")},
                            data={"client_id": name}, headers={"Authorization": f"Bearer {chat['token']}"})


def code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"]) if r.status_code >= 400 else ""


async def test_a_chats_files_are_bounded_across_processes_and_then_rate_limited(stack: Stack) -> None:
    chat, sock = await open_chat(stack, "Maps of the county?")
    # Six uploads at once, through both web processes: the count is kept under the chat's row lock.
    answers = await asyncio.gather(*(send_file(stack.base(f"web{1 + n % 2}"), chat, PNG, f"p{n}.png")
                                     for n in range(6)))
    assert sorted(r.status_code for r in answers) == [201] * 3 + [413] * 3, [r.text for r in answers]
    assert {code(r) for r in answers if r.status_code == 413} == {"too_many_files"}
    assert stack.sql(f"SELECT count(*) FROM routing_chatfile WHERE chat_id = '{chat['id']}'") == "3"
    # The per-chat rate counts every attempt: past it, 429 with Retry-After (a fixed window: allow for
    # the hour turning during the test, which starts a new window once).
    statuses = []
    for n in range(2 * RATE):
        r = await send_file(stack.base(), chat, PNG, f"r{n}.png")
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert code(r) == "rate_limited" and int(r.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) <= {413}, statuses
    await sock.close()


async def test_the_consortiums_disk_budget_refuses_and_shows_in_the_metrics(stack: Stack) -> None:
    chat, sock = await open_chat(stack, "Can I send my scan?")
    big = PNG + b"\x00" * (600 * 1024)  # larger than Django's in-memory limit: spooled to disk
    first = await send_file(stack.base(), chat, big, "scan1.png")
    assert first.status_code == 201, first.text
    assert first.json()["file"]["size"] == len(big)
    second = await send_file(stack.base("web2"), chat, big, "scan2.png")
    assert (second.status_code, code(second)) == (413, "over_budget")
    assert second.json()["error"]["fields"]["file"]
    async with httpx.AsyncClient(timeout=20) as c:
        fetched = await c.get(stack.base() + first.json()["file"]["url"],
                              headers={"Authorization": f"Bearer {chat['token']}"})
        assert fetched.status_code == 200 and fetched.content == big
        metrics = (await c.get(stack.base() + "/metrics")).text
    stored = re.search(r'^vr_files_bytes\{consortium="bnd"\} ([0-9.e+]+)$', metrics, re.M)
    budget = re.search(r'^vr_files_budget_bytes\{consortium="bnd"\} ([0-9.e+]+)$', metrics, re.M)
    assert stored and budget
    assert float(budget[1]) == 1024 * 1024 and len(big) <= float(stored[1]) <= float(budget[1])
    await sock.close()


async def test_a_huge_chats_transcript_comes_in_pages_and_the_csv_streams(stack: Stack) -> None:
    chat = await start_chat(stack.base(), "bnd", "A very long conversation", library="bnd-a")
    lines = 2400
    stack.sql("INSERT INTO routing_message (chat_id, seq, sender, name, body, at, internal) "
              f"SELECT '{chat['id']}', s, 'patron', '', 'line ' || s, now(), false "
              f"FROM generate_series(2, {lines + 1}) AS s; "
              f"UPDATE routing_chat SET last_seq = {lines + 1} WHERE id = '{chat['id']}'")
    url: str | None = f"/api/v1/chats/{chat['id']}/transcript"
    seqs: list[int] = []
    sizes = []
    async with httpx.AsyncClient(base_url=stack.base(), timeout=30) as c:
        while url:
            r = await c.get(url, headers={"Authorization": f"Bearer {chat['token']}"})
            assert r.status_code == 200, r.text
            sizes.append(len(r.json()["messages"]))
            seqs += [m["seq"] for m in r.json()["messages"]]
            url = r.json()["next"]
    assert sizes == [1000, 1000, 401] and seqs == list(range(1, lines + 2))

    # The coordinators' report comes chunked, with no Content-Length: sent as it is read.
    cookies = await asyncio.to_thread(login, stack.base(), "bndcoord", PASSWORD)
    async with httpx.AsyncClient(base_url=stack.base(), cookies=cookies, timeout=30) as c, \
            c.stream("GET", "/api/v1/bnd/reports/chats.csv") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "content-length" not in r.headers and r.headers.get("transfer-encoding") == "chunked"
        body = (await r.aread()).decode()
    assert body.splitlines()[0].startswith("chat,created_at,home_library") and chat["id"] in body
