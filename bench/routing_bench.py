#!/usr/bin/env python
"""Routing benchmark: time per routing decision on a large synthetic consortium (issue 3, "Benchmark").

    .venv/bin/python bench/routing_bench.py                 # scale 1 on a fresh PostgreSQL database
    .venv/bin/python bench/routing_bench.py --scale 1 2     # scale 1 and 2 (one child process each), growth
    .venv/bin/python bench/routing_bench.py --db sqlite     # the embedded engine, in a temporary file

Scale 1 is 300 libraries (3 partners each, mixed hours), 3 shared queues, 1,000 librarians present
and 2,000 waiting chats; scale s multiplies libraries, librarians and chats by s. The rows are
bulk-created, but what goes into them is decided by routing.router itself (each waiting chat is
routed from its arrival, step by step, exactly as chat_start and the timer would), so the state is
one the services produce; a check before measuring re-routes a sample and expects no change.

Measured, each call through the real services in its own transactions (events go to the in-memory
channel layer, after commit):
  new_chat      chats.chat_start for a library's widget
  available     presence.presence_set away -> available (re-routes the waiting chats of the
                librarian's queues): per call, and per chat routed
  away          presence.presence_set available -> away (measured on the way, for the record)
  *_answer      of those two, presence.presence_change alone: what the librarian's console waits
                for; the chats the change concerns are routed after it (presence.presence_reroute)
  step_timeout  route.chat_route on a chat whose step deadline has just passed, as the timer routes a
                deadline that falls alone (sweeps.due_sweep, with what its listing read of the chat;
                several at once go in batches); also by how many librarians the step newly offers the
                chat to (step_timeout_by_offers_made)
  decide        routing.router.decide alone, on a prebuilt Situation (no I/O)
and, in the same run and interleaved with those, a baseline: one indexed SELECT round trip to the
same database (and a fixed piece of pure Python for the pure core), since the machine is shared and
noisy: the ratios to the baseline are what to compare between runs. With --phases, each step timeout
is also split into its phases, wall and CPU (StepPhases); with --profile FILE, the step timeouts are
profiled (cProfile) to FILE.

The last line printed is a JSON summary (also written to --json FILE when given).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"

# A Monday, 16:30 UTC: 11:30 in New York, 08:30 in Los Angeles. No queue opens or closes within ten
# minutes either side, so hours decided at a chat's arrival still hold at T0.
T0 = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]


# --- the database ------------------------------------------------------------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def prepare_database(kind: str, scale: float, sync_commit: str) -> tuple[str, Any]:
    """A DATABASE_URL for a fresh database, and how to drop it."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="vr-bench-")
        path = Path(folder) / "bench.sqlite3"

        def drop() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            Path(folder).rmdir()

        return f"sqlite:///{path}", drop
    name = f"vr_bench_{os.getpid()}_{str(scale).replace('.', '_')}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_admin(f'CREATE DATABASE "{name}"')
    # Only this database: whether each commit waits for the disk (production: on). Off measures the
    # routing work itself; on a shared disk the wait for fsync is most of a decision and all its noise.
    _pg_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = {"on" if sync_commit == "on" else "off"}')

    def drop_pg() -> None:
        from django.db import connections

        connections.close_all()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgres://postgres@127.0.0.1:5432/{name}", drop_pg


def django_setup(database_url: str, redis_url: str | None = None) -> None:
    os.environ["DATABASE_URL"] = database_url
    # Without `redis_url`, the in-memory channel layer: events cost what they cost in-process. With it,
    # what production pays: the frames published on Redis (channels_redis's pub/sub layer).
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
        os.environ["VR_CHANNEL_PREFIX"] = "bench-" + secrets.token_hex(4)  # no production socket hears it
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "consortium.settings"
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every query in memory: not what production does
    os.environ["HTTPS"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + secrets.token_urlsafe(40))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- statistics ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values_ns: list[float]) -> dict[str, float]:
    ms = [v / 1e6 for v in values_ns]
    return {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 4), "p99_ms": round(pct(ms, 0.99), 4),
            "mean_ms": round(sum(ms) / len(ms), 4), "max_ms": round(max(ms), 4)}


class Clock:
    """Times calls, and takes one sample of each baseline after each, so all see the same noise."""

    def __init__(self, baseline: Any, commit: Any = None) -> None:
        self.baseline = baseline
        self.commit = commit
        self.base: list[float] = []
        self.commits: list[float] = []
        # This process's own CPU time per call: blind to the database's work, but also to the waits
        # of a machine shared with others, so steadier than wall time when the machine is busy.
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.label = ""

    def time(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
        cpu0 = time.process_time_ns()
        start = time.perf_counter_ns()
        result = fn(*args, **kwargs)
        elapsed = time.perf_counter_ns() - start
        self.cpu[self.label].append(time.process_time_ns() - cpu0)
        b0 = time.perf_counter_ns()
        self.baseline()
        self.base.append(time.perf_counter_ns() - b0)
        if self.commit is not None:
            c0 = time.perf_counter_ns()
            self.commit()
            self.commits.append(time.perf_counter_ns() - c0)
        return elapsed, result


def cpu_baseline() -> None:
    """A fixed piece of pure Python (dicts, tuples, a sort), the yardstick of the pure core."""
    data = [(i * 7919) % 1013 for i in range(400)]
    seen: dict[int, int] = {}
    for value in data:
        seen[value] = seen.get(value, 0) + 1
    sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))


# --- the synthetic consortium --------------------------------------------------------------------


class Built:
    def __init__(self) -> None:
        self.consortium: Any = None
        self.libraries: list[Any] = []
        self.librarians: list[int] = []
        self.shared_librarians: set[int] = set()
        self.counts: dict[str, int] = {}


def build(scale: float, seed: int) -> Built:
    from django.contrib.auth.models import User
    from django.db import transaction

    from consortium.models import Consortium
    from consortium.tokens import token_hash
    from libraries.models import Closure, Library, LibraryPartner, Queue, StaffProfile, WeeklyInterval
    from routing import router
    from routing.models import (
        Chat,
        ChatState,
        Connection,
        LibrarianPresence,
        Message,
        Offer,
        ServerProcess,
        TraceEvent,
    )
    from routing.plan import default_plan, plan_to_json
    from routing.selectors import situation_for

    rng = random.Random(seed)
    n_libraries = round(300 * scale)
    n_librarians = round(1000 * scale)
    n_chats = round(2000 * scale)
    built = Built()
    started = time.perf_counter()

    with transaction.atomic():
        consortium = Consortium.objects.create(slug="bench", name="Bench", timezone="America/New_York")
        built.consortium = consortium
        shared = [
            Queue(consortium=consortium, slug="statewide", name="Statewide", kind=Queue.Kind.SHARED,
                  timezone="America/New_York", always_open=True, position=0),
            Queue(consortium=consortium, slug="spanish", name="Español", kind=Queue.Kind.SHARED,
                  timezone="America/New_York", always_open=True, position=1, languages=["es"]),
            # Evenings and nights only: closed at T0, so its chats go through the skip rules.
            Queue(consortium=consortium, slug="after-hours", name="After hours", kind=Queue.Kind.SHARED,
                  timezone="America/Los_Angeles", always_open=False, position=2),
        ]
        Queue.objects.bulk_create(shared)
        statewide, spanish, after_hours = (Queue.objects.get(consortium=consortium, slug=s.slug) for s in shared)
        WeeklyInterval.objects.bulk_create(
            [WeeklyInterval(queue=after_hours, weekday=d, start_minute=s, end_minute=e)
             for d in range(7) for s, e in ((0, 7 * 60), (17 * 60, 1440))])

        libraries = [
            Library(consortium=consortium, slug=f"lib-{i:04d}", name=f"Library {i}", timezone=rng.choice(ZONES),
                    zip_codes=[f"{10000 + i:05d}"],
                    # Mostly the consortium's first shared queue; a few fall back to the others.
                    consortium_queue=rng.choices([None, spanish, after_hours], weights=[90, 5, 5])[0])
            for i in range(n_libraries)
        ]
        Library.objects.bulk_create(libraries)
        libraries = list(Library.objects.filter(consortium=consortium).order_by("slug"))
        hours_kind: dict[int, str] = {}
        queues = []
        for library in libraries:
            kind = rng.choices(["always", "weekly", "closed_today"], weights=[80, 15, 5])[0]
            hours_kind[library.pk] = kind
            queues.append(Queue(consortium=consortium, slug=library.slug, name=library.name, kind=Queue.Kind.LOCAL,
                                library=library, timezone=library.timezone, always_open=kind != "weekly"))
        Queue.objects.bulk_create(queues)
        local = {q.library_id: q for q in Queue.objects.filter(consortium=consortium, kind=Queue.Kind.LOCAL)}
        weekly, closures = [], []
        for library in libraries:
            queue = local[library.pk]
            if hours_kind[library.pk] == "weekly":
                # Weekdays 9-17 and Saturday morning, local time: open at T0 in the east, not yet in the west.
                weekly += [WeeklyInterval(queue=queue, weekday=d, start_minute=9 * 60, end_minute=17 * 60)
                           for d in range(5)]
                weekly.append(WeeklyInterval(queue=queue, weekday=5, start_minute=10 * 60, end_minute=14 * 60))
            elif hours_kind[library.pk] == "closed_today":
                closures.append(Closure(queue=queue, start_date=date(2026, 3, 2), end_date=date(2026, 3, 2),
                                        reason="staff day"))
        WeeklyInterval.objects.bulk_create(weekly)
        Closure.objects.bulk_create(closures)
        partners = []
        for library in libraries:
            for position, partner in enumerate(rng.sample([lib for lib in libraries if lib.pk != library.pk], 3)):
                partners.append(LibraryPartner(library=library, partner=partner, position=position))
        LibraryPartner.objects.bulk_create(partners)

        # Librarians: three a library, the rest at random; about 20% also serve a shared queue.
        homes = [lib for lib in libraries for _ in range(3)]
        homes += rng.choices(libraries, k=n_librarians - len(homes))
        users = [User(username=f"staff{i:05d}", password="!", first_name=f"Staff {i}", email=f"s{i}@example.org")
                 for i in range(len(homes))]
        User.objects.bulk_create(users)
        users = list(User.objects.filter(username__startswith="staff").order_by("username"))
        profiles = [StaffProfile(user=user, library=home, languages=["en", "es"] if rng.random() < 0.12 else ["en"])
                    for user, home in zip(users, homes, strict=True)]
        StaffProfile.objects.bulk_create(profiles)
        profiles = list(StaffProfile.objects.filter(library__consortium=consortium).order_by("pk"))
        through = []
        for profile in profiles:
            if rng.random() < 0.2:
                queue = rng.choices([statewide, spanish, after_hours], weights=[60, 25, 15])[0]
                through.append(StaffProfile.queues.through(staffprofile_id=profile.pk, queue_id=queue.pk))
                built.shared_librarians.add(profile.pk)
        StaffProfile.queues.through.objects.bulk_create(through)
        process = ServerProcess.objects.create(id="bench-web-1", started_at=T0 - timedelta(hours=2), heartbeat_at=T0)
        LibrarianPresence.objects.bulk_create([
            LibrarianPresence(librarian=p, status=LibrarianPresence.Status.AVAILABLE, online=True,
                              idle_since=T0 - timedelta(seconds=rng.randint(60, 7200)),
                              changed_at=T0 - timedelta(hours=1))
            for p in profiles])
        Connection.objects.bulk_create([
            Connection(channel_name=f"bench-staff-{p.pk}", kind=Connection.Kind.STAFF, process=process, librarian=p,
                       opened_at=T0 - timedelta(hours=1))
            for p in profiles])

        # Chats in conversation: about half the librarians hold one, one in ten is at capacity (3).
        active_rows = []
        for profile in profiles:
            held = rng.choices([0, 1, 2, 3], weights=[50, 30, 10, 10])[0]
            for _ in range(held):
                accepted = T0 - timedelta(seconds=rng.randint(30, 900))
                active_rows.append(Chat(
                    consortium=consortium, home_library=profile.library, home_found_by="library",
                    question="An answered question", token_hash=token_hash(secrets.token_urlsafe(8)),
                    state=ChatState.ACTIVE, created_at=accepted - timedelta(seconds=40), arrived_at=accepted
                    - timedelta(seconds=40), plan=[], step_index=0, step_serial=1,
                    step_entered_at=accepted - timedelta(seconds=40), librarian=profile, answered_by=profile,
                    answered_step="local", accepted_step_index=0, accepted_at=accepted, first_accepted_at=accepted,
                    last_seq=3, last_activity_at=accepted, patron_joined=True,
                    deadline=accepted + timedelta(seconds=consortium.idle_timeout), version=3))
        Chat.objects.bulk_create(active_rows, batch_size=1000)

        # Waiting chats: routed from arrival by the router itself, on the situation at T0 (no hours
        # change within the ten minutes before it), step after step as the timer would.
        situation = situation_for(consortium, T0)
        plans = {lib.pk: default_plan(lib, consortium) for lib in libraries}
        chats, messages, traces, offers = [], [], [], []
        unstaffed = 0
        while len(chats) < n_chats:
            home = rng.choice(libraries)
            plan = plans[home.pk]
            age = rng.choices([rng.uniform(1, 44), rng.uniform(46, 104), rng.uniform(106, 590),
                               rng.uniform(610, 900)], weights=[40, 30, 25, 5])[0]
            arrived = T0 - timedelta(seconds=age)
            language = "es" if rng.random() < 0.08 else ""
            chat = Chat(consortium=consortium, home_library=home, home_found_by="library",
                        question=f"Question {len(chats)}", language=language,
                        token_hash=token_hash(secrets.token_urlsafe(8)), state=ChatState.QUEUED,
                        created_at=arrived, arrived_at=arrived, last_activity_at=arrived, plan=plan_to_json(plan),
                        last_seq=1, patron_joined=True)
            view = router.WaitingChat(id=chat.pk, plan=plan, step_index=-1, step_entered_at=None,
                                      arrived_at=arrived, created_at=arrived, language=language)
            at = arrived
            open_offers: dict[int, Offer] = {}
            chat_traces = [TraceEvent(chat=chat, at=arrived, kind="created",
                                      data={"home_library": home.slug, "found_by": "library",
                                            "language": language or None})]
            while True:
                decision = router.decide(view, replace(situation, now=at))
                for note in decision.notes:
                    chat_traces.append(TraceEvent(chat=chat, at=at, kind=note.kind, data=dict(note.data)))
                if decision.state != ChatState.QUEUED:
                    break
                assert not decision.withdraw, "nobody leaves while the bench builds"
                assert not decision.expired, "the bench has no direct queues"
                if decision.step_changed:
                    chat.step_serial += 1  # (open offers keep the step that made them, as routing leaves them)
                for new in decision.offers:
                    open_offers[new.librarian] = Offer(
                        chat=chat, librarian_id=new.librarian, step_serial=chat.step_serial,
                        step=plan[decision.step_index].name, queue=new.queue, mode=new.mode, created_at=at,
                        expires_at=new.expires_at, status=Offer.Status.OPEN)
                chat.step_index = decision.step_index
                chat.step_entered_at = decision.step_entered_at
                chat.max_wait_passed = decision.max_wait_passed
                chat.deadline = decision.deadline
                chat.version += 1
                view = replace(view, step_index=decision.step_index, step_entered_at=decision.step_entered_at,
                               max_wait_passed=decision.max_wait_passed,
                               offers=tuple(router.OpenOffer(o.librarian_id, o.mode, o.expires_at)
                                            for o in open_offers.values()),
                               offered=frozenset(open_offers))
                if decision.deadline is None or decision.deadline > T0:
                    break
                at = decision.deadline
            if decision.state != ChatState.QUEUED:
                unstaffed += 1  # such a chat would not be waiting: draw another
                continue
            chats.append(chat)
            messages.append(Message(chat=chat, seq=1, sender=Message.Sender.PATRON, body=chat.question,
                                    at=arrived))
            traces += chat_traces
            offers += open_offers.values()
        Chat.objects.bulk_create(chats, batch_size=1000)
        Message.objects.bulk_create(messages, batch_size=2000)
        TraceEvent.objects.bulk_create(traces, batch_size=5000)
        Offer.objects.bulk_create(offers, batch_size=5000)

    built.libraries = libraries
    built.librarians = [p.pk for p in profiles]
    steps: dict[str, int] = defaultdict(int)
    for chat in chats:
        steps[plans[chat.home_library_id][chat.step_index].name] += 1
    built.counts = {
        "libraries": len(libraries), "shared_queues": 3, "librarians_present": len(profiles),
        "librarians_on_shared_queues": len(built.shared_librarians), "waiting_chats": len(chats),
        "active_chats": len(active_rows), "open_offers": len(offers), "trace_rows": len(traces),
        "waiting_by_step": dict(sorted(steps.items())), "draws_unstaffed_and_redrawn": unstaffed,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    from django.db import connection

    if connection.vendor == "postgresql":
        # Rows bulk-loaded a moment ago have no planner statistics yet; autovacuum would gather them
        # within a minute on a live database, so the figures are those of a database in service.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return built


def check_fixed_point(built: Built, rng: random.Random, n: int = 200) -> None:
    """Re-route a sample of the generated chats at T0 through the services' own reads: nothing may change."""
    from routing import router
    from routing.models import Chat, ChatState
    from routing.selectors import plan_queues, situation_for, waiting_chat_view

    ids = list(Chat.objects.filter(state=ChatState.QUEUED).values_list("pk", flat=True))
    for chat_id in rng.sample(ids, min(n, len(ids))):
        chat = Chat.objects.select_related("consortium").get(pk=chat_id)
        decision = router.decide(waiting_chat_view(chat), situation_for(chat.consortium, T0, plan_queues(chat)))
        if decision.notes or decision.offers or decision.withdraw or decision.deadline != chat.deadline:
            raise SystemExit(f"generated chat {chat_id} is not what the services would leave: {decision}")


# --- the measurements ---------------------------------------------------------------------------


def audience_of(chat_id: str) -> int:
    from routing.models import Offer

    return Offer.objects.filter(chat_id=chat_id, status=Offer.Status.OPEN).count()


class StepPhases:
    """Where one step timeout's time goes (--phases): marks taken inside route.chat_route by wrappers
    around what it calls in order, each a (wall, this process's CPU) pair. A step is split into

      lock               BEGIN, the chat's lock with its offers and the hinted presence: the first round trip
      decision           router.decide on what the lock read, and the step's writes gathered (_route_one_locked)
      writes_sent        the writes and the COMMIT queued on the pipeline (Writes.flush)
      answer_and_commit  from there until the COMMIT is answered: the second round trip and the disk
      place_and_events   the patron's place read from that answer, the offer frames and state sent

    The wrappers cost a few microseconds a step, inside what is timed: compare a run with --phases to
    another with it, not to one without."""

    NAMES = ("lock", "decision", "writes_sent", "answer_and_commit", "place_and_events")

    def __init__(self) -> None:
        self.marks: list[tuple[int, int]] = []
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.last: dict[str, tuple[int, int]] = {}  # the latest step's phases, (wall, CPU) ns each
        self.by_band: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))

    def mark(self) -> None:
        self.marks.append((time.perf_counter_ns(), time.process_time_ns()))

    def after(self, fn: Any) -> Any:
        def marked(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            self.mark()
            return result
        return marked

    def before(self, fn: Any) -> Any:
        def marked(*args: Any, **kwargs: Any) -> Any:
            self.mark()
            return fn(*args, **kwargs)
        return marked

    def timed(self, route: Any) -> Any:
        """route.chat_route with its phases marked, for as long as the returned function runs."""
        def step(*args: Any, **kwargs: Any) -> Any:
            originals = (route._locked_alone, route._route_one_locked, route.Writes.flush, route.Writes.tell_places)
            route._locked_alone = self.after(originals[0])
            route._route_one_locked = self.after(originals[1])
            route.Writes.flush = self.after(originals[2])
            route.Writes.tell_places = self.before(originals[3])
            self.marks = []
            self.mark()
            try:
                return route.chat_route(*args, **kwargs)
            finally:
                self.mark()
                (route._locked_alone, route._route_one_locked, route.Writes.flush,
                 route.Writes.tell_places) = originals
                self.last = {}
                if len(self.marks) == len(self.NAMES) + 1:  # (a chat skipped, locked elsewhere, has fewer)
                    for name, (a, b) in zip(self.NAMES, pairwise(self.marks), strict=True):
                        self.wall[name].append(b[0] - a[0])
                        self.cpu[name].append(b[1] - a[1])
                        self.last[name] = (b[0] - a[0], b[1] - a[1])
        return step

    def banded(self, band: str) -> None:
        """The latest step's phases filed under its band of offers made."""
        for name, pair in self.last.items():
            self.by_band[band][name].append(pair)

    def band_summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Each band's phases, wall and CPU p50: where a broadcast's extra cost falls."""
        return {band: {name: {"wall_p50_ms": round(pct([wall for wall, _ in pairs], 0.5) / 1e6, 4),
                              "cpu_p50_ms": round(pct([cpu for _, cpu in pairs], 0.5) / 1e6, 4)}
                       for name in self.NAMES if (pairs := phases.get(name))}
                for band in OFFER_BANDS if (phases := self.by_band.get(band))}

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: {"n": len(self.wall[name]), "wall_p50_ms": round(pct(self.wall[name], 0.5) / 1e6, 4),
                       "cpu_p50_ms": round(pct(self.cpu[name], 0.5) / 1e6, 4)}
                for name in self.NAMES if self.wall[name]}


def run(scale: float, db: str, samples: int, presence_samples: int, seed: int, sync_commit: str,
        presence_budget: float = 0, phases: bool = False, profile: str | None = None) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection, transaction

    from libraries.models import StaffProfile
    from routing import router
    from routing.models import Chat, ChatState, Offer
    from routing.plan import plan_from_json
    from routing.selectors import situation_for, waiting_chat_view
    from routing.services import chats, presence, route

    rng = random.Random(seed + 1)
    built = build(scale, seed)
    check_fixed_point(built, rng)
    consortium = built.consortium
    any_chat = Chat.objects.values_list("pk", flat=True).first()
    table = Chat._meta.db_table

    def select_round_trip() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT state FROM {table} WHERE id = %s", [any_chat])  # the table name is the model's own
            cursor.fetchone()

    def write_commit() -> None:
        # The least a decision that changes anything costs: one row written, one commit (which waits
        # for the disk when synchronous_commit is on).
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE routing_serverprocess SET heartbeat_at = heartbeat_at WHERE id = %s",
                           ["bench-web-1"])

    clock = Clock(select_round_trip, write_commit)
    results: dict[str, Any] = {}
    gc.collect()

    # (d) The pure core on a prebuilt situation: new chats and waiting chats at every step.
    situation = situation_for(consortium, T0)
    waiting = list(Chat.objects.filter(state=ChatState.QUEUED).select_related("consortium"))
    views = [waiting_chat_view(c) for c in rng.sample(waiting, min(len(waiting), 400))]
    for library in rng.sample(built.libraries, min(100, len(built.libraries))):
        plan = plan_from_json(Chat.objects.filter(home_library=library).values_list("plan", flat=True).first()
                              or [])
        if plan:
            views.append(router.WaitingChat(id="new", plan=plan, step_index=-1, step_entered_at=None,
                                            arrived_at=T0, created_at=T0))
    cpu = Clock(cpu_baseline)
    decide_ns: list[float] = []
    for _ in range(max(1, (samples * 4) // len(views))):
        for view in views:
            elapsed, _ = cpu.time(router.decide, view, situation)
            decide_ns.append(elapsed)
    results["decide"] = {**summary(decide_ns), "baseline": "cpu", "baseline_p50_ms": round(pct(cpu.base, .5) / 1e6, 5)}

    # (a) New chats from libraries' widgets; each is ended afterwards (untimed) so the waiting set
    # stays the size it was built at.
    now = T0 + timedelta(milliseconds=1)
    new_ns, new_audience = [], []
    clock.label = "new_chat"
    for i in range(samples):
        library = rng.choice(built.libraries)
        language = "es" if rng.random() < 0.08 else ""
        elapsed, (chat, _token) = clock.time(chats.chat_start, consortium=consortium, question=f"new {i}",
                                             library_slug=library.slug, language=language, now=now)
        new_ns.append(elapsed)
        new_audience.append(audience_of(chat.pk))
        Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).update(status=Offer.Status.WITHDRAWN, reason="ended")
        Chat.objects.filter(pk=chat.pk).update(state=ChatState.ENDED, ended_at=now, deadline=None)
    results["new_chat"] = {**summary(new_ns), "mean_audience": round(sum(new_audience) / len(new_audience), 1)}

    # (b) A present librarian goes away, then (timed) becomes available again: the waiting chats of
    # their queues are routed again. Librarians drawn at random, so ~20% serve a shared queue too.
    # Each chat routed inside the call is timed as well (route.chats_route, wrapped), which gives
    # the time per chat routed, and how many chats each call routed.
    per_chat: list[float] = []
    original_route = route.chats_route

    def timed_route(chat_ids: list[str], *args: Any, **kwargs: Any) -> None:
        # Chats are routed in batches (route.chats_route): each chat of a call is counted at the call's
        # time divided by its chats.
        start = time.perf_counter_ns()
        original_route(chat_ids, *args, **kwargs)
        if chat_ids:
            per_chat.extend([(time.perf_counter_ns() - start) / len(chat_ids)] * len(chat_ids))

    route.chats_route = timed_route  # type: ignore[assignment]
    avail_ns, avail_local_ns, avail_shared_ns, away_ns, routed_counts = [], [], [], [], []
    avail_chat_ns: list[float] = []
    answer_ns: list[float] = []
    away_answer_ns: list[float] = []
    try:
        began = time.monotonic()
        for librarian_id in rng.choices(built.librarians, k=presence_samples):
            if presence_budget and time.monotonic() - began > presence_budget and len(avail_ns) >= 10:
                break  # each call routes tens to hundreds of chats: a busy machine gets fewer calls
            librarian = StaffProfile.objects.select_related("library__consortium", "user").get(pk=librarian_id)
            clock.label = "away_answer"
            answer, _ = clock.time(presence.presence_change, librarian, "away", now)
            away_answer_ns.append(answer)
            clock.label = "away"
            elapsed, _ = clock.time(presence.presence_reroute, librarian.pk, now)
            away_ns.append(elapsed + answer)
            per_chat.clear()
            # presence_set is presence_change (what the console waits for: its answer) followed by
            # presence_reroute (the chats it concerns, routed after the answer): timed apart.
            clock.label = "available_answer"
            answer, _ = clock.time(presence.presence_change, librarian, "available", now)
            answer_ns.append(answer)
            clock.label = "available"
            elapsed, _ = clock.time(presence.presence_reroute, librarian.pk, now)
            elapsed += answer
            avail_ns.append(elapsed)
            (avail_shared_ns if librarian_id in built.shared_librarians else avail_local_ns).append(elapsed)
            routed_counts.append(len(per_chat))
            avail_chat_ns += per_chat
    finally:
        route.chats_route = original_route  # type: ignore[assignment]
    results["available"] = {**summary(avail_ns), "mean_chats_routed": round(sum(routed_counts) / len(routed_counts), 1),
                            "max_chats_routed": max(routed_counts)}
    results["available_local_only"] = summary(avail_local_ns)
    if avail_shared_ns:
        results["available_shared_queue"] = summary(avail_shared_ns)
    results["available_per_chat_routed"] = summary(avail_chat_ns)
    results["available_answer"] = summary(answer_ns)
    results["away"] = summary(away_ns)
    results["away_answer"] = summary(away_answer_ns)

    # (c) Step timeouts: chats in a step with a wait, each routed at its own deadline, in deadline
    # order, as the timer's sweep does (skip_locked, as due_sweep calls it).
    due = list(Chat.objects.filter(state=ChatState.QUEUED, deadline__isnull=False, step_index__gte=0)
               .values_list("pk", "plan", "step_index", "step_entered_at", "deadline"))
    timeouts = []
    for chat_id, plan_json, step_index, entered, deadline in due:
        plan = plan_from_json(plan_json)
        step = plan[step_index]
        if step_index < len(plan) - 1 and step.wait is not None and entered + timedelta(seconds=step.wait) == deadline:
            # What the timer's listing reads of the chat (sweeps.due_sweep), passed as it passes it.
            timeouts.append((deadline, chat_id, route.RouteHint(consortium.pk, plan_json, step_index, entered)))
    timeouts.sort()
    timeouts = timeouts[:samples]
    timeout_ns, timeout_audience = [], []
    by_offers_made: dict[str, list[float]] = defaultdict(list)
    clock.label = "step_timeout"
    step_phases = StepPhases() if phases else None
    chat_route = route.chat_route if step_phases is None else step_phases.timed(route)
    profiler = cProfile.Profile(time.thread_time) if profile else None  # this thread's CPU, not waits
    for deadline, chat_id, hint in timeouts:
        offers_before = Offer.objects.filter(chat_id=chat_id).count()
        if profiler is not None:
            profiler.enable()
        elapsed, _ = clock.time(chat_route, chat_id, deadline, skip_locked=True, hint=hint)
        if profiler is not None:
            profiler.disable()
        timeout_ns.append(elapsed)
        timeout_audience.append(audience_of(chat_id))
        band = offers_band(Offer.objects.filter(chat_id=chat_id).count() - offers_before)
        by_offers_made[band].append(elapsed)
        if step_phases is not None:
            step_phases.banded(band)
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    results["step_timeout"] = {**summary(timeout_ns),
                               "mean_audience": round(sum(timeout_audience) / max(1, len(timeout_audience)), 1)}

    base_p50 = pct(clock.base, 0.5)
    commit_p50 = pct(clock.commits, 0.5)
    # What a step costs by how many librarians it newly offers the chat to (one offer row and one trace
    # line each): the part of a step timeout that follows its audience, and the part that does not.
    step_by_offers = {band: {**summary(values), "p50_x_commit": round(pct(values, 0.5) / commit_p50, 2)}
                      for band in OFFER_BANDS if (values := by_offers_made.get(band))}
    cpu_p50 = pct(cpu.base, 0.5)
    for name, cpu_ns in clock.cpu.items():
        results[name]["client_cpu_p50_ms"] = round(pct(cpu_ns, 0.5) / 1e6, 4)
        results[name]["client_cpu_p99_ms"] = round(pct(cpu_ns, 0.99) / 1e6, 4)
    for name, figures in results.items():
        yardstick = cpu_p50 if name == "decide" else base_p50
        figures["p50_x_baseline"] = round(figures["p50_ms"] * 1e6 / yardstick, 2)
        figures["p99_x_baseline"] = round(figures["p99_ms"] * 1e6 / yardstick, 2)
        if name != "decide":
            figures["p50_x_commit"] = round(figures["p50_ms"] * 1e6 / commit_p50, 2)
            figures["p99_x_commit"] = round(figures["p99_ms"] * 1e6 / commit_p50, 2)
    return {
        "scale": scale, "db": db, "db_version": connection.cursor().connection.info.server_version
        if connection.vendor == "postgresql" else connection.Database.sqlite_version,
        "sizes": built.counts,
        "synchronous_commit": sync_commit,
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "baseline_select": summary(clock.base),
        "baseline_write_commit": summary(clock.commits),
        "baseline_cpu": summary(cpu.base),
        "decisions": results,
        "step_timeout_by_offers_made": step_by_offers,
        **({"step_timeout_phases": step_phases.summary(),
            "step_timeout_phases_by_offers_made": step_phases.band_summary()} if step_phases is not None else {}),
    }


# Each band of offers made and its top (None: no top), in order.
OFFER_BANDS: dict[str, int | None] = {"0": 0, "1-5": 5, "6-20": 20, "21-60": 60, "61+": None}


def offers_band(made: int) -> str:
    return next(band for band, top in OFFER_BANDS.items() if top is None or made <= top)


# --- orchestration ------------------------------------------------------------------------------

GOAL_MS = 5.0
PER_DECISION = ["new_chat", "available_local_only", "available_per_chat_routed", "step_timeout", "decide"]


def growth(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """How each figure grows from the first run to the second, raw and in units of each run's baseline."""
    out: dict[str, Any] = {}
    factor = second["scale"] / first["scale"]
    for name, a in first["decisions"].items():
        b = second["decisions"].get(name)
        if not b:
            continue
        row = {"p50": round(b["p50_ms"] / a["p50_ms"], 2), "p99": round(b["p99_ms"] / a["p99_ms"], 2),
               "p50_vs_baseline": round(b["p50_x_baseline"] / a["p50_x_baseline"], 2),
               "p99_vs_baseline": round(b["p99_x_baseline"] / a["p99_x_baseline"], 2)}
        for key in ("mean_audience", "mean_chats_routed"):
            if a.get(key):
                row[key.replace("mean_", "") + "_growth"] = round(b[key] / a[key], 2)
        out[name] = row
    out["consortium_growth"] = factor
    return out


def child(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.scale[0]
    url, drop = prepare_database(args.db, scale, args.synchronous_commit)
    # Stopped with SIGTERM (a parent stopped, or by hand): still drop the database on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        django_setup(url, args.redis)
        return run(scale, args.db, args.samples, args.presence_samples or args.samples, args.seed,
                   args.synchronous_commit if args.db == "postgres" else "n/a", args.presence_budget,
                   args.phases, args.profile)
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[1.0],
                        help="consortium sizes (1 = 300 libraries); two or more: each in its own process, and growth")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--redis", metavar="URL",
                        help="publish the frames on this Redis, as production does (default: in-memory layer)")
    parser.add_argument("--samples", type=int, default=500, help="timed calls per decision type (default 500)")
    parser.add_argument("--presence-samples", type=int,
                        help="timed presence changes (default: --samples); each routes many chats, all timed too")
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="on",
                        help="PostgreSQL: does a commit wait for the disk (default on, as in production)")
    parser.add_argument("--presence-budget", type=float, default=0,
                        help="stop timing presence changes after this many seconds (at least 10 calls)")
    parser.add_argument("--phases", action="store_true",
                        help="also split each step timeout into its phases, wall and CPU (StepPhases)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the step timeouts alone (one scale), in CPU time, and write the stats to FILE "
                             "(read with python -m pstats); the timings then include the profiler's cost")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON summary to this file")
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    if len(args.scale) == 1:
        runs.append(child(args))
    else:
        for scale in args.scale:
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                command = [sys.executable, __file__, "--scale", str(scale), "--db", args.db, "--samples",
                           str(args.samples), "--seed", str(args.seed), "--json", out.name]
                command += ["--synchronous-commit", args.synchronous_commit]
                command += ["--presence-budget", str(args.presence_budget)]
                if args.redis:
                    command += ["--redis", args.redis]
                if args.presence_samples:
                    command += ["--presence-samples", str(args.presence_samples)]
                if args.phases:
                    command.append("--phases")
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                runs.append(json.loads(Path(out.name).read_text())["runs"][0])

    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join([".venv/bin/python", "bench/routing_bench.py", *sys.argv[1:]]),
        "runs": runs,
    }
    if len(runs) > 1:
        report["growth"] = {f"x{r['scale']:g}": growth(runs[0], r) for r in runs[1:]}
    base = runs[0]
    report["goal_p99_under_5ms_at_first_scale"] = {
        name: base["decisions"][name]["p99_ms"] < GOAL_MS for name in PER_DECISION if name in base["decisions"]}
    for run_ in runs:
        print(f"\nscale {run_['scale']:g} ({run_['db']}): {json.dumps(run_['sizes'])}", file=sys.stderr)
        print(f"  baseline SELECT p50 {run_['baseline_select']['p50_ms']:.3f} ms, write+COMMIT p50 "
              f"{run_['baseline_write_commit']['p50_ms']:.3f} ms (synchronous_commit {run_['synchronous_commit']})",
              file=sys.stderr)
        for name, f in run_["decisions"].items():
            print(f"  {name:28s} p50 {f['p50_ms']:8.3f} ms  p99 {f['p99_ms']:8.3f} ms  "
                  f"(x baseline {f['p50_x_baseline']:7.1f} / {f['p99_x_baseline']:7.1f})", file=sys.stderr)
        for band, f in run_["step_timeout_by_offers_made"].items():
            print(f"  step_timeout, {band:>5s} offers made: {f['n']:4d} calls, p50 {f['p50_ms']:7.3f} ms "
                  f"({f['p50_x_commit']:5.2f}x a commit)", file=sys.stderr)
        for name, f in run_.get("step_timeout_phases", {}).items():
            print(f"  step_timeout phase {name:17s}: wall p50 {f['wall_p50_ms']:6.3f} ms, CPU p50 "
                  f"{f['cpu_p50_ms']:6.3f} ms ({f['n']} steps)", file=sys.stderr)
        for band, phases in run_.get("step_timeout_phases_by_offers_made", {}).items():
            print(f"  step_timeout, {band:>5s} offers made, wall/CPU p50 ms: " + ", ".join(
                f"{name} {f['wall_p50_ms']:.3f}/{f['cpu_p50_ms']:.3f}" for name, f in phases.items()), file=sys.stderr)
    text = json.dumps(report)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
