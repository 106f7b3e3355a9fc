#!/usr/bin/env python
"""Statistics benchmark: how long the coordinators' statistics page takes on a year of chats at the
scale of the routing benchmark consortium (issue 7, "Done when").

    .venv/bin/python bench/stats_bench.py                    # 300 libraries, 1,000 librarians, ~300k chats
    .venv/bin/python bench/stats_bench.py --chats 100000     # fewer chats
    .venv/bin/python bench/stats_bench.py --keep             # keep the database afterwards (its name is printed)

On a fresh PostgreSQL database: 300 libraries (3 partners each, four time zones), 3 shared queues,
1,000 librarians and a year of chats, bulk-created with the shapes the statistics read: a home
library (busier libraries get more), who answered (own staff, a partner, another library, nobody),
waits, abandoned and unstaffed chats, READ scale, subject tags and surveys on one answered chat in
ten. Arrivals follow the hours of a reference desk (busy afternoons, quiet nights).

Measured, each run after one warm-up, median of --runs:
  page_year        GET /coordinator/<c>/statistics/ for the whole year, as a coordinator (the whole
                   request: every query, the charts, the template)
  page_year_lib    the same page for one library's patrons
  page_month       the page's default, the last 30 days
  csv_matrix       the who-answered-whom CSV for the year
  report_year      every figure of coordination.statistics.report() alone, and each function on its own
  coverage_4w      the coverage heat map's figures for four weeks of demand
  board_snapshot   one snapshot of the live board (what the coordinator socket reads every 2 s)

The last line printed is a JSON summary (also written to --json FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics as stats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
SUBJECTS = ["books", "e-books", "databases", "genealogy", "local history", "tax forms", "library cards",
            "renewals", "fines", "holds", "interlibrary loan", "citations", "homework", "legal", "health",
            "jobs", "government", "maps", "newspapers", "music", "film", "children", "teens", "seniors",
            "technology", "printing", "wifi", "events", "accessibility", "other"]
# Share of a day's chats in each local hour: a reference desk's afternoon.
HOURLY = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 6.0, 7.0, 7.0, 7.5, 8.0, 8.0, 7.5, 6.5,
          5.5, 5.0, 4.5, 3.5, 2.0, 1.0]


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def setup(name: str, *, fresh: bool = True) -> None:
    if fresh:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "consortium.settings"
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every query in memory: not what production does
    os.environ["HTTPS"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + secrets.token_urlsafe(40))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- the synthetic year ------------------------------------------------------------------------------


def build(n_libraries: int, n_librarians: int, n_chats: int, end: datetime, seed: int) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from consortium.models import Consortium
    from libraries.models import Library, LibraryPartner, Queue, StaffProfile
    from routing.models import Chat, Survey

    rng = random.Random(seed)
    t0 = time.perf_counter()
    with transaction.atomic():
        consortium = Consortium.objects.create(slug="bench", name="Bench", timezone="America/New_York")
        for i, slug in enumerate(("statewide", "spanish", "after-hours")):
            Queue.objects.create(consortium=consortium, slug=slug, name=slug.title(), kind=Queue.Kind.SHARED,
                                 timezone="America/New_York", always_open=True, position=i)
        libraries = Library.objects.bulk_create(
            Library(consortium=consortium, slug=f"lib-{i:03d}", name=f"Library {i:03d}", timezone=ZONES[i % 4])
            for i in range(n_libraries))
        Queue.objects.bulk_create(
            Queue(consortium=consortium, slug=lib.slug, name=lib.name, kind=Queue.Kind.LOCAL, library=lib,
                  timezone=lib.timezone, always_open=True) for lib in libraries)
        partners: dict[int, list[int]] = {}
        links = []
        for i, lib in enumerate(libraries):
            chosen = rng.sample([j for j in range(n_libraries) if j != i], 3)
            partners[lib.pk] = [libraries[j].pk for j in chosen]
            links += [LibraryPartner(library=lib, partner=libraries[j], position=p) for p, j in enumerate(chosen)]
        LibraryPartner.objects.bulk_create(links)
        password = make_password(None)
        users = User.objects.bulk_create(User(username=f"lib{i:04d}", first_name=f"Librarian {i}", password=password)
                                         for i in range(n_librarians + 1))
        profiles = StaffProfile.objects.bulk_create(
            StaffProfile(user=u, library=libraries[i % n_libraries], role=StaffProfile.Role.LIBRARIAN)
            for i, u in enumerate(users[:-1]))
        coordinator = StaffProfile.objects.create(user=users[-1], library=libraries[0],
                                                  role=StaffProfile.Role.COORDINATOR)
        coordinator.user.set_password("bench-password-1")
        coordinator.user.save()
    staff_of: dict[int, list[int]] = {}
    for p in profiles:
        staff_of.setdefault(p.library_id, []).append(p.pk)
    lib_ids = [lib.pk for lib in libraries]
    # Busier libraries get more chats (a city library and a village one): weights ~ 1/rank^0.8.
    weights = [1 / (rank + 1) ** 0.8 for rank in range(n_libraries)]
    rng.shuffle(weights)
    day_weights = HOURLY

    start = end - timedelta(days=365)
    made = surveys = 0
    batch: list[Any] = []
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    while made < n_chats:
        home_index = rng.choices(range(n_libraries), weights)[0]
        home = lib_ids[home_index]
        day = start + timedelta(days=rng.randrange(365))
        hour = rng.choices(range(24), day_weights)[0]
        arrived = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        roll = rng.random()
        by = None
        state = "ended"
        if roll < 0.55:
            by = rng.choice(staff_of[home])
            step = "local"
        elif roll < 0.75:
            by = rng.choice(staff_of[rng.choice(partners[home])])
            step = "partners"
        elif roll < 0.90:
            by = rng.choice(staff_of[rng.choice(lib_ids)])
            step = "consortium"
        elif roll < 0.96:
            state, step = "abandoned", ""
        else:
            state, step = "unstaffed", ""
        wait = min(1800, max(1, int(rng.lognormvariate(3.6, 0.8)))) if by else None
        accepted = arrived + timedelta(seconds=wait) if wait else None
        ended = (accepted or arrived) + timedelta(seconds=rng.randint(60, 1500))
        tags = rng.sample(SUBJECTS, rng.choice((0, 1, 1, 2))) if by else []
        batch.append(Chat(
            consortium=consortium, home_library_id=home, home_found_by="library", question="(benchmark)",
            token_hash="", state=state, created_at=arrived, arrived_at=arrived, last_activity_at=ended,
            plan=[{"name": "local", "queues": [libraries[home_index].slug], "wait": 45},
                  {"name": "consortium", "queues": ["statewide"], "wait": None}],
            answered_by_id=by, librarian_id=None, answered_step=step, accepted_at=accepted,
            first_accepted_at=accepted, ended_at=ended if state == "ended" else None,
            read_scale=rng.choice((1, 2, 2, 2, 3, 3, 4, 5, None)) if by else None, subjects=tags,
            outcome="answered" if by else "", last_seq=rng.randint(1, 30)))
        made += 1
        if len(batch) == 5000 or made == n_chats:
            with transaction.atomic():
                rows = Chat.objects.bulk_create(batch)
                answered = [c for c in rows if c.answered_by_id and rng.random() < 0.1]
                Survey.objects.bulk_create(
                    Survey(chat=c, rating=rng.choices((1, 2, 3, 4, 5), (2, 3, 10, 30, 55))[0],
                           comment="thanks" if rng.random() < 0.3 else "", created_at=c.ended_at or c.arrived_at)
                    for c in answered)
                surveys += len(answered)
            batch = []
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"consortium": consortium, "coordinator": coordinator.user.username, "libraries": n_libraries,
            "librarians": n_librarians, "chats": made, "surveys": surveys,
            "build_s": round(time.perf_counter() - t0, 1), "start": start, "end": end, "sample": libraries[0]}


def existing() -> dict[str, Any]:
    """The world of a database kept by an earlier run (--reuse)."""
    from django.db.models import Max, Min

    from consortium.models import Consortium
    from libraries.models import Library, StaffProfile
    from routing.models import Chat, Survey

    consortium = Consortium.objects.get(slug="bench")
    span = Chat.objects.filter(consortium=consortium).aggregate(first=Min("arrived_at"), last=Max("arrived_at"))
    return {"consortium": consortium,
            "coordinator": StaffProfile.objects.get(role=StaffProfile.Role.COORDINATOR).user.username,
            "libraries": Library.objects.filter(consortium=consortium).count(),
            "librarians": StaffProfile.objects.filter(role=StaffProfile.Role.LIBRARIAN).count(),
            "chats": Chat.objects.filter(consortium=consortium).count(), "surveys": Survey.objects.count(),
            "start": span["first"], "end": span["last"] + timedelta(seconds=1),
            "sample": Library.objects.get(slug="lib-000")}


# --- measuring ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm-up: connections, template loading, the database's caches
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {"median_s": round(stats.median(samples), 3), "min_s": round(min(samples), 3),
            "max_s": round(max(samples), 3), "runs": runs}


def measure(world: dict[str, Any], runs: int) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from coordination import board, coverage, statistics

    consortium = world["consortium"]
    client = Client()
    assert client.login(username=world["coordinator"], password="bench-password-1")
    zone = ZoneInfo(consortium.timezone)
    first = world["start"].astimezone(zone).date()
    last = world["end"].astimezone(zone).date()
    year = f"/coordinator/bench/statistics/?since={first}&until={last}"
    lib = world["sample"].slug

    def get(path: str) -> Callable[[], Any]:
        def run() -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response
        return run

    period = statistics.Period(first, last, zone)
    chats = statistics.chats_in(consortium, period)
    results: dict[str, Any] = {}
    results["page_year"] = timed(get(year), runs)
    with CaptureQueriesContext(connection) as queries:
        get(year)()
    results["page_year"]["queries"] = len(queries)
    results["page_year_lib"] = timed(get(f"{year}&library={lib}"), runs)
    results["page_month"] = timed(get("/coordinator/bench/statistics/"), runs)
    results["csv_matrix"] = timed(get(f"{year}&csv=matrix"), runs)
    figures = ("outcomes", "waits", "matrix", "balances", "per_library", "hours", "surveys", "read", "subjects")
    results["report_year"] = timed(lambda: [getattr(statistics.report(consortium, period), f) for f in figures],
                                   runs)
    libraries = list(consortium.libraries.all())
    parts: dict[str, Callable[[], Any]] = {
        "outcomes": lambda: statistics.outcomes(chats),
        "outcomes_by_library": lambda: statistics.outcomes(chats, by="home_library_id"),
        "waits": lambda: statistics.waits(chats),
        "waits_by_library": lambda: statistics.waits(chats, by="home_library_id"),
        "matrix": lambda: statistics.answer_matrix(chats),
        "tally": lambda: statistics.tally(chats),
        "balances": lambda: statistics.balances(chats, libraries),
        "hour_of_week": lambda: statistics.by_hour_of_week(chats, zone),
        "surveys": lambda: statistics.surveys(chats),
        "read_scale": lambda: statistics.read_scale(chats),
        "subjects": lambda: statistics.subjects(chats),
    }
    results["parts"] = {name: timed(fn, runs)["median_s"] for name, fn in parts.items()}
    results["coverage_4w"] = timed(lambda: coverage.coverage(consortium, world["end"], 4), runs)
    results["board_snapshot"] = timed(lambda: board.board_snapshot(consortium, world["end"]), runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=300_000)
    parser.add_argument("--libraries", type=int, default=300)
    parser.add_argument("--librarians", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", metavar="DATABASE", help="measure a database kept by --keep, without building")
    parser.add_argument("--arrival-index", action="store_true",
                        help="measure again after CREATE INDEX ON routing_chat (consortium_id, arrived_at)")
    parser.add_argument("--json")
    args = parser.parse_args()
    name = args.reuse or f"vr_statsbench_{os.getpid()}"
    setup(name, fresh=not args.reuse)
    try:
        if args.reuse:
            world = existing()
        else:
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            world = build(args.libraries, args.librarians, args.chats, end, args.seed)
            print(f"built {world['chats']} chats, {world['surveys']} surveys, {world['libraries']} libraries, "
                  f"{world['librarians']} librarians in {world['build_s']} s", flush=True)
        results = measure(world, args.runs)
        from django.db import connection

        if args.arrival_index:
            with connection.cursor() as cursor:
                cursor.execute("CREATE INDEX IF NOT EXISTS bench_chat_consortium_arrived "
                               "ON routing_chat (consortium_id, arrived_at)")
                cursor.execute("ANALYZE routing_chat")
            results = {"without_index": results, "with_arrival_index": measure(world, args.runs)}

        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            pg = cursor.fetchone()[0].split(",")[0]
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('routing_chat'))")
            size = cursor.fetchone()[0]
        summary = {
            "chats": world["chats"], "surveys": world["surveys"], "libraries": world["libraries"],
            "librarians": world["librarians"], "routing_chat_size": size, "postgres": pg,
            "python": platform.python_version(), "cpus": os.cpu_count(), **results,
        }
        for key, value in results.items():
            print(f"{key:16} {value}", flush=True)
        line = json.dumps(summary, default=str)
        print(line)
        if args.json:
            Path(args.json).write_text(line + "\n")
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            from django.db import connections

            connections.close_all()
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
