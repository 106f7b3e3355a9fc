#!/usr/bin/env python
"""Timer burst: how late a burst of step deadlines escalates with the real timer process (issue 14).

    .venv/bin/python bench/timer_burst.py                      # 200 deadlines within 1 s, one timer
    .venv/bin/python bench/timer_burst.py --chats 400 --window 1 --timers 2 --json burst.json

A fresh PostgreSQL database with a consortium of 20 libraries (two partners each, every library
staffed by two available librarians) gets `--chats` waiting chats whose local step ends within
`--window` seconds of each other, a few seconds ahead on the real clock; `--timers` copies of
`manage.py run_timer` (deploy/Procfile's timer; the default deployment runs one) fire them. Each
chat's lateness is the time of its `escalated` trace line (the instant the timer's sweep decided)
minus its deadline. Goal: every deadline escalated within 1 s of it, p99.

The chats are written through chats.chat_start with arrival instants set in the past, so that
their deadlines fall together; nothing else is faked. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import routing_bench  # bench/routing_bench.py: the database and Django set-up, percentiles

ROOT = Path(__file__).resolve().parent.parent


def build(libraries: int, local_timeout: int) -> Any:
    from django.contrib.auth.models import User

    from consortium.models import Consortium
    from libraries.models import Library, LibraryPartner, Queue, StaffProfile
    from routing.models import LibrarianPresence

    consortium = Consortium.objects.create(slug="burst", name="Burst", timezone="America/New_York",
                                           local_timeout=local_timeout, partner_timeout=600, max_wait=3600)
    Queue.objects.create(consortium=consortium, slug="statewide", name="Statewide", kind=Queue.Kind.SHARED,
                         timezone="America/New_York", always_open=True)
    made = []
    for i in range(libraries):
        library = Library.objects.create(consortium=consortium, slug=f"lib-{i:02d}", name=f"Library {i}",
                                         timezone="America/New_York")
        Queue.objects.create(consortium=consortium, slug=library.slug, name=library.name, kind=Queue.Kind.LOCAL,
                             library=library, timezone="America/New_York", always_open=True)
        made.append(library)
        for j in range(2):
            user = User.objects.create_user(f"{library.slug}-{j}", password=None)
            profile = StaffProfile.objects.create(user=user, library=library)
            LibrarianPresence.objects.create(librarian=profile, status="available", online=True)
    for i, library in enumerate(made):
        for position, k in enumerate((i + 1, i + 2)):
            LibraryPartner.objects.create(library=library, partner=made[k % libraries], position=position)
    return consortium, made


def run(args: argparse.Namespace) -> dict[str, Any]:
    url, drop = routing_bench.prepare_database("postgres", 1, "on")
    routing_bench.django_setup(url)
    timers: list[subprocess.Popen[bytes]] = []
    try:
        from django.utils import timezone

        from routing.models import Chat, TraceEvent
        from routing.services import chats

        consortium, libraries = build(args.libraries, args.local_timeout)
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": args.redis, "LOG_LEVEL": "WARNING"}
        timers = [subprocess.Popen([sys.executable, "manage.py", "run_timer"], cwd=ROOT, env=env)
                  for _ in range(args.timers)]
        time.sleep(3)  # the timers are up and sweeping (nothing due yet)
        # Deadlines from `lead` seconds from now, spread evenly over the window.
        first = timezone.now() + timedelta(seconds=args.lead)
        step = args.window / max(1, args.chats - 1)
        ids = []
        for i in range(args.chats):
            deadline = first + timedelta(seconds=i * step)
            chat, _token = chats.chat_start(consortium=consortium, question=f"burst {i}",
                                            library_slug=libraries[i % len(libraries)].slug,
                                            now=deadline - timedelta(seconds=args.local_timeout))
            ids.append(chat.pk)
        written_at = timezone.now()
        if written_at >= first:
            raise SystemExit(f"writing the chats took past the first deadline: use a larger --lead than {args.lead}")
        last = first + timedelta(seconds=args.window)
        while timezone.now() < last + timedelta(seconds=args.wait):
            if Chat.objects.filter(pk__in=ids, step_index=0).count() == 0:
                break
            time.sleep(0.2)
        late_ms = []
        escalated = dict(TraceEvent.objects.filter(chat_id__in=ids, kind="escalated").values_list("chat_id", "at"))
        for chat_id, arrived in Chat.objects.filter(pk__in=ids).values_list("pk", "arrived_at"):
            at = escalated.get(chat_id)
            if at is None:
                continue
            late_ms.append((at - (arrived + timedelta(seconds=args.local_timeout))).total_seconds() * 1000)
        late_ms.sort()
        return {
            "chats": args.chats, "window_s": args.window, "timers": args.timers,
            "escalated": len(late_ms), "not_escalated": args.chats - len(late_ms),
            "late_ms": {"p50": round(routing_bench.pct(late_ms, 0.5), 1) if late_ms else None,
                        "p99": round(routing_bench.pct(late_ms, 0.99), 1) if late_ms else None,
                        "max": round(late_ms[-1], 1) if late_ms else None},
            "within_1s": sum(1 for ms in late_ms if ms <= 1000),
            "loadavg": os.getloadavg(),
        }
    finally:
        for process in timers:
            process.terminate()
        for process in timers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--window", type=float, default=1.0, help="seconds over which the deadlines fall")
    parser.add_argument("--timers", type=int, default=1, help="run_timer processes (deploy/Procfile: one)")
    parser.add_argument("--libraries", type=int, default=20)
    parser.add_argument("--local-timeout", type=int, default=60)
    parser.add_argument("--lead", type=float, default=15.0, help="seconds from now to the first deadline")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds after the last deadline to give up")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args)
    line = json.dumps(result)
    print(f"{result['chats']} deadlines within {result['window_s']} s, {result['timers']} timer(s): "
          f"late p50 {result['late_ms']['p50']} ms, p99 {result['late_ms']['p99']} ms, "
          f"max {result['late_ms']['max']} ms; "
          f"{result['within_1s']} of {result['chats']} within 1 s")
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
