"""routing.events: what a commit tells reaches every group it names, whole and in order, through the
channel layer the suite runs on (Redis pub/sub in the PostgreSQL + Redis suite, where many events go as
one pipeline; the in-memory layer in the embedded one)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from routing import events
from tests.faults.outages import private_redis


async def _subscribed(layer: Any, count: int) -> tuple[list[str], list[str]]:
    tag = uuid.uuid4().hex
    groups = [f"test-events.{tag}.{i}" for i in range(count)]
    channels = [await layer.new_channel() for _ in groups]
    for group, channel in zip(groups, channels, strict=True):
        await layer.group_add(group, channel)
    return groups, channels


async def _received(layer: Any, channel: str, count: int) -> list[int]:
    return [(await asyncio.wait_for(layer.receive(channel), 10))["frame"]["n"] for _ in range(count)]


async def test_a_broadcast_reaches_every_librarian_group_once_and_in_order() -> None:
    layer = get_channel_layer()
    groups, channels = await _subscribed(layer, 3)
    # Interleaved, as a batch's offers to a step's librarians are: each group gets its own in order.
    outbox: events.Outbox = [(groups[n % 3], {"type": "vr.event", "frame": {"n": n}}) for n in range(150)]
    await events.send_collected(outbox)
    for i, channel in enumerate(channels):
        assert await _received(layer, channel, 50) == list(range(i, 150, 3))
    for channel in channels:  # nothing twice
        try:
            extra = await asyncio.wait_for(layer.receive(channel), 0.3)
        except TimeoutError:
            continue
        raise AssertionError(f"sent twice: {extra}")


async def test_more_events_than_one_pipeline_holds_all_arrive_in_order() -> None:
    layer = get_channel_layer()
    (group,), (channel,) = await _subscribed(layer, 1)
    # Past one pipeline on Redis; within the in-memory layer's capacity of a channel (100) elsewhere.
    many = events.PIPELINE_MOST + 20 if isinstance(layer, RedisPubSubChannelLayer) else 90
    outbox: events.Outbox = [(group, {"type": "vr.event", "frame": {"n": n}}) for n in range(many)]
    await events.send_collected(outbox)
    assert await _received(layer, channel, many) == list(range(many))


async def test_one_frame_for_many_groups_and_another_beside_it_each_reach_only_their_own() -> None:
    layer = get_channel_layer()
    groups, channels = await _subscribed(layer, 6)
    offer = {"n": 1, "offer": "broadcast"}  # one frame object for every librarian of a step, as route sends it
    outbox: events.Outbox = [(group, {"type": "vr.event", "frame": offer}) for group in groups[:5]]
    outbox.insert(2, (groups[5], {"type": "vr.event", "frame": {"n": 2}}))
    outbox.append((groups[0], {"type": "vr.event", "frame": {"n": 3}}))
    await events.send_collected(outbox)
    assert await _received(layer, channels[0], 2) == [1, 3]
    for channel in channels[1:5]:
        assert await _received(layer, channel, 1) == [1]
    assert await _received(layer, channels[5], 1) == [2]


@pytest.mark.postgres  # the PostgreSQL + Redis suite: the channel layer is Redis's
async def test_a_redis_that_forgot_the_publishing_script_is_taught_it_again() -> None:
    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubChannelLayer)
    groups, channels = await _subscribed(layer, 2)
    await events.send_collected([(group, {"type": "vr.event", "frame": {"n": 0}}) for group in groups])
    shard = events._pubsub_loop_layer(layer)._shards[0]
    await shard._redis.script_flush()  # as a restarted Redis has no scripts
    await events.send_collected([(group, {"type": "vr.event", "frame": {"n": 1}}) for group in groups])
    for channel in channels:
        assert await _received(layer, channel, 2) == [0, 1]


def test_a_runs_arguments_carry_each_payload_once_in_the_order_of_the_channels() -> None:
    run = [("a", b"x"), ("b", b"y"), ("c", b"x"), ("d", b"x")]
    assert events.publish_run_args(run) == ["a b c d", "1 2 1 1", b"x", b"y"]


async def test_a_commits_events_sent_from_a_sync_thread_arrive_whole_and_in_order() -> None:
    # A worker, the timer or a benchmark (a thread no event loop runs), and a view or a socket's
    # database work under the event loop (sync_to_async): on Redis both publish from the thread itself.
    layer = get_channel_layer()
    groups, channels = await _subscribed(layer, 3)
    offer = {"n": 0}
    first: events.Outbox = [(group, {"type": "vr.event", "frame": offer}) for group in groups]
    second: events.Outbox = [(groups[n % 3], {"type": "vr.event", "frame": {"n": n}}) for n in range(1, 31)]
    await asyncio.to_thread(events.send_all, first)
    await sync_to_async(events.send_all)(second)
    for i, channel in enumerate(channels):
        assert await _received(layer, channel, 11) == [0, *range(1 + (i + 2) % 3, 31, 3)]


@pytest.fixture
def second_redis() -> Iterator[str]:
    """A Redis server of its own, beside the suite's: a channel layer sharded over two (VR_CHANNEL_REDIS_URLS)."""
    with private_redis() as server:
        yield server.url


@pytest.mark.postgres  # the PostgreSQL + Redis suite: REDIS_URL is a Redis
async def test_on_two_redis_servers_every_group_hears_what_was_sent_to_it_whether_from_a_thread_or_the_loop(
        second_redis: str) -> None:
    layer = RedisPubSubChannelLayer(hosts=[os.environ["REDIS_URL"], second_redis], prefix=f"t{uuid.uuid4().hex[:8]}")
    loop_layer = events._pubsub_loop_layer(layer)
    groups: list[str] = []
    on = {0: 0, 1: 0}  # groups on each server: four each
    while len(groups) < 8:
        group = f"test-events.{uuid.uuid4().hex}"
        server = loop_layer._shards.index(loop_layer._get_shard(loop_layer._get_group_channel_name(group)))
        if on[server] < 4:
            on[server] += 1
            groups.append(group)
    channels = [await layer.new_channel() for _ in groups]
    for group, channel in zip(groups, channels, strict=True):
        await layer.group_add(group, channel)
    outbox: events.Outbox = [(groups[n % 8], {"type": "vr.event", "frame": {"n": n}}) for n in range(40)]
    publisher = events._publisher(layer)
    assert publisher is not None
    await asyncio.to_thread(publisher.publish, outbox[:20])
    await events._group_send_all(layer, outbox[20:])
    for i, channel in enumerate(channels):
        assert await _received(layer, channel, 5) == list(range(i, 40, 8))
    await layer.flush()
