"""routing.threads: socket work runs off the event loop, and what it commits is announced from the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from routing import events
from routing.threads import in_thread

pytestmark = pytest.mark.django_db(transaction=True)


async def listening(chat_id: str) -> str:
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(events.chat_group(chat_id), channel)
    return channel


async def received(channel: str) -> dict:
    layer = get_channel_layer()
    assert layer is not None
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_events_are_sent_in_commit_order_once_the_call_returns() -> None:
    channel = await listening("c1")

    def work() -> str:
        for seq in (1, 2, 3):
            with transaction.atomic():
                events.to_chat("c1", {"type": "message", "seq": seq})
        return "done"

    assert await in_thread(work)() == "done"
    assert [(await received(channel))["frame"]["seq"] for _ in range(3)] == [1, 2, 3]


async def test_a_rolled_back_transaction_announces_nothing() -> None:
    channel = await listening("c2")

    def work() -> None:
        with transaction.atomic():
            events.to_chat("c2", {"type": "message", "seq": 1})
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await in_thread(work)()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(get_channel_layer().receive(channel), 0.3)


async def test_what_was_committed_before_a_failure_is_still_announced() -> None:
    channel = await listening("c3")

    def work() -> None:
        with transaction.atomic():
            events.to_chat("c3", {"type": "message", "seq": 7})
        raise RuntimeError("after the commit")

    with pytest.raises(RuntimeError):
        await in_thread(work)()
    assert (await received(channel))["frame"]["seq"] == 7


async def test_a_cancelled_caller_does_not_drop_what_the_thread_commits() -> None:
    """daphne cancels the consumer of a closed connection; the thread's work goes on and commits:
    the people in the chat must still hear of it."""
    channel = await listening("c4")
    started, release = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(5)
        with transaction.atomic():
            events.to_chat("c4", {"type": "message", "seq": 1})

    call = asyncio.ensure_future(in_thread(work)())
    await asyncio.to_thread(started.wait, 5)
    call.cancel()
    release.set()
    assert (await received(channel))["frame"]["seq"] == 1
    with pytest.raises(asyncio.CancelledError):
        await call
