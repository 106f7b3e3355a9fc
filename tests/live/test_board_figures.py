"""The live board's "today" figures on the production stack add up (issue 20), and say what the
statistics page, the chats report and /metrics say.

The issue's sequence, with real processes and real time: two chats answered, then their librarian's
console closed (the timer takes the chats back after the reconnect grace), then their patrons left
(abandoned by state after the patron grace); then two chats nobody can answer (unstaffed). Before,
the board and the page counted the first two as answered and as abandoned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, connect, librarian, login, patron, start_chat, world

SLUG = "figures"
WORLD = world(SLUG, libraries=[{"slug": "home"}],
              staff=[{"username": "fig-lib", "library": "home"},
                     {"username": "fig-coord", "library": "home", "role": "coordinator"}],
              reconnect_grace=2, patron_grace=3)
OUTCOMES = ("answered", "abandoned", "withdrawn", "unstaffed", "open", "self_served")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(log_tail=6000) as s:
        yield s


async def states(stack: Stack, ids: list[str], want: str, timeout: float = 30) -> None:
    quoted = ",".join(f"'{i}'" for i in ids)
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(stack.sql, f"SELECT state FROM routing_chat WHERE id IN ({quoted})")
        if found.split() == [want] * len(ids):
            return
        assert time.monotonic() < deadline, f"chats {ids}: {found!r}, not all {want}"
        await asyncio.sleep(0.3)


async def test_todays_figures_on_the_board_add_up_and_match_the_page_the_report_and_metrics(stack: Stack) -> None:
    base = stack.base()
    cookies = await asyncio.to_thread(login, base, "fig-coord", PASSWORD)
    board = await connect(base, f"/ws/coordinator/?consortium={SLUG}",
                          {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    first = await board.expect("board", timeout=15)
    assert first["today"]["arrived"] == 0

    lib, _, _ = await librarian(base, "fig-lib", PASSWORD)
    answered, patrons = [], []
    for question in ("Museum passes?", "Tax forms?"):
        chat = await start_chat(base, SLUG, question, library="home")
        patrons.append(await patron(base, chat))
        await lib.expect("offer", timeout=10, chat=chat["id"])
        await lib.send({"type": "accept", "chat": chat["id"]})
        await lib.expect("assigned", timeout=10)
        answered.append(chat["id"])
    await lib.close()  # the console closed: after the reconnect grace the timer re-queues both
    await states(stack, answered, "queued")
    for sock in patrons:
        await sock.close()  # and the patrons go: abandoned after the patron grace
    await states(stack, answered, "abandoned")
    unstaffed = [await start_chat(base, SLUG, q, library="home") for q in ("Genealogy?", "Printing?")]
    assert [c["state"] for c in unstaffed] == ["unstaffed", "unstaffed"], "nobody is present any more"

    want = {"arrived": 4, "answered": 2, "abandoned": 0, "withdrawn": 0, "unstaffed": 2, "open": 0, "self_served": 0}
    frame = await board.expect(lambda f: f.get("type") == "board" and
                               {k: f["today"].get(k) for k in want} == want, timeout=20)
    today = frame["today"]
    assert today["arrived"] == sum(today[o] for o in OUTCOMES)
    await board.close()

    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=20) as c:
        page = await c.get(f"/coordinator/{SLUG}/statistics/", params={"since": today["date"], "until": today["date"],
                                                                      "csv": "outcomes"})
        assert page.status_code == 200
        assert page.text.splitlines() == ["outcome,chats", "answered,2", "abandoned,0", "withdrawn,0",
                                          "unstaffed,2", "open,0", "self_served,0", "total,4"]
        report = await c.get(f"/api/v1/{SLUG}/reports/chats.csv")
        lines = report.text.splitlines()
        column = lines[0].split(",").index("outcome")
        assert sorted(line.split(",")[column] for line in lines[1:]) == ["answered", "answered", "unstaffed",
                                                                         "unstaffed"]
    metrics = await asyncio.to_thread(httpx.get, f"{base}/metrics", timeout=20)
    found = {line.split('outcome="')[1].split('"')[0]: float(line.split()[-1]) for line in metrics.text.splitlines()
             if line.startswith(f'vr_chats_today{{consortium="{SLUG}"')}
    # /metrics counts from 00:00 UTC, the board from local midnight: chats made just now are in both.
    assert found == {"answered": 2, "abandoned": 0, "withdrawn": 0, "unstaffed": 2, "open": 0, "self_served": 0}
