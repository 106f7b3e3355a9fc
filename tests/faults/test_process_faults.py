"""Processes killed (SIGKILL) under 200 concurrent chats, and restarted the way systemd would: a web
process, the timers, the Celery worker (also in the middle of a task it must not do twice) and beat.

After each: every client came back by itself, nothing acknowledged is lost or doubled, seqs came one
by one on every socket, chats waiting when the fault hit are routed and accepted, each deadline that
passed fired once, and /healthz said what was true. What each measured is printed (`-s`) and
summarised in docs/scaling.md ("Fault tests")."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.faults.harness import (
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
from tests.live.stack import Stack

CHATS = int(os.environ.get("VR_FAULT_CHATS", "200"))
LOCAL_TIMEOUT = 4
VISIBILITY_TIMEOUT = 15  # VR_CELERY_VISIBILITY_TIMEOUT of this stack: a killed worker's task is handed out again


@pytest.fixture(scope="module")
def faulty() -> Iterator[UnderLoad]:
    stack = prepare_stack([fault_world(local_timeout=LOCAL_TIMEOUT)],
                          VR_CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
    load: Load | None = None
    health: HealthLog | None = None
    try:
        sessions = staff_sessions(stack)
        stack.start(webs=2, timer=2)
        load = Load(stack, sessions, chats=CHATS).start()
        health = HealthLog(stack).start()
        wait_for("every chat accepted", lambda: len(load.active_chats()) >= CHATS, 180)  # type: ignore[union-attr]
        log(f"before any fault: {json.dumps(load.assert_whole())}")
        yield UnderLoad(stack, load, health)
    finally:
        stop_under_load(stack, load, health)


def report(name: str, data: dict[str, object]) -> None:
    log(f"{name}: {json.dumps(data, default=str)}")


def release_and_check_waiting(f: UnderLoad, chat_ids: list[str]) -> dict[str, object]:
    """The chats waiting through the fault: the slow librarians come to the desk and accept them all."""
    f.load.release_slow()
    took = wait_for("waiting chats accepted after the fault",
                    lambda: set(waiting_chats(f.stack, chat_ids).values()) == {"active"}, 90)
    found = traces(f.stack, chat_ids)
    for chat_id, events in found.items():
        assert not deadlines_fired_once(events), (chat_id, deadlines_fired_once(events), events)
        assert [e["kind"] for e in events].count("accepted") == 1, events
    f.load.hold_slow()
    return {"waiting_chats": len(chat_ids), "accepted_after_release_s": round(took, 1)}


def never_unhealthy(f: UnderLoad, t0: float, t1: float, web: str | None = None) -> bool:
    """Every answer in the window was 200 and there were some (a slow answer, past the poller's
    timeout, is not an answer, and not a lie either)."""
    said = [h.status for h in f.health.between(t0, t1, web) if h.status is not None]
    return bool(said) and all(s == 200 for s in said)


def health_said(f: UnderLoad, t0: float, t1: float) -> dict[str, dict[str, int]]:
    return {web: dict(c) for web, c in f.health.summary(t0, t1).items()}


def test_a_web_process_killed_its_clients_resume_on_another(faulty: UnderLoad) -> None:
    f = faulty
    waiting = [c.id for c in f.load.start_waiting(10)]
    # Who is on web2 now: its sockets and its process row (whose connections the timer must reap).
    before = f.stack.sql("SELECT process_id, count(*) FROM routing_connection GROUP BY process_id ORDER BY 1")
    moving = len(f.load.on("web2"))
    assert moving >= CHATS // 3, f"only {moving} clients on web2"
    t0 = time.monotonic()
    f.stack.kill("web2", signal.SIGKILL)
    killed = time.monotonic()
    back = wait_for("every client of web2 joined again on web1",
                    lambda: not f.load.on("web2") and not f.load.not_joined(), 180)
    log(f"web2 killed: its {moving} clients joined again in {back:.1f}s; connections before {before!r}")
    # systemd restarts it (Restart=always); its clients have moved on and stay where they are.
    f.stack.start_one("web2")
    f.stack.wait_http(f.stack.ports["web2"])
    restarted = time.monotonic()
    # The dead process's sockets are counted closed by the timer (20 s without a heartbeat), and its
    # librarians, who reconnected at once, never lost their presence.
    wait_for("the dead process's connections reaped", lambda: f.stack.sql(
        "SELECT count(*) FROM routing_connection c LEFT JOIN routing_serverprocess p ON p.id = c.process_id "
        "WHERE p.id IS NULL OR p.heartbeat_at < now() - interval '20 seconds'") == "0", 90)
    waited = release_and_check_waiting(f, waiting)
    whole = f.load.assert_whole()
    assert whole["counts"].get("librarian found away after a reconnect", 0) == 0, whole  # type: ignore[attr-defined]
    # /healthz: the survivor said healthy throughout; the dead one did not answer; back, healthy again.
    assert never_unhealthy(f, t0, restarted, "web1"), health_said(f, t0, restarted)
    assert all(h.status is None for h in f.health.between(killed + 0.1, restarted - 1.0, "web2"))
    wait_for("web2 healthy again", lambda: any(
        h.status == 200 for h in f.health.between(restarted, time.monotonic(), "web2")), 10)
    report("web process killed", {"clients_moved": moving, "clients_back_s": round(back, 1), **waited, **whole,
                                  "healthz": health_said(f, t0, time.monotonic())})


def test_the_timers_killed_deadlines_that_passed_fire_once_when_they_are_back(faulty: UnderLoad) -> None:
    f = faulty
    t0 = time.monotonic()
    f.stack.kill("timer1", signal.SIGKILL)
    f.stack.kill("timer2", signal.SIGKILL)
    waiting = [c.id for c in f.load.start_waiting(10)]
    # Their local step's deadline (LOCAL_TIMEOUT s) passes while no timer runs: nothing fires it.
    time.sleep(LOCAL_TIMEOUT + 3)
    found = traces(f.stack, waiting)
    assert all("escalated" not in [e["kind"] for e in events] for events in found.values()), found
    overdue = f.stack.sql(f"SELECT count(*) FROM routing_chat WHERE id IN ({','.join(repr(c) for c in waiting)}) "
                          "AND deadline < now()")
    assert overdue == str(len(waiting))
    # Both come back at once: each overdue deadline fires once, whichever timer takes it.
    f.stack.start_one("timer1")
    f.stack.start_one("timer2")
    restarted = time.monotonic()

    def escalated_once() -> bool:
        kinds = [[e["kind"] for e in events] for events in traces(f.stack, waiting).values()]
        return all(k.count("escalated") >= 1 for k in kinds)

    fired = wait_for("overdue deadlines fired after the restart", escalated_once, 60, every=0.2)
    time.sleep(2)  # two timers racing for a while: a second firing would show now
    for chat_id, events in traces(f.stack, waiting).items():
        assert [e["kind"] for e in events].count("escalated") == 1, (chat_id, events)
        assert not deadlines_fired_once(events), (chat_id, events)
    waited = release_and_check_waiting(f, waiting)
    whole = f.load.assert_whole()
    # /healthz checks the database and the channel layer, not timers: both web processes stay healthy.
    assert never_unhealthy(f, t0, restarted), health_said(f, t0, restarted)
    report("timers killed", {"overdue_fired_after_restart_s": round(fired, 1), **waited, **whole,
                             "healthz": health_said(f, t0, time.monotonic())})


def transcript_request(f: UnderLoad, chat_id: str, email: str) -> None:
    chat = f.load.chats[chat_id]
    r = httpx.post(f"{f.stack.base('web1')}/api/v1/chats/{chat_id}/transcript", json={"email": email},
                   headers={"Authorization": f"Bearer {chat.token}"}, timeout=30)
    assert r.status_code == 202, r.text


def test_the_worker_killed_queued_mail_goes_out_once_when_it_is_back(faulty: UnderLoad) -> None:
    f = faulty
    chats = sorted(f.load.active_chats())[:20]
    t0 = time.monotonic()
    f.stack.kill("worker1", signal.SIGKILL)
    for i, chat_id in enumerate(chats):  # asked while no worker runs: the tasks wait in Redis
        transcript_request(f, chat_id, f"queued{i}@example.org")
    f.stack.start_one("worker1")
    restarted = time.monotonic()
    took = wait_for("every transcript mailed", lambda: all(
        mail_count(f.stack, f"queued{i}@example.org") >= 1 for i in range(len(chats))), 90)
    time.sleep(VISIBILITY_TIMEOUT + 8)  # past the visibility timeout: nothing is handed out a second time
    counts = [mail_count(f.stack, f"queued{i}@example.org") for i in range(len(chats))]
    assert counts == [1] * len(chats), counts
    whole = f.load.assert_whole()
    assert never_unhealthy(f, t0, restarted), health_said(f, t0, restarted)
    report("worker killed", {"mails": len(chats), "all_mailed_after_restart_s": round(took, 1), **whole})


def task_ids(stack: Stack, since: int) -> list[str]:
    text = (stack.workdir / "worker1.log").read_bytes()[since:].decode(errors="replace")
    return re.findall(r"routing\.tasks\.mail_transcript\[([0-9a-f-]{36})\] received", text)


class SentMailLock:
    """Holds routing_sentmail locked from the test's own connection: a mail task that reaches its
    send_once stops there, in the middle of the task, until the test lets go."""

    def __init__(self, stack: Stack) -> None:
        self.conn = psycopg.connect(stack.env["DATABASE_URL"], autocommit=False)
        self.conn.execute("LOCK TABLE routing_sentmail IN ACCESS EXCLUSIVE MODE")
        self.stack = stack

    def waiting(self) -> int:
        return int(self.stack.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query LIKE '%routing_sentmail%'"))

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def test_a_worker_killed_in_the_middle_of_a_task_runs_it_again_without_a_second_mail(faulty: UnderLoad) -> None:
    """acks_late: a task whose worker dies before acknowledging it runs again on the restarted worker.

    Twice: killed before the mail went out (the run again sends it: not lost), and killed after the
    mail went out but before the acknowledgement reached Redis (the run again must not send a second)."""
    f = faulty
    chat_a, chat_b = sorted(f.load.active_chats())[-2:]
    log_size = (f.stack.workdir / "worker1.log").stat().st_size

    # A: killed while the task waits on its first write, before any mail.
    lock = SentMailLock(f.stack)
    try:
        transcript_request(f, chat_a, "killed-before@example.org")
        wait_for("the task in the middle of its run", lambda: lock.waiting() >= 1, 60, every=0.2)
        [task_a] = task_ids(f.stack, log_size)
        f.stack.kill("worker1", signal.SIGKILL)
    finally:
        lock.release()
    assert mail_count(f.stack, "killed-before@example.org") == 0
    log_size = (f.stack.workdir / "worker1.log").stat().st_size
    f.stack.start_one("worker1")
    took_a = wait_for("the killed task run again", lambda: mail_count(f.stack, "killed-before@example.org") >= 1,
                      VISIBILITY_TIMEOUT + 60)
    assert task_a in task_ids(f.stack, log_size), "run again by the restarted worker, same task id"

    # B: the worker's main process (which acknowledges) stopped while its pool process finishes the
    # task: the mail is out, the acknowledgement never leaves; then the whole worker is killed.
    log_size = (f.stack.workdir / "worker1.log").stat().st_size
    lock = SentMailLock(f.stack)
    try:
        transcript_request(f, chat_b, "killed-after@example.org")
        wait_for("the task in the middle of its run", lambda: lock.waiting() >= 1, 60, every=0.2)
        [task_b] = task_ids(f.stack, log_size)
        main = f.stack.procs["worker1"].pid
        os.kill(main, signal.SIGSTOP)
    finally:
        lock.release()
    wait_for("the mail sent by the task", lambda: mail_count(f.stack, "killed-after@example.org") == 1, 30, every=0.2)
    time.sleep(1)  # the pool process commits and hands its result to the stopped main process
    f.stack.kill("worker1", signal.SIGKILL)
    log_size = (f.stack.workdir / "worker1.log").stat().st_size
    f.stack.start_one("worker1")
    took_b = wait_for("the killed task run again", lambda: task_b in task_ids(f.stack, log_size),
                      VISIBILITY_TIMEOUT + 60)
    wait_for("the run again finished", lambda: re.search(
        rf"mail_transcript\[{task_b}\] succeeded",
        (f.stack.workdir / "worker1.log").read_bytes()[log_size:].decode(errors="replace")) is not None, 30)
    assert mail_count(f.stack, "killed-after@example.org") == 1, "the run again sent a second mail"
    assert mail_count(f.stack, "killed-before@example.org") == 1
    whole = f.load.assert_whole()
    report("worker killed mid-task", {"killed_before_mail_rerun_s": round(took_a, 1),
                                      "killed_after_mail_rerun_s": round(took_b, 1), **whole})


def test_beat_killed_and_restarted(faulty: UnderLoad) -> None:
    f = faulty
    log_size = (f.stack.workdir / "beat1.log").stat().st_size
    f.stack.kill("beat1", signal.SIGKILL)
    f.stack.start_one("beat1")
    # Its schedule file (when each job last ran) survived the kill: the new beat starts and stays up.
    wait_for("beat started again", lambda: b"beat: Starting" in (f.stack.workdir / "beat1.log").read_bytes()[log_size:],
             60)
    time.sleep(10)
    assert f.stack.procs["beat1"].poll() is None, (f.stack.workdir / "beat1.log").read_text()[-3000:]
    whole = f.load.assert_whole()
    report("beat killed", whole)
