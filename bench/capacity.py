"""Capacity: the most concurrent chats a number of web processes hold with delivery p99 under a bound.

For each count of web processes (--webs, default 1,2,4), runs bench/ws_load.py's whole scenario
(librarian bots, a ramp of chats, every socket reconnecting at once, a steady state in which every
participant sends a message every --interval seconds, a drain that counts what was lost) at
growing numbers of chats (--chats), the production stack and then the bare relay at each, and
stops growing once the stack's patron -> librarian delivery p99 passes --p99-ms, a message is lost
or a socket fails to connect. The capacity is the largest count that passed; the bare relay at the
same count is the baseline measured in the same run.

    .venv/bin/python bench/capacity.py --webs 1,2,4 --chats 100,200,300,400,600 --json capacity.json

Prints one line per step and, at the end, a Markdown table (docs/benchmarks.md, "Capacity").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ws_load  # bench/ws_load.py, beside this file (the path above)


def load_args(chats: int, webs: int, base: argparse.Namespace) -> argparse.Namespace:
    """ws_load's own arguments for one step: its defaults, with this run's settings."""
    return argparse.Namespace(
        target="both", chats=chats, webs=webs, interval=base.interval, duration=base.duration,
        ramp_rate=base.ramp_rate, probe_rate=1.0, libraries=50, chats_per_librarian=10, capacity=20,
        idle_staff=None, connect_timeout=60.0, drain=120.0, stack_env=[], seed=4, json=None)


def run_step(chats: int, webs: int, base: argparse.Namespace) -> dict[str, Any]:
    args = load_args(chats, webs, base)
    plan = ws_load.make_plan(args)
    step: dict[str, Any] = {"chats": chats, "webs": webs, "loadavg_at_start": os.getloadavg()}
    for name, kind in (("django", ws_load.DjangoTarget), ("bare", ws_load.BareTarget)):
        target = kind(args, plan)
        try:
            step[name] = asyncio.run(ws_load.drive(target, plan, args))
        finally:
            target.stop()
    step["ratio_django_to_bare"] = ws_load.ratios(step["django"], step["bare"])
    step["loadavg_at_end"] = os.getloadavg()
    return step


def verdict(step: dict[str, Any], p99_ms: float) -> tuple[bool, str]:
    d = step["django"]
    steady = d["steady"]
    lost = steady["lost_patron_to_librarian"] + steady["lost_librarian_to_patron"]
    p99 = steady["patron_to_librarian_ms"].get("p99", float("inf"))
    if d["storm"]["errors"]:
        return False, f"{d['storm']['errors']} sockets failed to connect"
    if lost:
        return False, f"{lost} messages lost"
    if p99 >= p99_ms:
        return False, f"delivery p99 {p99:.0f} ms"
    return True, f"delivery p99 {p99:.0f} ms"


def table(steps: list[dict[str, Any]], p99_ms: float) -> str:
    lines = [
        "| web processes | chats | sockets | delivery p50 / p99 (ms) | bare p50 / p99 (ms) | ratio p50 / p99 "
        "| KiB per socket | web CPU (cores) | lost | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        d, b = s["django"], s["bare"]
        dl, bl = d["steady"]["patron_to_librarian_ms"], b["steady"]["patron_to_librarian_ms"]
        r = s["ratio_django_to_bare"].get("patron_to_librarian", {})
        lost = d["steady"]["lost_patron_to_librarian"] + d["steady"]["lost_librarian_to_patron"]
        ok, _why = verdict(s, p99_ms)
        lines.append(
            f"| {s['webs']} | {s['chats']} | {d['storm']['sockets']} | {dl.get('p50', 0):.1f} / {dl.get('p99', 0):.0f} "
            f"| {bl.get('p50', 0):.1f} / {bl.get('p99', 0):.0f} | {r.get('p50', 0)}x / {r.get('p99', 0)}x "
            f"| {d['storm']['kib_per_socket']} | {sum(d['steady']['server_cpu_cores']):.2f} | {lost} "
            f"| {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webs", default="1,2,4", help="counts of web processes, comma-separated")
    parser.add_argument("--chats", default="100,200,300,400,600,800",
                        help="numbers of concurrent chats to try, ascending, comma-separated")
    parser.add_argument("--p99-ms", type=float, default=100.0, help="the delivery p99 a step must stay under")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a participant's messages")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of steady state per step")
    parser.add_argument("--ramp-rate", type=float, default=20.0, help="chat starts a second during each ramp")
    parser.add_argument("--json", type=Path, default=None)
    base = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    steps: list[dict[str, Any]] = []
    capacity: dict[int, int] = {}
    started = time.monotonic()
    for webs in (int(w) for w in base.webs.split(",")):
        capacity[webs] = 0
        for chats in (int(c) for c in base.chats.split(",")):
            step = run_step(chats, webs, base)
            steps.append(step)
            ok, why = verdict(step, base.p99_ms)
            ws_load.log(f"capacity: {webs} web, {chats} chats: {'held' if ok else 'NOT held'} ({why})")
            if base.json:
                base.json.write_text(json.dumps({"steps": steps, "capacity": capacity}, indent=2) + "\n")
            if not ok:
                break
            capacity[webs] = chats
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "p99_ms": base.p99_ms,
              "capacity": capacity, "minutes": round((time.monotonic() - started) / 60, 1), "steps": steps}
    if base.json:
        base.json.write_text(json.dumps(result, indent=2) + "\n")
    print(table(steps, base.p99_ms))
    print("capacity (largest count held):", capacity)


if __name__ == "__main__":
    main()
