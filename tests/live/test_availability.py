"""The honest launcher on the production stack (GET /api/v1/<c>/availability): two web processes, the
librarian's console on one and the patron's widget asking the other, so no answer depends on a process
knowing what another saw; each keeps its answer a few seconds, then reads the database again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, librarian, patron, start_chat, world

pytestmark = pytest.mark.live

ALLOWED = "https://library.example.org"
WORLD = world("avail", libraries=[{"slug": "main", "name": "Main Library"}, {"slug": "branch", "name": "Branch"}],
              staff=[{"username": "quinn", "library": "main", "capacity": 1, "languages": ["en", "es"]}],
              local_timeout=600)
WORLD["consortium"]["allowed_origins"] = [ALLOWED]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=2) as s:
        yield s


async def asked(stack: Stack, query: str = "library=main", web: str = "web2", origin: str = ALLOWED) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as c:
        return await c.get(f"{stack.base(web)}/api/v1/avail/availability?{query}", headers={"Origin": origin})


async def until(stack: Stack, state: str, query: str = "library=main", seconds: float = 15) -> dict[str, Any]:
    """The answer once it says `state`: each process keeps an answer 5 s, so a change shows within that."""
    deadline = time.monotonic() + seconds
    while True:
        r = await asked(stack, query)
        assert r.status_code == 200, r.text
        if r.json()["state"] == state:
            return dict(r.json())
        assert time.monotonic() < deadline, f"still {r.json()} after {seconds} s, not {state}"
        await asyncio.sleep(0.5)


async def test_closed_available_busy_across_processes(stack: Stack) -> None:
    closed = await until(stack, "closed")
    assert closed == {"state": "closed", "local": False, "opens_at": None, "wait_seconds": None,
                      "message": "Closed. Leave your question and a librarian will answer by email."}

    # Quinn signs in on the other process: a chat started now would be offered to her at once (her name is never said).
    sock, _hello, _ = await librarian(stack.base("web1"), "quinn", PASSWORD)
    try:
        available = await until(stack, "available")
        assert available["local"] is True and available["message"] == "A librarian is available."
        spanish = (await asked(stack, "library=main&lang=es")).json()
        assert spanish["state"] == "available" and spanish["message"] == "Hay un bibliotecario disponible."
        assert "quinn" not in (await asked(stack)).text.lower(), "names no staff"

        # She answers one chat at a time: holding one, the next patron would wait for her.
        chat = await start_chat(stack.base("web1"), "avail", "Do you have the 1920 census?", library="main")
        patron_sock = await patron(stack.base("web1"), chat)
        await sock.expect("offer", timeout=10, chat=chat["id"])
        await sock.send({"type": "accept", "chat": chat["id"]})
        await sock.expect("assigned", timeout=10)
        busy = await until(stack, "busy")
        assert busy["local"] is True and busy["wait_seconds"] > 0
        assert busy["message"].startswith("Busy: about ") and busy["message"].endswith("minutes.")
        # A patron of another library: nobody of theirs, and quinn serves only her own library's queue.
        other = (await asked(stack, "library=branch")).json()
        assert (other["state"], other["local"]) == ("closed", False)
        await patron_sock.close()
    finally:
        await sock.close()


async def test_the_contract_s_refusals_and_headers(stack: Stack) -> None:
    r = await asked(stack, "library=main", origin="https://evil.example.com")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    ok = await asked(stack, "library=main")
    assert ok.headers["access-control-allow-origin"] == ALLOWED and "max-age=5" in ok.headers["cache-control"]
    bad = await asked(stack, "library=main&lang=fr")
    assert bad.status_code == 400 and "lang" in bad.json()["error"]["fields"]
    assert (await asked(stack, "library=nowhere")).status_code == 404
