"""routing.events: what a commit tells reaches every group it names, whole and in order, through the
channel layer the suite runs on (Redis pub/sub in the PostgreSQL + Redis suite, where many events go as
one pipeline; the in-memory layer in the embedded one)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from routing import events


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
