#!/usr/bin/env python
"""What a broadcast's writes cost: a step's offers and trace lines, one per librarian, and the COMMIT.

    .venv/bin/python bench/write_bench.py                 # 50 and 190 librarians, 300 of each
    .venv/bin/python bench/write_bench.py --audience 190 --samples 500 --json out.json

On routing_bench's scale-1 consortium (a fresh PostgreSQL database, dropped after), each sample is
what routing.services.route.Writes writes when a chat enters a step that offers it to N librarians:
an "escalated" line, N "offered" lines and N offers, then COMMIT, under the chat's lock (its row
locked first, in the same transaction, as routing does). Two comparisons, each alternated
sample by sample in one process, so the machine's noise falls on both sides alike:

  keys      the offers' and trace lines' foreign keys checked at COMMIT (as before migration 0025:
            the constraints are added back to this database, deferred, and their triggers on) or
            not (session_replication_role = replica: no trigger fires), both with today's encoding
  encoding  the rows sent as one JSON element each (before) or a broadcast's run as one element
            (routing.services.route._traces_insert / _offers_upsert), both without key checks

and, on the same database, routing_bench's step timeouts (route.chat_route at each chat's deadline, in
deadline order), every other one with the keys checked: what the check costs a whole decision.
A baseline in the same run: one row written and committed (bench/routing_bench.py's yardstick).
The last line printed is a JSON summary (also written to --json FILE when given).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import routing_bench as rb  # the consortium it builds, and its database handling

# The constraints migration 0025 dropped, as Django made them (deferred to COMMIT).
KEYS = [("routing_offer", "bench_offer_chat", "chat_id", "routing_chat"),
        ("routing_offer", "bench_offer_librarian", "librarian_id", "libraries_staffprofile"),
        ("routing_traceevent", "bench_trace_chat", "chat_id", "routing_chat")]


def ms(values: list[int], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] / 1e6, 3)


def run(audiences: list[int], samples: int, seed: int) -> dict[str, Any]:
    from django.db import connection, transaction

    from routing.models import Chat, ChatState, Offer, TraceEvent
    from routing.services import route
    from routing.services.route import OfferMade, TraceLine, Writes, _by_server, _Iso

    built = rb.build(1.0, seed)
    with connection.cursor() as cursor:
        for table, name, column, target in KEYS:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                           f"REFERENCES {target} (id) DEFERRABLE INITIALLY DEFERRED NOT VALID")

    # The encoding before this change: an element per row.
    old_traces_sql = (f"INSERT INTO {TraceEvent._meta.db_table} (chat_id, at, kind, data) "
                      "SELECT r->>0, (r->>1)::timestamptz, r->>2, r->3 FROM jsonb_array_elements(%s::jsonb) "
                      "WITH ORDINALITY AS t(r, n) ORDER BY n")
    old_offers_sql = (
        f"INSERT INTO {Offer._meta.db_table} (chat_id, librarian_id, step_serial, step, queue, mode, created_at, "
        "expires_at, status, closed_at, reason) SELECT r->>0, (r->>1)::bigint, (r->>2)::integer, r->>3, r->>4, "
        "r->>5, (r->>6)::timestamptz, (r->>7)::timestamptz, 'open', NULL, '' FROM jsonb_array_elements(%s::jsonb) "
        "AS t(r) ON CONFLICT (chat_id, librarian_id, step_serial) DO UPDATE SET "
        + ", ".join(f"{name} = EXCLUDED.{name}" for name in route.OFFER_UPSERTED))

    def old_traces(traces: list[TraceLine]) -> None:
        iso = _Iso()
        _by_server(old_traces_sql, [json.dumps([(t.chat_id, iso[t.at], t.kind, t.data) for t in traces])])

    def old_offers(offers: list[OfferMade]) -> None:
        iso = _Iso()
        _by_server(old_offers_sql, [json.dumps([(o.chat_id, o.librarian_id, o.step_serial, o.step, o.queue, o.mode,
                                                 iso[o.created_at], iso[o.expires_at]) for o in offers])])

    new_traces, new_offers = route._traces_insert, route._offers_upsert
    chats = list(Chat.objects.filter(state=ChatState.QUEUED).values_list("pk", flat=True))
    rng = random.Random(seed)
    serial = 10_000

    def commit_baseline() -> int:
        start = time.perf_counter_ns()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE routing_serverprocess SET heartbeat_at = heartbeat_at WHERE id = %s",
                           ["bench-web-1"])
        return time.perf_counter_ns() - start

    def sample(audience: int, checked: bool, encoding: str) -> tuple[int, int]:
        nonlocal serial
        serial += 1
        route._traces_insert, route._offers_upsert = ((new_traces, new_offers) if encoding == "runs"
                                                      else (old_traces, old_offers))
        with connection.cursor() as cursor:
            cursor.execute(f"SET session_replication_role = {'origin' if checked else 'replica'}")
        chat, now = rng.choice(chats), rb.T0
        who = rng.sample(built.librarians, audience)
        writes = Writes()
        writes.traces.append(TraceLine(chat, now, "escalated", {"from": "partners", "reason": "timeout"}))
        writes.traces += [TraceLine(chat, now, "offered", {"librarian": pk, "queue": f"shared-{pk % 3}",
                                                           "mode": "broadcast"}) for pk in who]
        writes.offers += [OfferMade(chat, pk, serial, "consortium", f"shared-{pk % 3}", "broadcast", now, None)
                          for pk in who]
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        with transaction.atomic():
            with connection.cursor() as cursor:  # routing writes under its chat's lock
                cursor.execute("SELECT id FROM routing_chat WHERE id = %s FOR UPDATE", [chat])
            writes.flush()
        return time.perf_counter_ns() - wall, time.process_time_ns() - cpu

    results: dict[str, Any] = {}
    commits: list[int] = []
    try:
        # First, on the state the benchmark built (the samples below leave offers no decision made).
        results["step_timeout"] = step_timeouts(samples * 2)
        for audience in audiences:
            sides: dict[str, tuple[list[int], list[int]]] = {
                name: ([], []) for name in ("keys checked", "keys unchecked", "rows", "runs")}
            for i in range(samples):
                pairs = [("keys checked", True, "runs"), ("keys unchecked", False, "runs"),
                         ("rows", False, "rows"), ("runs", False, "runs")]
                if i % 2:
                    pairs.reverse()
                for name, checked, encoding in pairs:
                    wall, cpu = sample(audience, checked, encoding)
                    sides[name][0].append(wall)
                    sides[name][1].append(cpu)
                commits.append(commit_baseline())
            results[str(audience)] = {name: {"p50_ms": ms(wall, .5), "p90_ms": ms(wall, .9), "p99_ms": ms(wall, .99),
                                             "cpu_p50_ms": ms(cpu, .5)} for name, (wall, cpu) in sides.items()}
    finally:
        route._traces_insert, route._offers_upsert = new_traces, new_offers
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = origin")
    return {"audiences": results, "baseline_write_commit": {"p50_ms": ms(commits, .5), "p99_ms": ms(commits, .99)},
            "samples": samples}


def step_timeouts(count: int) -> dict[str, Any]:
    """routing_bench's step timeouts, alternately with the keys checked and not."""
    from datetime import timedelta

    from django.db import connection

    from routing.models import Chat, ChatState, Offer
    from routing.plan import plan_from_json
    from routing.services import route

    due = []
    for chat_id, consortium_id, plan_json, index, entered, deadline in Chat.objects.filter(
            state=ChatState.QUEUED, deadline__isnull=False, step_index__gte=0).values_list(
            "pk", "consortium_id", "plan", "step_index", "step_entered_at", "deadline"):
        plan = plan_from_json(plan_json)
        wait = plan[index].wait
        if index < len(plan) - 1 and wait is not None and entered is not None \
                and entered + timedelta(seconds=wait) == deadline:
            due.append((deadline, chat_id, route.RouteHint(consortium_id, plan_json, index, entered)))
    due.sort()
    sides: dict[str, list[int]] = {"keys checked": [], "keys unchecked": []}
    new_offers: list[int] = []
    for i, (deadline, chat_id, hint) in enumerate(due[:count]):
        name = "keys checked" if i % 2 else "keys unchecked"
        with connection.cursor() as cursor:
            cursor.execute(f"SET session_replication_role = {'origin' if i % 2 else 'replica'}")
        had = Offer.objects.filter(chat_id=chat_id).count()
        start = time.perf_counter_ns()
        route.chat_route(chat_id, deadline, skip_locked=True, hint=hint)  # as sweeps.due_sweep does
        sides[name].append(time.perf_counter_ns() - start)
        new_offers.append(Offer.objects.filter(chat_id=chat_id).count() - had)
    return {**{name: {"n": len(wall), "p50_ms": ms(wall, .5), "p90_ms": ms(wall, .9), "p99_ms": ms(wall, .99)}
               for name, wall in sides.items()},
            "new_offers_mean": round(sum(new_offers) / max(1, len(new_offers)), 1),
            "new_offers_p50": sorted(new_offers)[len(new_offers) // 2] if new_offers else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audience", type=int, nargs="+", default=[50, 190],
                        help="librarians offered each step (default 50, the benchmark's mean, and 190, a shared queue)")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON summary to this file")
    args = parser.parse_args()
    url, drop = rb.prepare_database("postgres", 1.0, "on")
    try:
        rb.django_setup(url)
        report = run(args.audience, args.samples, args.seed)
    finally:
        drop()
    base = report["baseline_write_commit"]["p50_ms"]
    print(f"baseline write+COMMIT p50 {base:.3f} ms", file=sys.stderr)
    for audience, sides in report["audiences"].items():
        for name, f in sides.items():
            if not isinstance(f, dict):
                continue
            print(f"  {audience:>12}, {name:15s} p50 {f['p50_ms']:7.3f} ms "
                  f"({f['p50_ms'] / base:5.2f}x commit)"
                  f"  p99 {f['p99_ms']:7.3f} ms  CPU p50 {f.get('cpu_p50_ms', '-')} ms", file=sys.stderr)
    text = json.dumps({"command": " ".join(["bench/write_bench.py", *sys.argv[1:]]), **report})
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
