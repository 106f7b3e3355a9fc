"""Overload (issue 14.3 and 14.4): one web process driven past its capacity for about a minute, by a
flood of chat starts on top of chats that keep talking. Every start is answered at once, either
created (201) or shed (503 `busy` with Retry-After: routing/admission.py), never left to time out or
failed with a 500; and the conversations already running lose nothing, repeat no seq and skip none on
any socket (the harness's ledger: tests/faults/harness.py). The figures (the share shed, delivery
under overload against the bare relay) are bench/capacity.py --overload's; this checks correctness.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter

import httpx
import pytest

from tests.faults.harness import CONSORTIUM, Load, fault_world, log, prepare_stack, staff_sessions

pytestmark = pytest.mark.fault

CHATS = 120  # talking all along, every INTERVAL s each way
INTERVAL = 4.0
FLOOD_SECONDS = float(os.environ.get("VR_OVERLOAD_SECONDS", "45"))
FLOOD_RATE = 40.0  # chat starts a second: several times what one web process can start


async def flood(base: str, seconds: float, rate: float) -> tuple[Counter[str], list[str]]:
    """Chat starts at `rate` a second for `seconds`, each waited for; what each was answered. They go
    to the `wait` library, whose (slow) librarians are offered them and let them wait: the bots that
    answer the talking chats accept every offer at once, which no person does (hundreds of accepts a
    minute ran their sockets into the frame limit, and that was the test, not the overload)."""
    answers: Counter[str] = Counter()
    problems: list[str] = []

    async def one(http: httpx.AsyncClient, k: int) -> None:
        try:
            r = await http.post(f"{base}/api/v1/{CONSORTIUM}/chats",
                                json={"question": f"Flood question {k}", "library": "wait"},
                                headers={"Origin": base})
        except httpx.HTTPError as e:
            answers["no answer"] += 1
            problems.append(f"start {k}: {type(e).__name__}")
            return
        answers[str(r.status_code)] += 1
        if r.status_code == 503:
            if not r.headers.get("Retry-After", "").isdigit() or r.json()["error"]["code"] != "busy":
                problems.append(f"start {k}: 503 without Retry-After or code busy: {r.headers} {r.text[:200]}")
        elif r.status_code != 201:
            problems.append(f"start {k}: {r.status_code} {r.text[:200]}")

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        t0 = time.monotonic()
        tasks = []
        k = 0
        while (at := t0 + k / rate) < t0 + seconds:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(one(http, k)))
            k += 1
        await asyncio.gather(*tasks)
    return answers, problems


def test_past_capacity_starts_are_shed_and_running_chats_keep_every_seq() -> None:
    stack = prepare_stack([fault_world()], admission=True)
    load: Load | None = None
    try:
        stack.start(webs=1)
        # The talking chats start within one process's start capacity (about 20 a second is all of it,
        # docs/benchmarks.md "Overload"): at 20 a second one of them was shed ten times running.
        load = Load(stack, staff_sessions(stack), chats=CHATS, interval=INTERVAL, ramp_rate=8.0).start()
        load.assert_whole(timeout=120)
        log(f"overload: {CHATS} chats talking; flooding web1 with {FLOOD_RATE:.0f} starts/s for {FLOOD_SECONDS:.0f}s")
        answers, problems = load.call(flood(stack.base("web1"), FLOOD_SECONDS, FLOOD_RATE), timeout=600)
        total = sum(answers.values())
        log(f"overload: starts answered {dict(answers)}; shed {answers['503'] / max(1, total):.0%}")
        assert stack.procs["web1"].poll() is None, f"web1 exited:\n{stack.logs()[-4000:]}"
        assert not problems, f"{len(problems)} starts answered otherwise than 201 or 503 busy: {problems[:10]}"
        final = load.assert_whole(timeout=180)  # nothing lost, no seq repeated or skipped, all joined
        log(f"overload: {json.dumps(final)}")
    finally:
        if load is not None:
            load.stop()
        stack.stop()
