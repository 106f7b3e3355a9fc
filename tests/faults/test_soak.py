"""The soak: the production stack under a steady load for VR_SOAK_SECONDS, with state churning (chats
ending, new ones starting), while the resident memory of every stack process is sampled. After the
warm-up (the first third) memory must stop growing; nothing may be lost or doubled and every client
must still be live at the end.

    python3 dev.py faults    # with the other fault tests: 5 minutes (VR_SOAK_SECONDS=300), every submission
    python3 dev.py soak      # alone, 30 minutes (VR_SOAK_SECONDS=1800): before a release

The samples are written to var/soak-<time>.json (VR_SOAK_OUT overrides) and the figures of a full
run are in docs/scaling.md ("Soak").
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import Load, fault_world, log, prepare_stack, staff_sessions
from tests.live.stack import ROOT

pytestmark = pytest.mark.fault

SECONDS = float(os.environ.get("VR_SOAK_SECONDS", "300"))
CHATS = 200
INTERVAL = 10.0  # each patron says something every 10 s, and its librarian answers: 40 messages a second
CHURN_EVERY = 30.0  # every 30 s, CHURN chats end and as many new ones start
CHURN = 10
SAMPLE_EVERY = min(30.0, max(5.0, SECONDS / 30))
# The bound on growth after the warm-up: the slope of a least-squares line through the last two
# thirds of the samples, at most 0.5% of the process's mean resident memory per 10 minutes (560 KiB for a
# 110 MiB web process). It was 1%, and that let a real leak through: the layer check's channels
# (routing/layer_watch.py, docs/scaling.md "Soak"), 1.04 MiB per 10 minutes in every web process, which
# a 30-minute run passed at 96% of the bound. Fixed, the web processes' slopes after warm-up were 8 and
# 89 KiB per 10 minutes in a clean 15-minute run (up to 475 in 10-minute runs with a debugging object
# counter in them), the other processes' 0-125: a flat Python process still moves in steps of its
# allocator's arenas (256 KiB) up and down. At 0.5% that leak fails a 30-minute run (2.0 MiB over the
# 20-minute window against 1.6 MiB allowed with the noise below); a 10-minute run is too short to tell one
# of its size from the noise. The slopes are written out (and into docs/scaling.md) for a person to read
# too: a slope near the bound is a leak to look for.
GROWTH_PER_10_MIN = 0.005
# Plus, over the whole window, two such arena steps: in a developer's short run (VR_SOAK_SECONDS=60) one
# step in a 40 s window extrapolated to 10 minutes was four times the bound above.
NOISE_KIB = 512
# A run shorter than the release soak judges a window of minutes, in which the web processes are still
# warming up (docs/scaling.md "Soak": web2 rose 900 KiB between 200 s and 300 s of a 10-minute run, then
# stayed flat; a 300 s run failed on that step alone). Such a run allows six arena steps instead of two:
# 1,724 KiB over the 200 s after a 300 s run's warm-up, so its memory verdict catches a leak of ~5 MiB per
# 10 minutes and more (a leak per message or per chat, which at 40 messages a second shows within minutes),
# not the slow kind the 30-minute soak is for.
SHORT_RUN_NOISE_KIB = 1536
RELEASE_SECONDS = 1800


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every process in a process group (the Celery worker and its pool children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # pgrp
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # a process that just ended
    return total


def slope_per_second(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over t."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


def churn(load: Load, rng: random.Random) -> tuple[int, int]:
    """End CHURN quiet chats and start as many new ones. A chat ends only when its patron has nothing
    unacknowledged: the patron stops talking first, its last words are answered, then it leaves."""

    async def go() -> tuple[int, int]:
        quiet = [p for p in load.patrons.values() if not p.outbox and p.joined and not p.chat.waiting]
        leaving = rng.sample(quiet, min(CHURN, len(quiet)))
        for patron in leaving:
            del load.patrons[patron.chat.id]  # no more messages from this patron
            load.ended.add(patron.chat.id)
        await asyncio.sleep(3)  # answers in flight reach both sides
        ended = 0
        async with httpx.AsyncClient(timeout=30) as http:
            for patron in leaving:
                if patron.task is not None:
                    patron.task.cancel()
                base = load.balancer.bases()[0]
                r = await http.post(f"{base}/api/v1/chats/{patron.chat.id}/end", headers={
                    "Origin": base, "Authorization": f"Bearer {patron.chat.token}"})
                ended += r.status_code == 200
                owner = load.owner.get(patron.chat.id)
                if owner is not None:  # the console lets the chat go: no more deliveries expected there
                    owner.held.discard(patron.chat.id)
            libraries = [f"f{rng.randrange(load.n_libraries):02d}" for _ in leaving]
            started = await asyncio.gather(*(load._start_chat(http, library) for library in libraries))
        return ended, len(started)

    return load.call(go())



def test_memory_stops_growing_under_a_steady_churning_load() -> None:
    stack = prepare_stack([fault_world()])
    load: Load | None = None
    out = Path(os.environ.get("VR_SOAK_OUT", ROOT / "var" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    samples: list[dict[str, object]] = []
    rng = random.Random(7)
    try:
        stack.start(webs=2)
        load = Load(stack, staff_sessions(stack), chats=CHATS, interval=INTERVAL).start()
        load.assert_whole(timeout=240)
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        t0 = time.monotonic()
        next_sample = next_churn = t0
        ended = started = 0
        while (now := time.monotonic()) - t0 < SECONDS:
            if now >= next_churn:
                e, s = churn(load, rng)
                ended, started = ended + e, started + s
                next_churn += CHURN_EVERY
            if now >= next_sample:
                rss = {name: group_rss_kib(pid) for name, pid in pids.items()}
                samples.append({"t": round(now - t0, 1), "rss_kib": rss, "chats": len(load.patrons),
                                "messages": len(load.ledger.sent)})
                log(f"soak {now - t0:.0f}s: {rss} chats {len(load.patrons)} sent {len(load.ledger.sent)}")
                out.write_text(json.dumps({"seconds": SECONDS, "samples": samples}, indent=1))
                next_sample += SAMPLE_EVERY
            for name, proc in stack.procs.items():
                assert proc.poll() is None, f"{name} exited ({proc.returncode}):\n{stack.logs()}"
            time.sleep(max(0.0, min(next_sample, next_churn) - time.monotonic()))
        final = load.assert_whole(timeout=300)  # nothing lost, every client still live
        log(f"soak done: {json.dumps(final)}; {ended} chats ended, {started} started")
        assert ended >= (SECONDS // CHURN_EVERY) * CHURN * 0.9, "the churn did not churn"

        warm = SECONDS / 3
        noise_kib = NOISE_KIB if SECONDS >= RELEASE_SECONDS else SHORT_RUN_NOISE_KIB
        verdict: dict[str, dict[str, float]] = {}
        for name in pids:
            points = [(float(s["t"]), float(s["rss_kib"][name])) for s in samples  # type: ignore[index]
                      if float(s["t"]) >= warm]  # type: ignore[arg-type]
            mean = sum(y for _, y in points) / len(points)
            window = points[-1][0] - points[0][0]
            per_10_min = slope_per_second(points) * 600
            verdict[name] = {"mean_kib": round(mean), "start_kib": points[0][1], "end_kib": points[-1][1],
                             "slope_kib_per_10_min": round(per_10_min, 1),
                             "bound_kib_per_10_min": round(mean * GROWTH_PER_10_MIN, 1),
                             # the fitted line's rise over the window, against the bound's plus the noise
                             "growth_kib": round(per_10_min * window / 600, 1),
                             "allowed_kib": round(mean * GROWTH_PER_10_MIN * window / 600 + noise_kib, 1)}
        out.write_text(json.dumps({"seconds": SECONDS, "chats": CHATS, "interval": INTERVAL,
                                   "churn": {"every": CHURN_EVERY, "chats": CHURN, "ended": ended,
                                             "started": started},
                                   "load": final, "verdict": verdict, "samples": samples}, indent=1))
        log(f"soak verdict: {json.dumps(verdict)} (samples in {out})")
        assert len([s for s in samples if float(s["t"]) >= warm]) >= 6, "too few samples"  # type: ignore[arg-type]
        growing = {n: v for n, v in verdict.items() if v["growth_kib"] > v["allowed_kib"]}
        assert not growing, f"memory still growing after the warm-up: {growing}"
    finally:
        if load is not None:
            load.stop()
        print(stack.logs()[-4000:])
        if os.environ.get("VR_SOAK_KEEP_DB"):  # to look into a failure: the processes stop, the database stays
            for name in list(stack.procs):
                stack.kill(name)
            print(f"database kept: {stack.env['DATABASE_URL']}")
        else:
            stack.stop()
