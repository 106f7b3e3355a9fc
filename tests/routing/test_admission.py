"""Admission of new chats (routing/admission.py, issue 14.4): the logic with an injected clock, and
through the whole ASGI application: a shed start is a 503 with Retry-After made before Django, and
the patron's question then goes through the question form, word for word."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import ApplicationCommunicator

from consortium import asgi
from routing import admission as admission_module
from routing.admission import TICK, Admission, AdmissionMiddleware, AllowedOrigins, LagMonitor, Limits
from routing.models import Chat, ChatState, ServerProcess, Ticket
from tests.asgi_requests import post_json as post
from tests.factories import make_consortium
from tests.routing.socket_helpers import available, expect, patron_socket, socket_world, staff_socket, start_chat


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_starts_past_the_in_flight_limit_are_shed_until_one_is_answered() -> None:
    admission = Admission(Limits(max_in_flight=2, max_loop_lag=0.0, retry_after=15), clock=Clock())
    assert [admission.admit(), admission.admit()] == [0, 0]
    assert admission.admit() == 15, "a third start would wait behind two: shed, told to come back in 15 s"
    admission.done()
    assert admission.admit() == 0
    assert (admission.admitted, admission.shed, admission.in_flight) == (3, 1, 2)


def test_a_late_event_loop_sheds_starts_and_a_prompt_one_admits_them() -> None:
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.5, retry_after=10), clock=clock)
    assert admission.admit() == 0, "no monitor yet: nothing known against the loop"
    admission.tick(0.8)
    assert admission.admit() == 10
    clock.now += TICK
    admission.tick(0.01)
    assert admission.admit() == 10, "smoothed: one prompt tick after a late one is not recovery yet"
    for _ in range(10):
        clock.now += TICK
        admission.tick(0.01)
    assert admission.admit() == 0, "a second of prompt ticks is"
    assert admission.in_flight == 2, "no in-flight limit: 0 switches it off, the count is still kept"


def test_a_monitor_that_stopped_ticking_counts_as_a_late_loop() -> None:
    """A loop too busy to run the monitor cannot report its lag: the overdue tick is the lag."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.5, retry_after=10), clock=clock)
    admission.tick(0.0)
    admission.tick(0.3)
    assert admission.loop_lag() == pytest.approx(0.06), "smoothed"
    clock.now += TICK + 0.4
    assert admission.admit() == 0
    clock.now += 0.2
    assert admission.loop_lag() == pytest.approx(0.6)
    assert admission.admit() == 10


def test_a_process_carrying_its_most_chats_sheds_starts_however_calm_it_is() -> None:
    """The chats of a burst talk after their start: a calm process admitted 3,200 of them against a knee
    of 1,600, and their messages then filled its core. Counted: its joined patron sockets and the starts
    in flight, which will be chats in a moment."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.25, retry_after=15, max_chats=3), clock=clock)
    admission.tick(0.0)
    admission.chat_joined()
    admission.chat_joined()
    assert admission.admit() == 0, "two chats and this start: three"
    assert admission.admit() == 15, "a fourth would be past the process's chats, though its loop is on time"
    assert admission.shed_reason == "chats"
    admission.done()
    admission.chat_joined()  # the admitted start's patron joined
    assert admission.admit() == 15
    admission.chat_left()
    assert admission.admit() == 0, "a chat closed: room for one"
    admission.chat_left()
    admission.chat_left()
    admission.chat_left()
    admission.chat_left()
    assert admission.chats == 0, "never below none"
    unlimited = Admission(Limits(max_in_flight=0, max_loop_lag=0.0, retry_after=15, max_chats=0), clock=clock)
    for _ in range(5):
        unlimited.chat_joined()
    assert unlimited.admit() == 0, "0 switches the check off"


def test_the_deployments_live_chats_against_the_limit_times_its_processes_shed_starts() -> None:
    """The chats whose patrons have not connected yet (a burst of starts; patrons coming back after an
    outage) are not on any socket: the deployment's count of live chats sees them."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.0, retry_after=15, max_chats=100), clock=clock)
    assert admission.count_due(), "never counted"
    admission.counted(live_chats=195, web_processes=2, admitted_before=0)
    assert not admission.count_due(), "counted a moment ago"
    assert [admission.admit() for _ in range(6)] == [0] * 5 + [15], "195 + 5 admitted since: 200 = 2 x 100"
    assert admission.shed_reason == "chats"
    for _ in range(5):
        admission.done()
    clock.now += 1.0
    assert admission.count_due()
    admission.counted(live_chats=150, web_processes=2, admitted_before=admission.admitted - admission.in_flight)
    assert admission.admit() == 0, "chats ended: room again, the starts before the count in it"
    admission.counted(live_chats=150, web_processes=1, admitted_before=admission.admitted - admission.in_flight)
    assert admission.admit() == 15, "one process left to carry them"
    admission.counted(live_chats=50, web_processes=0, admitted_before=admission.admitted - admission.in_flight)
    assert admission.web_processes == 1, "a process with no socket yet is not heart-beating: it counts itself"
    admission.counting = True
    clock.now += 5
    assert not admission.count_due(), "one count at a time: the others use the last one"
    unlimited = Admission(Limits(max_in_flight=0, max_loop_lag=0.0, retry_after=15), clock=clock)
    assert not unlimited.count_due(), "no limit: nothing to count"


def test_an_allowed_origin_is_remembered_for_a_while_only() -> None:
    clock = Clock()
    origins = AllowedOrigins(clock=clock)
    origins.remember("/api/v1/c/chats", "https://library.example.org")
    assert origins.allowed("/api/v1/c/chats", "https://library.example.org")
    assert not origins.allowed("/api/v1/other/chats", "https://library.example.org"), "per consortium"
    clock.now += 601
    assert not origins.allowed("/api/v1/c/chats", "https://library.example.org")


@pytest.mark.django_db(transaction=True)
async def test_a_shed_start_is_a_503_with_retry_after_and_the_question_form_keeps_the_text(
        settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.CHAT_START_RATE = "1000/m"
    settings.QUESTION_CLIENT_RATE = "1000/m"
    await database_sync_to_async(make_consortium)("busy", allowed_origins=["https://library.example.org"])
    admission = Admission(Limits(max_in_flight=1, max_loop_lag=0.0, retry_after=15))
    app = AdmissionMiddleware(asgi.django_asgi_app, admission, LagMonitor(admission), AllowedOrigins())
    app.configured = True  # these limits, not the settings'
    origin = "https://library.example.org"

    status, headers, _ = await post(app, "/api/v1/busy/chats", {"question": "first"}, origin)
    assert status == 201 and headers[b"access-control-allow-origin"] == origin.encode()
    assert admission.in_flight == 0, "answered: no longer in flight"

    assert admission.admit() == 0  # another start, still being answered
    question = "Do you have the 1911 county atlas? (busy)"
    status, headers, answer = await post(app, "/api/v1/busy/chats", {"question": question}, origin)
    assert status == 503 and headers[b"retry-after"] == b"15"
    assert answer["error"]["code"] == "busy"
    assert headers[b"access-control-allow-origin"] == origin.encode(), "the widget's page can read it"
    assert not await database_sync_to_async(Chat.objects.filter(question=question).exists)(), "nothing started"
    shed = [r for r in caplog.records if r.getMessage() == "chat start shed"]
    assert [(r.reason, r.in_flight) for r in shed] == [("in_flight", 1)], "the log says why"  # type: ignore[attr-defined]

    # What the page then offers: the question form, with what the patron typed.
    status, _, ticket = await post(app, "/api/v1/busy/questions", {"question": question, "email": "pat@example.org"},
                                   origin)
    assert status == 201, "the question form is never shed"
    stored = await database_sync_to_async(Ticket.objects.get)(pk=ticket["id"])
    assert (stored.question, stored.patron_email) == (question, "pat@example.org")
    admission.done()
    status, _, _ = await post(app, "/api/v1/busy/chats", {"question": "again"}, origin)
    assert status == 201


def test_a_long_database_backlog_of_the_sockets_sheds_starts() -> None:
    """Messages are stored through the sockets' few database threads: when calls queue there, every
    message waits, though the event loop itself is prompt (541 chats on one process: delivery p99 2.4 s)."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.25, retry_after=10, max_db_backlog=12),
                          clock=clock)
    admission.tick(0.0, backlog=3)
    assert admission.admit() == 0
    for _ in range(10):
        clock.now += TICK
        admission.tick(0.0, backlog=40)
    assert admission.loop_lag() == 0.0 and admission.admit() == 10
    for _ in range(20):
        clock.now += TICK
        admission.tick(0.0, backlog=2)
    assert admission.admit() == 0


def test_a_moments_backlog_among_prompt_ticks_sheds_no_start_and_a_lasting_one_does() -> None:
    """The sockets' calls come in bursts (40 librarians going available at once): one tick's burst
    among prompt ones is not overload; the same backlog tick after tick is."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.25, retry_after=10, max_db_backlog=12),
                          clock=clock)
    for backlog in [0] * 10 + [24]:
        clock.now += TICK
        admission.tick(0.0, backlog=backlog)
    assert admission.admit() == 0, "a moment's burst: admitted"
    for _ in range(3):
        clock.now += TICK
        admission.tick(0.0, backlog=24)
    assert admission.admit() == 10
    assert admission.shed_reason == "db_backlog"


def test_a_drained_backlog_admits_starts_though_its_average_still_remembers_it() -> None:
    """40 librarians going available at once: 40 calls for a few ticks, then none. The average stays
    past the limit for a while; a start then waits behind nothing."""
    clock = Clock()
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.25, retry_after=10, max_db_backlog=12),
                          clock=clock)
    for backlog in [0] * 10 + [40] * 4:
        clock.now += TICK
        admission.tick(0.0, backlog=backlog)
    assert admission.backlog > 12 and admission.admit() == 10, "still behind"
    clock.now += TICK
    admission.tick(0.0, backlog=1)
    assert admission.backlog > 12, "the average remembers the burst"
    assert admission.admit() == 0, "but the queue is drained"


async def test_the_sockets_start_the_lag_monitor_before_any_chat_start(settings: Any) -> None:
    """The monitor runs from a process's first socket (consortium/asgi.py wraps the sockets too), so a
    first chat start finds the loop and the backlog measured over the past, not sampled at once."""
    settings.CHAT_START_MAX_LOOP_LAG = 0.25
    admission = Admission(Limits(0, 0.0, 1))
    monitor = LagMonitor(admission)
    reached = []

    async def sockets(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    app = AdmissionMiddleware(sockets, admission, monitor, AllowedOrigins())
    await ApplicationCommunicator(app, {"type": "websocket", "path": "/ws/staff/"}).wait(timeout=1)
    assert reached == ["websocket"], "the socket goes on to its consumer"
    assert monitor.task is not None and not monitor.task.done(), "the monitor ticks"
    await asyncio.sleep(3 * TICK)
    assert admission.ticked_at is not None, "and has measured the loop before any start"
    monitor.task.cancel()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_process")
async def test_a_patron_socket_counts_against_the_process_while_its_chat_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """The count is kept by the patron sockets themselves (routing.sockets.patron): joined to a chat
    going on, a chat this process carries; closed, or its chat ended (the patron reading the
    transcript keeps the socket open, at no cost), room for a new start."""
    shared = admission_module.ADMISSION
    w = await database_sync_to_async(socket_world)()
    librarian = await staff_socket(w["a1"])
    await available(librarian)
    chat, token = await start_chat(w)
    assert chat.state == ChatState.QUEUED, "offered to a1: going on"
    saved = shared.limits
    shared.limits = Limits(max_in_flight=0, max_loop_lag=0.0, retry_after=15, max_chats=shared.chats + 1)
    shared.counted_at = None  # the deployment's count of an earlier test's database does not apply: count again
    app = AdmissionMiddleware(asgi.django_asgi_app, shared, LagMonitor(shared), AllowedOrigins())
    app.configured = True  # these limits, not the settings'
    origin = "https://library.example.org"
    try:
        carried = shared.chats
        comm = await patron_socket(chat.pk, token)
        await expect(comm, "joined")
        assert shared.chats == carried + 1
        status, headers, answer = await post(app, "/api/v1/sock/chats", {"question": "one too many"}, origin)
        assert status == 503 and headers[b"retry-after"] == b"15" and answer["error"]["code"] == "busy"
        shed = [r for r in caplog.records if r.getMessage() == "chat start shed"]
        assert [r.reason for r in shed] == ["chats"]  # type: ignore[attr-defined]
        await comm.disconnect()
        assert shared.chats == carried, "the socket closed: counted out"

        comm = await patron_socket(chat.pk, token)
        await expect(comm, "joined")
        assert shared.chats == carried + 1, "back: counted again"
        await comm.send_json_to({"type": "end"})
        while (await expect(comm, "state", chat=chat.pk))["state"] in ("queued", "active"):
            pass
        assert shared.chats == carried, "its chat ended: the socket stays open and is no longer counted"
        shared.counted_at = None  # the deployment's count again (a second later, in production)
        status, _, _ = await post(app, "/api/v1/sock/chats", {"question": "room again"}, origin)
        assert status == 201
        await comm.disconnect()
        assert shared.chats == carried, "not counted out twice"
    finally:
        shared.limits = saved
        await librarian.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_chats_going_on_whose_patrons_are_not_connected_shed_a_start_and_ended_ones_do_not(
        caplog: pytest.LogCaptureFixture) -> None:
    """Through the middleware and the database: the live chats are counted (the ended ones are not),
    against the limit times the web processes heart-beating."""
    w = await database_sync_to_async(socket_world)()
    first, _ = await start_chat(w)
    second, _ = await start_chat(w)
    admission = Admission(Limits(max_in_flight=0, max_loop_lag=0.0, retry_after=15, max_chats=1))
    app = AdmissionMiddleware(asgi.django_asgi_app, admission, LagMonitor(admission), AllowedOrigins())
    app.configured = True  # these limits, not the settings'
    origin = "https://library.example.org"
    # Waiting for a librarian (nobody serves `sock` here, so they were found unstaffed): going on.
    await database_sync_to_async(Chat.objects.filter(pk__in=[first.pk, second.pk]).update)(state=ChatState.QUEUED)
    now = first.arrived_at
    await database_sync_to_async(ServerProcess.objects.create)(pk="this-web", started_at=now, heartbeat_at=now)
    await database_sync_to_async(ServerProcess.objects.create)(pk="gone-web", started_at=now - timedelta(minutes=5),
                                                              heartbeat_at=now - timedelta(minutes=1))

    status, _, answer = await post(app, "/api/v1/sock/chats", {"question": "third"}, origin)
    assert status == 503 and answer["error"]["code"] == "busy", "two chats going on: 1 x 1 process"
    assert (admission.live_chats, admission.web_processes) == (2, 1), "the other process stopped beating"
    shed = [r for r in caplog.records if r.getMessage() == "chat start shed"]
    assert [(r.reason, r.live_chats) for r in shed] == [("chats", 2)]  # type: ignore[attr-defined]

    await database_sync_to_async(Chat.objects.filter(pk__in=[first.pk, second.pk]).update)(state=ChatState.ENDED)
    admission.counted_at = None  # the next start counts again (a second later, in production)
    await admission.count()  # as the middleware does on the next start
    assert admission.live_chats == 0 and admission.admit() == 0
