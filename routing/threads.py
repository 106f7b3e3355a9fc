"""Where the sockets' database work runs (docs/benchmarks.md, "Real time (WebSocket load)").

Channels' database_sync_to_async is thread-sensitive by default: all of a process's sockets queue
their database work on one thread, so the process makes one round trip at a time, a slow query on
one chat delays every frame of every other chat, and under load (a reconnect storm: hundreds of
sign-in lookups and joins at once) the web process's heartbeat waited so long behind them that the
timer took the live process for dead and closed its sockets' rows under them.

Nothing in the socket code needs that single thread: a socket handles its frames one after another
(the consumer awaits each handler) and chats are serialized by their row locks (routing.services).
So socket work runs in a small pool of threads, and the heartbeat in a thread of its own. Each of
these threads keeps its database connection between calls and gives it back to the connection pool
when it is broken or old (`_kept_connection`), in the thread that used it. Pools of our own rather than the event loop's
default one: they outlive event loops, so no connection is left behind in a thread of a loop that
has closed (the test suite starts one per test).

SQLite has one writer at a time (and an in-memory test database locks whole tables across
threads): there the single thread is the right tool, and the embedded default keeps it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from routing import events

CONCURRENT = not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
# Three threads per web process overlap the database round trips of different sockets; more only
# fight the event loop for the GIL (measured: with six, sign-in handshakes timed out during a
# reconnect storm). The connection pool (VR_DB_POOL_MAX, consortium/settings.py) stays above this.
SOCKET_THREADS = ThreadPoolExecutor(max_workers=3, thread_name_prefix="vr-socket-db")
HEARTBEAT_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vr-heartbeat")
# Routing that follows an answer already given (a presence change re-routes the chats it concerns):
# one thread per process, so however many librarians change presence at once, that work queues here
# instead of taking the socket threads from everyone's messages and accepts.
ROUTING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vr-routing")

logger = logging.getLogger(__name__)
_background: set[asyncio.Task[Any]] = set()


def in_background(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` (an in_thread call) without waiting for it; kept until done, however its socket
    ends, and a failure logged (the timer's fallback then does the work: routing.models.reroute_due)."""
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        _background.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            logger.error("background work failed", exc_info=finished.exception())

    task.add_done_callback(done)


# Calls of in_thread waiting for a socket thread or running in one, in this process: how far the
# sockets' database work is behind (routing/admission.py sheds new chats past a limit of it). Read and
# written only on the event loop. Not the routing thread's or the heartbeat's calls: nothing a socket
# waits for queues behind them (a presence change's re-routes, hundreds of chats each, queue on the
# routing thread so that they do not hold the sockets' threads).
backlog = 0


def in_thread(func: Callable[..., Any], executor: ThreadPoolExecutor = SOCKET_THREADS) -> Any:
    """`func` as a coroutine that runs it in `executor` (Channels' single thread on SQLite).

    The channel-layer events `func` publishes (routing.events, after its commits) are sent from the
    event loop once it returns, or raises after committing something, rather than from the thread.
    A handler cancelled while the thread works (daphne ending a closed connection's consumer) must not
    drop what the thread then commits: the shield lets the call run to its end, sending included,
    whatever happens to the handler that awaited it."""

    def collecting(outbox: events.Outbox, *args: Any, **kwargs: Any) -> Any:
        with events.collected(outbox):
            return func(*args, **kwargs)

    if CONCURRENT:
        async def run(outbox: events.Outbox, *args: Any, **kwargs: Any) -> Any:
            # Not in a copy of the caller's context (as asgiref does): Django's connections live in
            # context variables, so each call would open a connection of its own and never close it.
            # The thread's own context keeps them, one per thread, from call to call.
            return await asyncio.get_running_loop().run_in_executor(
                executor, partial(_kept_connection, collecting, outbox, *args, **kwargs))
    else:
        run = database_sync_to_async(collecting)

    counted = 1 if executor is SOCKET_THREADS or not CONCURRENT else 0  # (SQLite: one thread for all)

    async def run_and_send(*args: Any, **kwargs: Any) -> Any:
        global backlog
        outbox: events.Outbox = []
        backlog += counted
        try:
            return await run(outbox, *args, **kwargs)
        finally:
            backlog -= counted
            if outbox:
                await events.send_collected(outbox)

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.shield(run_and_send(*args, **kwargs))

    return call


# How long a socket thread keeps one pooled connection before giving it back (and taking another).
KEEP_CONNECTION_SECONDS = 300.0


def _kept_connection(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `func` on this thread's database connection, kept between calls.

    Channels' database_sync_to_async closes stale connections before and after every call; with
    CONN_MAX_AGE=0 that gave the connection back to the pool and took it again each time, about 0.2 ms
    of CPU per call on this kind of machine, for every message (docs/benchmarks.md, "Cheaper
    messages"). These threads are few and long-lived, so each keeps its connection, and gives it back
    only when it is broken (PostgreSQL restarted: the next call takes a fresh one), left in a
    transaction by mistake, or older than KEEP_CONNECTION_SECONDS."""
    try:
        return func(*args, **kwargs)
    finally:
        for conn in connections.all(initialized_only=True):
            if conn.connection is None:
                continue
            since = getattr(conn, "vr_kept_since", None)
            if since is None:
                conn.vr_kept_since = since = time.monotonic()  # type: ignore[attr-defined]
            if (conn.in_atomic_block or not conn.get_autocommit() or time.monotonic() - since > KEEP_CONNECTION_SECONDS
                    or (conn.errors_occurred and not conn.is_usable())):
                conn.close()
                conn.vr_kept_since = None  # type: ignore[attr-defined]
            else:
                conn.errors_occurred = False


def _on_every_thread(work: Callable[[], Any]) -> None:
    """Run `work` once on every thread of these executors, after whatever each was doing: one task per
    thread, held at a barrier until all of that executor's threads have taken theirs. On SQLite,
    in_thread runs everything on Channels' single database thread (asgiref's), so that one too."""
    executors = [(SOCKET_THREADS, SOCKET_THREADS._max_workers), (HEARTBEAT_THREAD, 1), (ROUTING_THREAD, 1)]
    if not CONCURRENT:
        executors.append((SyncToAsync.single_thread_executor, 1))
    for executor, size in executors:
        everyone = threading.Barrier(size, timeout=10)  # one task per thread: none takes two

        def run(everyone: threading.Barrier = everyone) -> None:
            everyone.wait()
            work()

        for future in [executor.submit(run) for _ in range(size)]:
            future.result()


def close_connections() -> None:
    """Close the connections these threads keep between calls (tests: before the test database is dropped)."""
    _on_every_thread(connections.close_all)


def wait_idle() -> None:
    """Return once the work these threads had taken or had queued is done (tests: a presence change's
    re-routes still running on the routing thread when the test ends would hold SQLite's lock while
    the test database is emptied for the next test)."""
    _on_every_thread(lambda: None)
