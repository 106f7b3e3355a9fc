"""routing.threads: socket work runs off the event loop, and what it commits is announced from the loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from routing import events, threads
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


async def test_the_backlog_counts_what_the_sockets_wait_behind_and_not_the_routing_thread() -> None:
    """routing/admission.py sheds chat starts past a backlog of the sockets' calls. Re-routes queued on
    the routing thread (librarians going available together) keep no socket waiting: not counted
    (on SQLite every call shares Channels' one thread, so there every call counts)."""
    release = threading.Event()

    def held() -> None:
        release.wait(5)

    before = threads.backlog
    rerouting = [asyncio.ensure_future(in_thread(held, threads.ROUTING_THREAD)()) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert threads.backlog - before == (0 if threads.CONCURRENT else 5)
    storing = [asyncio.ensure_future(in_thread(held)()) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert threads.backlog - before == (2 if threads.CONCURRENT else 7)
    release.set()
    await asyncio.gather(*rerouting, *storing)
    assert threads.backlog == before


async def test_wait_idle_returns_only_once_work_handed_to_a_thread_and_left_running_is_done() -> None:
    # A presence change's re-routes, left running when its socket's handler has returned: the tests'
    # teardown (tests/conftest.py) must not empty the database under them.
    started = threading.Event()
    finished = threading.Event()

    def reroute() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    threads.in_background(in_thread(reroute, threads.ROUTING_THREAD)())
    while not started.is_set():
        await asyncio.sleep(0.01)
    await asyncio.get_running_loop().run_in_executor(None, threads.wait_idle)
    assert finished.is_set()
