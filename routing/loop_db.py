"""PostgreSQL connections used from the event loop itself, for the one statement every chat line runs.

A socket's database work otherwise runs in a thread (routing.threads): handing it over and getting
the answer back costs the event loop and the thread the GIL in turn, which on this kind of machine
was the largest single share of a web process's CPU per message (docs/benchmarks.md, "Cheaper
messages"). Storing a message is one statement in autocommit (routing.message_store), so it needs
nothing of Django's connection handling: it runs on psycopg's own async connections, a few per event
loop, opened when first needed with the settings of Django's default database and kept.

A connection that fails is closed and not reused; the next caller opens a new one. Connections of an
event loop that has closed (the test suite runs one per test) are closed by `close_all`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from django.db import connections
from psycopg import pq

# Per event loop: enough for a few statements waiting on chat locks at once without holding up the
# others; past it, callers wait for one to be free.
MAX_PER_LOOP = 4


class _Connections:
    def __init__(self) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.count = 0
        self.freed = asyncio.Condition()

    async def take(self) -> psycopg.AsyncConnection[Any]:
        async with self.freed:
            while not self.idle and self.count >= MAX_PER_LOOP:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.count += 1
        try:
            conn = await psycopg.AsyncConnection.connect(**_params(), autocommit=True)
        except BaseException:
            await self.give_up()
            raise
        _everyone.add(conn)
        return conn

    async def give_back(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with self.freed:
            self.idle.append(conn)
            self.freed.notify()

    async def give_up(self, conn: psycopg.AsyncConnection[Any] | None = None) -> None:
        if conn is not None:
            _finish(conn)
        async with self.freed:
            self.count -= 1
            self.freed.notify()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connections] = weakref.WeakKeyDictionary()
_everyone: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()


def _params() -> dict[str, Any]:
    """Django's own connection settings (database, host, options, time zone adapters), read at each
    opening: the test suite switches to its test database after start-up."""
    params = dict(connections["default"].get_connection_params())
    params.pop("cursor_factory", None)  # Django's is synchronous; the connection's default is right
    # prepare_threshold stays Django's (consortium/settings.py): None behind pgbouncer in transaction mode,
    # where nothing may be prepared. Dropped, psycopg's default (5) prepared the store's statement there too
    # after five lines, each to be bound on whichever server connection the pool gave next.
    return params


@asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of this event loop, in autocommit, for one statement."""
    loop = asyncio.get_running_loop()
    pool = _by_loop.get(loop)
    if pool is None:
        pool = _by_loop[loop] = _Connections()
    conn = await pool.take()
    try:
        yield conn
    except psycopg.OperationalError:
        await pool.give_up(conn)  # the server or the network failed it: never reused
        raise
    except BaseException:
        if conn.info.transaction_status == pq.TransactionStatus.IDLE and not conn.closed:
            await pool.give_back(conn)
        else:
            await pool.give_up(conn)
        raise
    else:
        await pool.give_back(conn)


def _finish(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close without an event loop: the socket only (safe from any thread, on any loop's connection)."""
    if not conn.closed:
        conn.pgconn.finish()


def close_all() -> None:
    """Close every connection of every event loop (tests: before the test database is dropped, and
    after each test, whose event loop is gone)."""
    for conn in list(_everyone):
        _finish(conn)
    _everyone.clear()
    _by_loop.clear()
