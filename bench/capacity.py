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

The search runs the stack with no limit of chats per process (VR_MAX_CHATS_PER_PROCESS=0): it measures
what a process holds.

Overload (issue 14.4; docs/benchmarks.md, "Overload"): with --overload KNEE, one step per --webs at
2 x KNEE chats (KNEE: the capacity found above, for that many web processes), their starts at
--ramp-rate a second and --probe-rate more a second all through the steady state, on a stack told its
knee (VR_MAX_CHATS_PER_PROCESS = KNEE / webs, as docs/scaling.md asks of an operator; --stack-env
overrides it). Past capacity the stack sheds starts (503 `busy`, routing/admission.py); the step
reports the share shed, every socket's sequence (0 lost, 0 repeated, 0 skipped) and the delivery of
the chats that did start against the bare relay, which is driven with the same offered load in the
same run (it sheds nothing).

    .venv/bin/python bench/capacity.py --webs 2 --overload 400 --ramp-rate 40 --probe-rate 20 --json overload.json
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


def chats_cap(webs: int, base: argparse.Namespace) -> int:
    """VR_MAX_CHATS_PER_PROCESS for the stack (routing/admission.py), unless --stack-env sets it: none
    while searching for the knee (what the process holds, not what it is told to), and the knee itself
    under --overload, as docs/scaling.md tells an operator to set it."""
    return -(-base.overload // webs) if base.overload else 0


def load_args(chats: int, webs: int, base: argparse.Namespace) -> argparse.Namespace:
    """ws_load's own arguments for one step: its defaults, with this run's settings."""
    stack_env = [f"VR_MAX_CHATS_PER_PROCESS={chats_cap(webs, base)}", *base.stack_env]  # the later ones win
    return argparse.Namespace(
        target="both", chats=chats, webs=webs, interval=base.interval, duration=base.duration,
        ramp_rate=base.ramp_rate, probe_rate=base.probe_rate, libraries=50, chats_per_librarian=10, capacity=20,
        idle_staff=None, connect_timeout=60.0, drain=120.0, stack_env=stack_env, seed=4, json=None)


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
    if d["ramp"]["chats_started"] < step["chats"]:  # shed past capacity: fewer chats than asked for
        return False, f"{step['chats'] - d['ramp']['chats_started']} of {step['chats']} chat starts shed"
    if lost:
        return False, f"{lost} messages lost"
    if p99 >= p99_ms:
        return False, f"delivery p99 {p99:.0f} ms"
    return True, f"delivery p99 {p99:.0f} ms"


def table(steps: list[dict[str, Any]], p99_ms: float) -> str:
    lines = [
        "| web processes | chats | sockets | delivery p50 / p99 (ms) | bare p50 / p99 (ms) | ratio p50 / p99 "
        "| KiB per socket | web CPU (cores) | lost | starts shed | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
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
            f"| {d.get('starts', {}).get('shed_share', 0):.0%} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def overload_table(steps: list[dict[str, Any]]) -> str:
    lines = [
        "| web processes | chats offered | started | starts shed | shed answer p50 / p99 (ms) "
        "| delivery p50 / p99 (ms) | bare p50 / p99 (ms) | ratio p50 / p99 | lost | seq repeated | seq skipped |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        d, b = s["django"], s["bare"]
        dl, bl = d["steady"]["patron_to_librarian_ms"], b["steady"]["patron_to_librarian_ms"]
        r = s["ratio_django_to_bare"].get("patron_to_librarian", {})
        lost = d["steady"]["lost_patron_to_librarian"] + d["steady"]["lost_librarian_to_patron"]
        st, shed_ms = d["starts"], d["starts"]["shed_answer_ms"]
        lines.append(
            f"| {s['webs']} | {s['chats']} | {d['ramp']['chats_started']} "
            f"| {st['shed_share']:.0%} of {st['attempted']} "
            f"| {shed_ms.get('p50', 0):.0f} / {shed_ms.get('p99', 0):.0f} "
            f"| {dl.get('p50', 0):.1f} / {dl.get('p99', 0):.0f} | {bl.get('p50', 0):.1f} / {bl.get('p99', 0):.0f} "
            f"| {r.get('p50', 0)}x / {r.get('p99', 0)}x | {lost} | {d['seq']['repeated']} | {d['seq']['skipped']} |")
    return "\n".join(lines)


def overload(base: argparse.Namespace) -> None:
    steps = []
    started = time.monotonic()
    for webs in (int(w) for w in base.webs.split(",")):
        step = run_step(2 * base.overload, webs, base)
        steps.append(step)
        d = step["django"]
        ws_load.log(f"overload: {webs} web, {2 * base.overload} chats offered: starts {d['starts']}, seq {d['seq']}")
        if base.json:
            base.json.write_text(json.dumps({"overload_of_knee": base.overload, "steps": steps}, indent=2) + "\n")
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "knee": base.overload,
              "minutes": round((time.monotonic() - started) / 60, 1), "steps": steps}
    if base.json:
        base.json.write_text(json.dumps(result, indent=2) + "\n")
    print(overload_table(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webs", default="1,2,4", help="counts of web processes, comma-separated")
    parser.add_argument("--chats", default="100,200,300,400,600,800",
                        help="numbers of concurrent chats to try, ascending, comma-separated")
    parser.add_argument("--p99-ms", type=float, default=100.0, help="the delivery p99 a step must stay under")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a participant's messages")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of steady state per step")
    parser.add_argument("--ramp-rate", type=float, default=20.0, help="chat starts a second during each ramp")
    parser.add_argument("--probe-rate", type=float, default=1.0, help="chat starts a second during the steady state")
    parser.add_argument("--stack-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the production stack (e.g. VR_CHAT_START_MAX_LOOP_LAG=0.1)")
    parser.add_argument("--overload", type=int, default=0, metavar="KNEE",
                        help="instead of searching: drive 2 x KNEE chats (overload, see above)")
    parser.add_argument("--json", type=Path, default=None)
    base = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if base.overload:
        overload(base)
        return

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
