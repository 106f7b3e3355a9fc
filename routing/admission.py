"""Admission of new chats: past a web process's capacity, new chat starts are shed at once (503 with
`Retry-After`) so that the conversations already running keep flowing (issue 14.4, docs/scaling.md,
"Overload").

Why here, before Django: a chat start is a synchronous view, and Django runs those (and its
synchronous middleware) on one thread per process. Past capacity, starts queued there for 40 s,
behind them every other HTTP request of the process, while the event loop that relays messages
starved. A check inside the view would run only once the request reached that thread, which is the
queue it should keep requests out of; so it runs in the event loop, as an ASGI middleware, from
numbers this process keeps: no Redis, and no thread or database but one count a second (below).

- **Chat starts in flight**: admitted and not yet answered (queued for the thread, or in it). Past
  `CHAT_START_MAX_IN_FLIGHT` a start would wait behind that many others.
- **The sockets' database backlog**: calls of routing.threads.in_thread waiting for one of its few
  socket threads or running in one (smoothed like the lag, and still long at the latest tick: a
  drained queue delays no one). Messages are stored through it, so when it is long, every message
  waits in it: at 541 chats on one process of a 2-core machine delivery p99 was 2.4 s while the
  event loop itself was never 0.25 s late (docs/benchmarks.md, "Overload").
- **Chats carried**: past `MAX_CHATS_PER_PROCESS` (a process's knee, measured with
  bench/capacity.py) a start is shed however calm the process looks. Counted twice, and shed past
  either: this process's patron sockets joined to a chat going on, with its starts in flight; and
  the chats going on in the whole deployment (one indexed count, at most once a second, on a chat start; the
  starts admitted since added) against the limit times the web processes heart-beating. The first
  is where the load lands; the second sees the chats whose patrons have not connected yet (their
  page is loading, or they come back after an outage all at once) and those on the HTTP fallback.
  The other signals show overload only once it is there, and a chat costs little at its start and
  its load afterwards: a burst of starts whose chats talk only later is all admitted by a calm
  process, whose core their messages then fill (3,200 chats on a process of knee 1,600: delivery p99
  16.8x and 55.9x the bare relay's, docs/benchmarks.md "Session 27"). Admission cannot take a running
  chat back, so it counts what will cost, not only what costs now.
- **Event-loop lag**: how late a tick of `LagMonitor` (every `TICK` s) woke up, smoothed over about
  half a second. A loop that is late is late for every socket's frames too. A monitor that has not
  ticked at all for a while counts as that late: a starved loop cannot report its own lag.

`Admission` is plain logic with an injected clock (tests/routing/test_admission.py); the middleware
(`AdmissionMiddleware`) is the thin part.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from routing import selectors, threads
from routing.services.sweeps import PROCESS_DEAD_AFTER

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[..., Awaitable[None]]  # an ASGI application (Django's handler types its arguments its own way)

TICK = 0.1  # seconds between the lag monitor's ticks
SMOOTHING = 0.2  # weight of the newest tick in the smoothed lag
CHAT_START_PATH = re.compile(r"^/api/v1/[^/]+/chats/?$")
# How long an origin that Django allowed (CORS) is trusted for a shed answer, which is made without
# reading the consortium: a browser must be able to read the 503 to show the question form.
ORIGIN_MEMORY = 600.0
COUNT_EVERY = 1.0  # seconds a count of the deployment's live chats is used for


@dataclass(frozen=True)
class Limits:
    max_in_flight: int  # chat starts admitted and not yet answered, per process; 0: no limit
    max_loop_lag: float  # seconds; 0: not checked
    retry_after: int  # seconds, for Retry-After
    max_db_backlog: float = 0.0  # sockets' database calls waiting or running (smoothed); 0: not checked
    max_chats: int = 0  # chats a web process carries (Admission.carrying); 0: no limit


def limits_from_settings() -> Limits:
    return Limits(max_in_flight=int(settings.CHAT_START_MAX_IN_FLIGHT),
                  max_loop_lag=float(settings.CHAT_START_MAX_LOOP_LAG),
                  retry_after=int(settings.CHAT_START_RETRY_AFTER),
                  max_db_backlog=float(settings.CHAT_START_MAX_DB_BACKLOG),
                  max_chats=int(settings.MAX_CHATS_PER_PROCESS))


class Admission:
    """One process's admission of chat starts."""

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.in_flight = 0
        self.chats = 0  # patron sockets of this process joined to a chat (routing.sockets.patron)
        self.admitted = 0
        self.shed = 0
        self.lag = 0.0  # the ticks' lateness, smoothed
        self.backlog = 0.0  # the sockets' database calls waiting or running, smoothed
        self.backlog_now = 0  # the same at the latest tick, as it was
        self.ticked_at: float | None = None  # None: no monitor (yet): nothing known about the loop
        self.shed_reason = ""  # why the latest start shed was: chats, in_flight, loop_lag or db_backlog
        # The deployment's chats going on and its web processes, as last counted (selectors.
        # live_chats_and_web_processes), and how many starts this process had admitted and answered then.
        self.live_chats = 0
        self.web_processes = 1
        self.counted_at: float | None = None  # None: never counted: only this process's own count applies
        self.admitted_at_count = 0
        self.counting = False  # a count is being taken (one at a time; the others use the last one)

    def tick(self, lag: float, backlog: int = 0) -> None:
        """The lag monitor woke up `lag` seconds later than it asked to, and found `backlog` socket
        database calls waiting or running. Smoothed (about the last half second counts): one slow tick
        (a garbage collection, one large history) is not overload."""
        lag = max(0.0, lag)
        if self.ticked_at is None:
            self.lag, self.backlog = lag, float(backlog)
        else:
            self.lag += SMOOTHING * (lag - self.lag)
            self.backlog += SMOOTHING * (backlog - self.backlog)
        self.backlog_now = backlog
        self.ticked_at = self.clock()

    def behind(self) -> bool:
        """Whether the sockets' database work is behind: a long backlog over the last half second that
        is still long at the latest tick. A queue is not a loop: once drained, a start waits behind
        nothing, though the average still remembers the burst (the sign-ins and presence calls of 40
        consoles a moment before shed the next 0.4 s of starts on a process far from its capacity)."""
        limit = self.limits.max_db_backlog
        return bool(limit) and self.ticked_at is not None and self.backlog > limit and self.backlog_now > limit / 2

    def loop_lag(self) -> float:
        """The loop's lag now: the last tick's, or how overdue the next tick is, whichever is more."""
        if self.ticked_at is None:
            return 0.0
        overdue = self.clock() - self.ticked_at - TICK
        return max(self.lag, overdue)

    def admit(self) -> int:
        """0: admitted (call `done` when it is answered); else the seconds to tell the client to wait."""
        limits = self.limits
        carrying = self.carrying()
        full = limits.max_in_flight and self.in_flight >= limits.max_in_flight
        late = limits.max_loop_lag and self.loop_lag() > limits.max_loop_lag
        behind = self.behind()
        if carrying or full or late or behind:
            self.shed += 1
            self.shed_reason = ("chats" if carrying else "in_flight" if full else "loop_lag" if late
                                else "db_backlog")
            return limits.retry_after
        self.in_flight += 1
        self.admitted += 1
        return 0

    def done(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def carrying(self) -> bool:
        """Whether the chats carried are at the limit: this process's, or the deployment's against
        the limit times its web processes. Starts admitted since the latest count count as chats."""
        limit = self.limits.max_chats
        if not limit:
            return False
        if self.chats + self.in_flight >= limit:
            return True
        if self.counted_at is None:
            return False
        return self.live_chats + (self.admitted - self.admitted_at_count) >= limit * self.web_processes

    def count_due(self) -> bool:
        return bool(self.limits.max_chats) and not self.counting and (
            self.counted_at is None or self.clock() - self.counted_at >= COUNT_EVERY)

    def counted(self, live_chats: int, web_processes: int, admitted_before: int) -> None:
        """A count taken: `live_chats` going on in the deployment, `web_processes` heart-beating, when
        this process had admitted and answered `admitted_before` starts (those admitted after may not
        be in the count yet). A process with no socket yet is not heart-beating: it counts itself."""
        self.live_chats, self.web_processes = live_chats, max(1, web_processes)
        self.admitted_at_count = admitted_before
        self.counted_at = self.clock()

    async def count(self) -> None:
        """Count the deployment's live chats and web processes, on the heartbeat's thread (never behind
        the sockets' work). If the database cannot answer, the last count stands, for a second more."""
        self.counting = True
        before = self.admitted - self.in_flight
        try:
            live, processes = await threads.in_thread(selectors.live_chats_and_web_processes,
                                                      threads.HEARTBEAT_THREAD)(timezone.now(), PROCESS_DEAD_AFTER)
        except Exception:
            logger.warning("live chats not counted", exc_info=True)
            self.counted_at = self.clock() if self.counted_at is not None else None
            return
        finally:
            self.counting = False
        self.counted(live, processes, before)

    def chat_joined(self) -> None:
        """A patron socket of this process joined its chat going on: it carries that chat's messages
        from now, until it closes or its chat ends (chat_left).

        Counted where the load lands, not where the chat started: behind a balancer a start answered
        by one process often has its socket on another. A patron on the HTTP fallback (no socket) is
        not counted; nor are librarians, whose sockets are never refused."""
        self.chats += 1

    def chat_left(self) -> None:
        self.chats = max(0, self.chats - 1)


class LagMonitor:
    """Ticks every TICK seconds on the running event loop and reports its lateness to `admission`."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is loop and self.task is not None and not self.task.done():
            return
        self.loop = loop
        self.admission.ticked_at = None  # a new loop: what the old one said does not count
        self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.admission.tick(loop.time() - asked, threads.backlog)


class AllowedOrigins:
    """Origins Django's answers allowed (CORS) lately, per consortium path, for the shed answers."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.seen: dict[tuple[str, str], float] = {}

    def remember(self, path: str, origin: str) -> None:
        if len(self.seen) > 10_000:
            self.seen.clear()  # a bound, not a cache policy: it fills again from the next answers
        self.seen[(path, origin)] = self.clock()

    def allowed(self, path: str, origin: str) -> bool:
        at = self.seen.get((path, origin))
        return at is not None and self.clock() - at < ORIGIN_MEMORY


ADMISSION = Admission(Limits(0, 0.0, 1))  # configured from settings by the middleware
MONITOR = LagMonitor(ADMISSION)
ORIGINS = AllowedOrigins()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def busy_response(retry_after: int, origin: str | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {
        "code": "busy",
        "detail": "the service is busy: no new chat can start just now. Try again shortly, or leave "
                  "your question for an answer by email."}}).encode()
    headers = [(b"content-type", b"application/json"), (b"retry-after", str(retry_after).encode()),
               (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    if origin:
        headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
    return headers, body


class AdmissionMiddleware:
    """Sheds chat starts (POST /api/v1/<c>/chats) that `ADMISSION` does not admit; passes the rest.

    Around the sockets too (consortium/asgi.py), where it only starts the lag monitor: the loop's lag
    and the sockets' backlog are then known, smoothed, before the first start comes. Started by that
    first start, the monitor took its first tick at full weight, whatever the moment's burst."""

    def __init__(self, app: App, admission: Admission = ADMISSION, monitor: LagMonitor = MONITOR,
                 origins: AllowedOrigins = ORIGINS) -> None:
        self.app, self.admission, self.monitor, self.origins = app, admission, monitor, origins
        self.configured = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.configured:
            self.admission.limits = limits_from_settings()
            self.configured = True
        if scope["type"] in ("http", "websocket") and (self.admission.limits.max_loop_lag
                                                       or self.admission.limits.max_db_backlog):
            self.monitor.ensure_running()
        if scope["type"] != "http" or scope.get("method") != "POST" or not CHAT_START_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if self.admission.count_due():
            await self.admission.count()
        retry = self.admission.admit()
        if retry:
            logger.warning("chat start shed", extra={
                "reason": self.admission.shed_reason, "chats": self.admission.chats,
                "live_chats": self.admission.live_chats, "web_processes": self.admission.web_processes,
                "in_flight": self.admission.in_flight,
                "loop_lag": round(self.admission.loop_lag(), 3), "db_backlog": round(self.admission.backlog, 1)})
            trusted = origin if origin and self.origins.allowed(scope["path"], origin) else None
            headers, body = busy_response(retry, trusted)
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        answered = False

        def finish() -> None:
            nonlocal answered
            if not answered:
                answered = True
                self.admission.done()

        async def remembering(message: Message) -> None:
            if message["type"] == "http.response.start" and origin:
                for key, value in message.get("headers", []):
                    if key.lower() == b"access-control-allow-origin" and value.decode("latin-1") == origin:
                        self.origins.remember(scope["path"], origin)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finish()  # answered: Django's cleanup after this is no start's wait
            await send(message)

        try:
            await self.app(scope, receive, remembering)
        finally:
            finish()
