#!/usr/bin/env python
"""The baseline for bench/ws_load.py: the same frames relayed through the same Redis, with plain
`websockets` and `redis.asyncio`, no Django, no database.

    .venv/bin/python bench/bare_relay.py --port 9001 --redis redis://127.0.0.1:6379/12 --prefix bare1
    .venv/bin/python bench/bare_relay.py --port 9001 --store postgres://postgres@127.0.0.1:5432/vr_bare  # durable

One process serves what one daphne serves in the production stack: `/ws/patron/`, `/ws/staff/`,
a chat start (`GET /api/start?library=<slug>&question=...`, since the `websockets` HTTP parser takes
only GET) and `/healthz`. ws_load.py starts as many copies as there are web processes. It does
the least a relay can do and still be the same service seen from the sockets:

- a chat start stores the token and publishes an `offer` to the library's channel, where every
  available librarian socket (in any process) is listening;
- `accept` is won by one librarian (SET NX), who then listens on the chat's channel;
- `join` checks the token and listens on the chat's channel;
- a `message` takes the chat's next `seq` (INCR: the frame carries one, as in production) and is
  published on the chat's channel, so that both sides get it, the sender as its acknowledgement.

As in channels-redis's RedisPubSubChannelLayer, each process has one Redis pub/sub connection and
subscribes to a channel while at least one of its sockets needs it. Nothing is stored beyond the
token, the owner and the counter: what the production stack pays for storing every message before
anyone is told (PostgreSQL, the ORM, Channels' thread hops) is exactly what the ratio shows.

With `--store DSN` it is the floor of a relay that, like the production stack, stores every line
before anyone is told (ws_load.py --store-floor): a chat's row is written when it starts, and a
`message` takes its `seq` from that row and inserts the line, in one statement in autocommit (the
row's update locks it, so seqs follow each other across processes), on a few psycopg connections
per process, prepared after a few uses as the production stack's are; then it is published as
before. No client_id check, no rate count, no index but the keys: the least that keeps every line
durably and in order. What the production stack spends beyond this floor is Django's and Channels'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

Frame = dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """Each line kept in PostgreSQL before it is published (--store)."""

    SCHEMA = [
        "CREATE TABLE IF NOT EXISTS bare_chat (id text PRIMARY KEY, last_seq integer NOT NULL DEFAULT 0, "
        "last_activity_at timestamptz)",
        "CREATE TABLE IF NOT EXISTS bare_message (id bigserial PRIMARY KEY, chat_id text NOT NULL, "
        "seq integer NOT NULL, sender text NOT NULL, body text NOT NULL, client_id text, at timestamptz NOT NULL, "
        "UNIQUE (chat_id, seq))",
    ]
    # One round trip: the chat's row locked by its update (its next seq), the line inserted with it.
    LINE = ("WITH c AS (UPDATE bare_chat SET last_seq = last_seq + 1, last_activity_at = %(at)s "
            "WHERE id = %(chat)s RETURNING last_seq) "
            "INSERT INTO bare_message (chat_id, seq, sender, body, client_id, at) "
            "SELECT %(chat)s, c.last_seq, %(sender)s, %(body)s, %(client_id)s, %(at)s FROM c RETURNING seq")

    def __init__(self, dsn: str) -> None:
        # As routing.loop_db: a few connections per event loop, in autocommit.
        self.pool = AsyncConnectionPool(dsn, min_size=4, max_size=4, kwargs={"autocommit": True}, open=False)

    async def open(self) -> None:
        await self.pool.open(wait=True)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(4242)")  # the other processes create it too
            for statement in self.SCHEMA:
                await conn.execute(statement)

    async def chat(self, chat: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("INSERT INTO bare_chat (id) VALUES (%s)", [chat])

    async def line(self, chat: str, sender: str, body: str, client_id: str | None, at: datetime) -> int | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(self.LINE, {"chat": chat, "sender": sender, "body": body,
                                                        "client_id": client_id, "at": at})).fetchone()
        return None if row is None else int(row[0])

    async def last_seq(self, chat: str) -> int:
        async with self.pool.connection() as conn:
            row = await (await conn.execute("SELECT last_seq FROM bare_chat WHERE id = %s", [chat])).fetchone()
        return 0 if row is None else int(row[0])


class Relay:
    def __init__(self, redis_url: str, prefix: str, store: Store | None = None) -> None:
        self.prefix = prefix
        self.store = store
        # A blocking pool waits for a free connection instead of raising MaxConnectionsError: the
        # baseline must not fail where it could simply queue.
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=30))
        self.pubsub = self.redis.pubsub()
        # Subscribing while the reader polls is safe on one connection (channels-redis does it too),
        # but two subscribe commands must not interleave their writes.
        self.sub_lock = asyncio.Lock()
        self.local: dict[str, set[ServerConnection]] = defaultdict(set)
        self.reader: asyncio.Task[None] | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- pub/sub -----------------------------------------------------------------------------------

    async def listen(self, channel: str, ws: ServerConnection) -> None:
        sockets = self.local[channel]
        first = not sockets
        sockets.add(ws)
        if first:
            async with self.sub_lock:
                await self.pubsub.subscribe(channel)
            if self.reader is None:
                self.reader = asyncio.create_task(self._read())

    async def forget(self, channel: str, ws: ServerConnection) -> None:
        sockets = self.local.get(channel)
        if sockets is None:
            return
        sockets.discard(ws)
        if not sockets:
            del self.local[channel]
            async with self.sub_lock:
                await self.pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            channel = message["channel"].decode()
            text = message["data"].decode()
            for ws in list(self.local.get(channel, ())):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(text)

    async def publish(self, channel: str, frame: Frame) -> None:
        await self.redis.publish(channel, json.dumps(frame))

    # -- HTTP: chat start and health ----------------------------------------------------------------

    async def http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return connection.respond(200, "ok\n")
        if url.path != "/api/start":
            return None  # a WebSocket handshake
        query = parse_qs(url.query)
        library = (query.get("library") or [""])[0]
        question = (query.get("question") or [""])[0]
        chat, token = uuid.uuid4().hex, secrets.token_urlsafe(24)
        await self.redis.set(self.key("token", chat), token, ex=3600)
        if self.store is not None:
            await self.store.chat(chat)
        home = {"slug": library, "name": library}
        await self.publish(self.key("library", library), {
            "type": "offer", "chat": chat, "home_library": home, "queue": library, "step": "local",
            "question": question, "waiting_since": now_iso(), "mode": "broadcast", "expires_at": None,
            "transfer_note": None})
        response = connection.respond(201, json.dumps({"id": chat, "token": token, "state": "queued",
                                                       "home_library": home, "ws": "/ws/patron/"}))
        response.headers["Content-Type"] = "application/json"
        return response

    # -- sockets ------------------------------------------------------------------------------------

    async def handler(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request else "")
        channels: set[str] = set()
        try:
            if url.path == "/ws/patron/":
                await self.patron(ws, channels)
            elif url.path == "/ws/staff/":
                query = parse_qs(url.query)
                await self.staff(ws, channels, query["librarian"][0], query["library"][0])
            else:
                await ws.close(4404)
        except ConnectionClosed:
            pass
        finally:
            for channel in channels:
                await self.forget(channel, ws)

    async def message(self, ws: ServerConnection, chat: str, sender: str, frame: Frame) -> None:
        body, client_id = frame.get("body"), frame.get("client_id")
        if not isinstance(body, str) or not body:
            await ws.send(json.dumps({"type": "error", "code": "invalid", "detail": "body", "client_id": client_id}))
            return
        at = datetime.now(UTC)
        if self.store is None:
            seq: int | None = await self.redis.incr(self.key("seq", chat))
        else:
            seq = await self.store.line(chat, sender, body, client_id if isinstance(client_id, str) else None, at)
            if seq is None:
                await ws.send(json.dumps({"type": "error", "code": "not_found", "detail": "no such chat",
                                          "client_id": client_id}))
                return
        await self.publish(self.key("chat", chat), {
            "type": "message", "chat": chat, "seq": seq, "sender": sender, "name": None, "body": body,
            "at": at.isoformat(), "client_id": client_id})

    async def last_seq(self, chat: str) -> int:
        if self.store is not None:
            return await self.store.last_seq(chat)
        return int(await self.redis.get(self.key("seq", chat)) or 0)

    async def patron(self, ws: ServerConnection, channels: set[str]) -> None:
        chat: str | None = None
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "ping":
                await ws.send('{"type": "pong"}')
            elif chat is None:
                token = await self.redis.get(self.key("token", str(frame.get("chat"))))
                if kind != "join" or token is None or token.decode() != frame.get("token"):
                    await ws.send(json.dumps({"type": "error", "code": "forbidden", "client_id": None}))
                    await ws.close(4403)
                    return
                chat = str(frame["chat"])
                channel = self.key("chat", chat)
                channels.add(channel)
                await self.listen(channel, ws)
                await ws.send(json.dumps({"type": "joined", "chat": chat}))
                await ws.send(json.dumps({"type": "state", "chat": chat, "state": "active", "step": "local",
                                          "librarian": None, "position": None, "estimated_wait": None}))
            elif kind == "message":
                await self.message(ws, chat, "patron", frame)

    async def staff(self, ws: ServerConnection, channels: set[str], username: str, library: str) -> None:
        # A librarian who reconnects holds their chats again (the hello lists them), as in production.
        held = {chat.decode() for chat in await self.redis.smembers(self.key("held", username))}
        chats = []
        for chat in sorted(held):
            channel = self.key("chat", chat)
            channels.add(channel)
            await self.listen(channel, ws)
            chats.append({"chat": chat, "state": "active",
                          "last_seq": await self.last_seq(chat)})
        await ws.send(json.dumps({"type": "hello", "librarian": {"username": username, "name": username,
                                                                  "library": library},
                                  "queues": [library], "presence": "available" if held else "away",
                                  "chats": chats, "offers": []}))
        if held:
            channels.add(self.key("library", library))
            await self.listen(self.key("library", library), ws)
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            chat = str(frame.get("chat", ""))
            if kind == "ping":
                await ws.send('{"type": "pong"}')
            elif kind == "presence":
                channel = self.key("library", library)
                if frame.get("status") == "available":
                    channels.add(channel)
                    await self.listen(channel, ws)
                else:
                    channels.discard(channel)
                    await self.forget(channel, ws)
                await ws.send(json.dumps({"type": "presence", "status": frame.get("status")}))
            elif kind == "accept":
                if await self.redis.set(self.key("owner", chat), username, nx=True, ex=3600):
                    held.add(chat)
                    await self.redis.sadd(self.key("held", username), chat)
                    channel = self.key("chat", chat)
                    channels.add(channel)
                    await self.listen(channel, ws)
                    seq = await self.last_seq(chat)
                    await ws.send(json.dumps({"type": "assigned", "chat": chat, "home_library": None,
                                              "patron": {"name": None}, "policy_url": None, "last_seq": seq}))
                else:
                    await ws.send(json.dumps({"type": "accept_failed", "chat": chat, "reason": "taken"}))
            elif kind == "message" and chat in held:
                await self.message(ws, chat, "librarian", frame)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--prefix", default="bare")
    parser.add_argument("--store", metavar="DSN", default=None,
                        help="keep every line in this PostgreSQL database before publishing it")
    args = parser.parse_args()
    store = None if args.store is None else Store(args.store)
    if store is not None:
        await store.open()
    relay = Relay(args.redis, args.prefix, store)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # Same keepalive as daphne in deploy/Procfile (--ping-interval 20 --ping-timeout 30), and, like
    # daphne, no permessage-deflate: the same bytes on the wire, and no zlib state per socket.
    async with serve(relay.handler, args.host, args.port, process_request=relay.http, ping_interval=20,
                     ping_timeout=30, max_size=2**16, compression=None):
        await stop
    await relay.redis.aclose()
    if store is not None:
        await store.pool.close()


if __name__ == "__main__":
    asyncio.run(main())
