"""Sockets are told to reconnect (4012) when the channel layer comes back after a failed check
(routing.layer_watch): what the layer dropped meanwhile reaches the client from the database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from channels_redis.pubsub import RedisPubSubChannelLayer

from routing import layer_watch, process
from routing.ws_urls import websocket_urlpatterns
from tests.factories import make_consortium, make_library, make_staff


def checks(*answers: bool | None) -> Callable[[], Awaitable[bool | None]]:
    """The layer's answers to successive checks (None: no answer in time)."""
    queue = list(answers)

    async def check() -> bool | None:
        return queue.pop(0)

    return check


class Resyncs:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        return 0


async def test_a_layer_that_always_answers_never_disturbs_the_sockets() -> None:
    resync = Resyncs()
    watch = layer_watch.LayerWatch(checks(True, True, True), resync)
    assert [await watch.step() for _ in range(3)] == [False, False, False]
    assert resync.count == 0


async def test_the_sockets_are_brought_back_once_when_the_layer_answers_again() -> None:
    resync = Resyncs()
    watch = layer_watch.LayerWatch(checks(True, False, False, False, True, True), resync)
    assert [await watch.step() for _ in range(6)] == [False, False, False, False, True, False]
    assert resync.count == 1


async def test_each_outage_brings_the_sockets_back_once() -> None:
    resync = Resyncs()
    watch = layer_watch.LayerWatch(checks(False, True, False, True), resync)
    assert [await watch.step() for _ in range(4)] == [False, True, False, True]
    assert resync.count == 2


async def test_a_slow_answer_is_not_an_outage() -> None:
    """A busy process (a reconnect storm) may answer its own check late: no socket is closed for that."""
    resync = Resyncs()
    watch = layer_watch.LayerWatch(checks(True, None, None, True, None, True), resync)
    assert [await watch.step() for _ in range(6)] == [False] * 6
    assert resync.count == 0
    watch = layer_watch.LayerWatch(checks(False, None, True), resync)  # an outage, then a slow check
    assert [await watch.step() for _ in range(3)] == [False, False, True]
    assert resync.count == 1


async def test_the_check_tells_a_layer_that_answers() -> None:
    assert await layer_watch.layer_reachable() is True


@pytest.mark.live
async def test_the_checks_leave_no_channel_behind_in_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """A web process checks the layer every 2 s for as long as it runs (and /healthz on every probe).
    Each check once made a channel that stayed subscribed in Redis and in channels_redis's tables for
    the life of the process: ~3.6 KiB every 2 s, the web processes' steady growth in the soak. Now the
    Redis server sees no more channels after many checks than after the first (two overlapping checks
    use two)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("needs REDIS_URL (a real Redis): run with python3 dev.py test and DATABASE_URL/REDIS_URL set")
    prefix = f"vrtleak{uuid.uuid4().hex[:8]}"
    layer = RedisPubSubChannelLayer(hosts=[{"address": url}], prefix=prefix)
    monkeypatch.setattr(layer_watch, "get_channel_layer", lambda: layer)
    server = redis.Redis.from_url(url)
    try:
        assert await layer_watch.layer_reachable() is True
        first = len(server.pubsub_channels(f"{prefix}*"))
        assert first >= 1  # the check's channel (and its group) are subscribed while the process runs
        for _ in range(25):
            assert await layer_watch.layer_reachable() is True
            assert await layer_watch.layer_answers() is True
        assert len(server.pubsub_channels(f"{prefix}*")) == first
        assert await asyncio.gather(layer_watch.layer_reachable(), layer_watch.layer_answers()) == [True, True]
        for _ in range(25):
            assert await asyncio.gather(layer_watch.layer_reachable(), layer_watch.layer_reachable()) == [True, True]
        assert len(server.pubsub_channels(f"{prefix}*")) == 2 * first
    finally:
        await layer.flush()
        server.close()


@pytest.mark.django_db(transaction=True)
async def test_every_open_socket_is_closed_with_4012_and_a_closed_one_is_forgotten() -> None:
    process.reset_for_tests()
    layer_watch._sockets.clear()  # sockets other tests left open are not this test's
    library = await database_sync_to_async(lambda: make_library(make_consortium("watch"), "alpha"))()
    profile = await database_sync_to_async(lambda: make_staff(library, "w1"))()
    user: Any = await database_sync_to_async(lambda: profile.user)()
    sockets = []
    try:
        for path in ("/ws/staff/", "/ws/patron/", "/ws/patron/"):
            comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path,
                                         headers=[(b"origin", b"http://127.0.0.1:8000")])
            comm.scope["user"] = user
            connected, _ = await comm.connect()
            assert connected
            sockets.append(comm)
        await sockets[2].disconnect()
        assert await layer_watch.close_all_sockets() == 2
        for comm in sockets[:2]:
            while True:  # the staff socket's hello may come first
                out = await comm.receive_output(timeout=3)
                if out["type"] == "websocket.close":
                    assert out["code"] == layer_watch.RESYNC
                    break
    finally:
        for comm in sockets:
            await comm.disconnect()
        process.reset_for_tests()
