"""Service outages under load: Redis stopped for 10 s and started again; PostgreSQL restarted.

Both on servers of the test's own (tests/faults/outages.py), never the machine's: the whole
production stack (deploy/Procfile: two daphne, the timer, the Celery worker, beat) runs on them with
200 concurrent chats of clients that resume by themselves (tests/faults/harness.py). After each
fault: no acknowledged message lost (stored once, delivered), every client back in its chats without
the test touching it, chats that were waiting routed again, every deadline that passed during the
fault fired once, /healthz told the truth while the server was down, and Celery sends mail again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.faults.harness import (
    CONSORTIUM,
    HealthLog,
    Load,
    UnderLoad,
    deadlines_fired_once,
    fault_world,
    log,
    mail_count,
    prepare_stack,
    staff_sessions,
    stop_under_load,
    traces,
    wait_for,
    waiting_chats,
)
from tests.faults.outages import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.live.stack import Stack

pytestmark = pytest.mark.fault

CHATS = 200
WAITING = 6  # chats started just before the fault, whose first deadline falls inside it
REDIS_DOWN_SECONDS = 10.0  # the issue: "Redis stopped for 10 s and started again"
POSTGRES_DOWN_SECONDS = 10.0  # a restart (every session terminated) that takes 10 s, as recovery on a big database may


@contextmanager
def loaded(stack: Stack) -> Iterator[UnderLoad]:
    """The stack started, 200 chats talking on it, /healthz polled; everything stopped after."""
    load: Load | None = None
    health: HealthLog | None = None
    try:
        stack.start(webs=2)
        load = Load(stack, staff_sessions(stack), chats=CHATS).start()
        before = load.assert_whole(timeout=240)
        log(f"before the fault: {json.dumps(before)}")
        health = HealthLog(stack).start()
        yield UnderLoad(stack, load, health)
    finally:
        stop_under_load(stack, load, health)


def leave_question(stack: Stack, email: str) -> int:
    """A patron leaves a question for e-mail (a ticket; Celery mails the patron a receipt)."""
    base = stack.base("web1")
    r = httpx.post(f"{base}/api/v1/{CONSORTIUM}/questions", timeout=30, headers={"Origin": base},
                   json={"question": "Asked after the fault", "email": email})
    return r.status_code


def check_after(run: UnderLoad, waiting: list[str], fault_began: float, what: str) -> None:
    """What every fault must leave behind, once the service is back."""
    stack, load = run.stack, run.load
    # Every client resumed by itself; every acknowledged message stored once and delivered.
    after = load.assert_whole(timeout=300)
    log(f"after {what}: {json.dumps(after)}")
    assert after["chats"] >= CHATS
    # The waiting chats passed their local deadline during the fault: it fired (once), so they were
    # offered to the partner library. Now the slow librarians get to their desks and accept.
    wait_for("the waiting chats escalated to the partners step", lambda: all(
        any(e["kind"] == "escalated" for e in events) for events in traces(stack, waiting).values()), 120)
    try:
        wait_for("every open offer shown on its librarian's console", lambda: not offers_not_shown(run), 60)
    except AssertionError as e:
        raise AssertionError(f"{e}: {offers_not_shown(run)}") from None
    load.release_slow()
    wait_for("every waiting chat accepted", lambda: set(waiting_chats(stack, waiting).values()) == {"active"}, 180)
    every = traces(stack, list(load.chats))
    problems = {chat: p for chat, events in every.items() if (p := deadlines_fired_once(events))}
    assert not problems, problems
    for chat in waiting:
        escalations = [e for e in every[chat] if e["kind"] == "escalated"]
        assert len(escalations) == 1 and escalations[0]["from"] == "local", every[chat]
        assert escalations[0]["at"] >= fault_began - 1, "the deadline should have passed during the fault"
    # Celery works again: a receipt is mailed for a question left now.
    email = f"after-{uuid.uuid4().hex[:8]}@example.org"
    assert leave_question(stack, email) == 201
    wait_for("the receipt mail from the Celery worker", lambda: mail_count(stack, email) == 1, 120)


def offers_not_shown(run: UnderLoad) -> list[str]:
    """Open offers in the database that the librarian's console does not show: a console must show
    every chat offered to its librarian, whatever the channel layer dropped on the way."""
    rows = run.stack.sql("SELECT u.username || '|' || o.chat_id FROM routing_offer o "
                         "JOIN libraries_staffprofile p ON p.id = o.librarian_id JOIN auth_user u ON u.id = p.user_id "
                         "WHERE o.status = 'open'")
    bots = {lib.username: lib for lib in [*run.load.librarians, *run.load.slow]}
    missing = []
    for line in rows.splitlines():
        username, chat = line.split("|")
        bot = bots.get(username)
        if bot is not None and chat not in bot.offers and chat not in bot.held:
            missing.append(f"{username}: {chat}")
    return missing


def start_waiting(load: Load) -> list[str]:
    return [c.id for c in load.start_waiting(WAITING)]


def health_during(run: UnderLoad, t0: float, t1: float, expect: dict[str, bool]) -> None:
    """Every web process answered /healthz during [t0, t1] with 503 and the failing dependency named."""
    records = run.health.between(t0, t1)
    by_web: dict[str, list[object]] = {}
    for h in records:
        by_web.setdefault(h.web, []).append((h.status, h.body))
    log(f"/healthz during the fault: {run.health.summary(t0, t1)}")
    assert set(by_web) == set(run.stack.ports), by_web.keys()
    for web, answers in by_web.items():
        # At least one answer: a poll takes up to /healthz's 2 s database wait (consortium/views.py)
        # while PostgreSQL is down, so a short fault sees few.
        assert answers, f"{web}: no answer at all"
        wrong = [a for a in answers if a != (503, expect)]
        assert not wrong, f"{web} said {wrong[:3]} while {expect}"


def health_back(run: UnderLoad, since: float, timeout: float = 60) -> float:
    """Seconds after `since` until every web process says 200 again."""
    def healthy() -> bool:
        last = {h.web: h for h in run.health.between(since, time.monotonic())}
        return set(last) == set(run.stack.ports) and all(
            h.status == 200 and h.body == {"database": True, "channel_layer": True} for h in last.values())
    wait_for("/healthz 200 again on every web process", healthy, timeout)
    return time.monotonic() - since


def fault_run(stack: Stack, fault: Callable[[], tuple[float, float]], what: str,
              expect: dict[str, bool]) -> None:
    with loaded(stack) as run:
        waiting = start_waiting(run.load)
        began = time.time()  # wall clock, as the routing trace's timestamps
        t0, t1 = fault()
        log(f"{what}: down for {t1 - t0:.1f} s")
        back = health_back(run, t1)
        log(f"/healthz 200 on every web process {back:.1f} s after the server was back")
        # The first and last moments of the fault are left out: a poll in flight as the server went
        # away or came back may rightly have seen it up.
        health_during(run, t0 + 1.5, t1 - 0.5, expect)
        check_after(run, waiting, began, what)


def test_redis_stopped_for_ten_seconds_and_started_again() -> None:
    with private_redis() as redis:
        stack = prepare_stack([fault_world()], REDIS_URL=redis.url)

        def fault() -> tuple[float, float]:
            return outage(redis, REDIS_DOWN_SECONDS)

        fault_run(stack, fault, "Redis stopped", {"database": True, "channel_layer": False})


def test_postgresql_restarted() -> None:
    with private_postgres() as pg:
        stack = prepare_stack([fault_world()], server=pg.server)

        def fault() -> tuple[float, float]:
            return outage(pg, POSTGRES_DOWN_SECONDS)

        fault_run(stack, fault, "PostgreSQL restarted", {"database": False, "channel_layer": True})


def outage(server: PrivateRedis | PrivatePostgres, seconds: float) -> tuple[float, float]:
    """Stop `server`, keep it down `seconds`, start it again; (stopped at, back at) on the monotonic clock."""
    t0 = time.monotonic()
    server.stop()
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    server.start()
    return t0, time.monotonic()
