"""Alerts to coordinators through the production stack (real daphne, Celery worker, PostgreSQL, Redis):
the evaluation task as beat sends it (by name, to the broker; the instant passed in so that minutes pass
at once), run by a worker of two processes; the mail read from the mail folder; the live board over the
coordinator socket, served by another process than the one that raised the alert."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import pytest

from tests.live.stack import PASSWORD, Stack, connect, librarian, login, world
from tests.live.test_security_mail import to, wait_for

SLUG = "alertlive"
WORLD = world(SLUG, libraries=[{"slug": "al-a", "hours": {}},
                               {"slug": "al-b", "hours": {}, "policy": "# Cards\n\nFree.",
                                "policy_reviewed": "2020-01-01"}],
              staff=[{"username": "al-cora", "library": "al-a", "role": "coordinator"},
                     {"username": "al-lucia", "library": "al-b", "role": "coordinator"},
                     {"username": "al-ana", "library": "al-a", "queues": ["statewide"]}])
WORLD["consortium"]["alerts"] = {"queue_unstaffed_minutes": 10}  # the consortium file's alerts section

SPANISH = ('from libraries.models import StaffProfile; '
           'StaffProfile.objects.filter(user__username="al-lucia").update(language="es")')

# What beat sends every minute, by name, with the instant to evaluate at (ISO): two at once when asked.
ENQUEUE = """
from consortium.celery import app
for at in AT:
    app.send_task("alerts.tasks.alerts_evaluate_all", kwargs={"at": at})
"""

T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=1, timer=1, worker=1, beat=0) as s:
        s.manage("shell", "-c", SPANISH)
        yield s


def evaluations_done(stack: Stack) -> int:
    log = (stack.workdir / "worker1.log").read_text(errors="replace")
    return sum(1 for line in log.splitlines() if "alerts.tasks.alerts_evaluate_all[" in line and "succeeded" in line)


def evaluate(stack: Stack, *minutes: float) -> None:
    """The evaluation at T0 + each of `minutes` (sent together), run by the worker; returns once all have run."""
    done = evaluations_done(stack)
    ats = [(T0 + timedelta(minutes=m)).isoformat() for m in minutes]
    stack.manage("shell", "-c", ENQUEUE.replace("AT", json.dumps(ats)))
    wait_for("the evaluations", lambda: evaluations_done(stack) >= done + len(ats))


def mails_to(stack: Stack, address: str) -> list[tuple[str, str]]:
    """(subject, body) of each mail to `address`: the subject decoded (a Spanish one is MIME-encoded); the
    body as written (8-bit UTF-8)."""
    return [(str(make_header(decode_header(m["Subject"]))), str(m.get_payload())) for m in to(stack, address)]


async def board_frame(stack: Stack, cookies: dict[str, str], check: object) -> dict[str, object]:
    """The first board frame from the coordinator socket for which `check(frame)` holds."""
    sock = await connect(stack.base(), f"/ws/coordinator/?consortium={SLUG}",
                         {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    try:
        return await sock.expect(lambda f: f.get("type") == "board" and check(f), timeout=20)  # type: ignore[operator]
    finally:
        await sock.close()


def raised_keys(frame: dict[str, object]) -> list[str]:
    return [a["kind"] for a in frame["raised"]]  # type: ignore[attr-defined,index]


def test_alerts_are_mailed_by_the_worker_once_per_condition_per_hour_and_shown_on_the_board(stack: Stack) -> None:
    cora = "al-cora@example.org"
    # Two runs at once on the worker's two processes: the policy page's alert (raised at once) is mailed once.
    evaluate(stack, 0, 0)
    wait_for("the policy alert", lambda: len(mails_to(stack, cora)) == 1)
    [(subject, body)] = mails_to(stack, cora)
    assert subject == "Alertlive: 1 alert(s) need a coordinator"
    assert "The policy page of Al-B Library is past its review date (last reviewed 2020-01-01)." in body
    assert "/admin/libraries/library/" in body and "Statewide" not in body  # the queue: not yet 10 minutes
    wait_for("her mail", lambda: len(mails_to(stack, "al-lucia@example.org")) == 1)
    [(subject_es, body_es)] = mails_to(stack, "al-lucia@example.org")  # in her language
    assert subject_es == "Alertlive: 1 alerta(s) necesitan a un coordinador"
    assert "La página de políticas de Al-B Library pasó su fecha de revisión" in body_es

    evaluate(stack, 10)  # Statewide open with nobody for 10 minutes: mailed; the policy page not again
    wait_for("the queue alert", lambda: len(mails_to(stack, cora)) == 2)
    [queue_body] = [body for _, body in mails_to(stack, cora) if "Statewide" in body]
    assert "Statewide is open with nobody available to take its chats." in queue_body
    assert "/coordinator/alertlive/hours/statewide/" in queue_body and "policy page" not in queue_body

    cookies = login(stack.base(), "al-cora", PASSWORD)
    frame = asyncio.run(board_frame(stack, cookies, lambda f: len(f["raised"]) == 2))
    assert sorted(raised_keys(frame)) == ["policy_stale", "queue_unstaffed"]

    evaluate(stack, 11, 40)  # within the hour: nothing more
    evaluate(stack, 61)  # the policy page's hour is over; the queue's is not
    wait_for("the hourly reminder", lambda: len(mails_to(stack, cora)) == 3)
    reminders = [body for _, body in mails_to(stack, cora) if "policy page" in body]
    assert len(reminders) == 2 and all("Statewide" not in body for body in reminders)

    async def ana_signs_in() -> dict[str, object]:
        sock, _, _ = await librarian(stack.base(), "al-ana", PASSWORD)
        try:
            await asyncio.to_thread(evaluate, stack, 62)
            return await board_frame(stack, cookies, lambda f: raised_keys(f) == ["policy_stale"])
        finally:
            await sock.close()

    frame = asyncio.run(ana_signs_in())  # someone available on Statewide: its alert leaves the board
    assert raised_keys(frame) == ["policy_stale"]
    assert len(mails_to(stack, cora)) == 3
