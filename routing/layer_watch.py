"""Sockets are told to reconnect when the channel layer comes back after an outage.

The layer is a doorbell (routing.events): what it drops while Redis is away is still in PostgreSQL,
and a client that reconnects gets all of it (hello re-sends offers and held chats, join with `after`
re-sends messages). A client whose socket stayed open through the outage hears nothing of what
happened meanwhile, though: an offer made by the timer while Redis was down never reached the
console (found by tests/faults/test_service_faults.py), and a message is filled in only when a later
one arrives. So each web process checks the layer with a round trip every LAYER_CHECK_EVERY seconds,
and when a check passes after one failed (Redis refused or dropped the connection), it closes every
socket it holds with 4012: the clients reconnect with their usual backoff and are brought up to date
from the database. (Not 1012,
"service restart": daphne's WebSocket library lets an application close only with 1000 or
3000-4999, and refused 1012 outright, leaving every socket open.) An outage shorter than the check
period, with no failed check, is not noticed here; a message lost in it is still filled in by the
next one (the seq gap), an offer still expires and moves on at its deadline.

A check that is merely slow proves nothing: in a reconnect storm a busy process answered its own
round trip after more than 2 s, and taking that for an outage closed all 2,000 sockets of the storm
the moment they had connected (found by tests/faults/test_network_faults.py). Only an error from
the layer counts as lost; a check still unanswered after CHECK_WITHIN seconds is simply not counted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

LAYER_CHECK_EVERY = 2.0
CHECK_WITHIN = 10.0
RESYNC = 4012  # docs/protocol.md: "reconnect to catch up"; clients reconnect as after any close but 4401/4403


class Closable(Protocol):
    async def close(self, code: int | None = None, reason: str | None = None) -> None: ...


_sockets: weakref.WeakSet[Any] = weakref.WeakSet()


def socket_opened(consumer: Closable) -> None:
    _sockets.add(consumer)


def socket_closed(consumer: Closable) -> None:
    _sockets.discard(consumer)


# The checks' channels, each kept for the next check once its round trip has passed (per event loop:
# channels_redis keeps a layer per loop). A new channel for every check stayed in channels_redis's tables
# and subscribed in Redis for the life of the process, since only a *cancelled* receive unsubscribes one:
# about 3.6 KiB every 2 s, the web processes' steady growth in the soak (docs/scaling.md, "Soak"). Checks
# that overlap (the watch, /healthz probes) each take their own, so a process holds as many as ever ran
# at once. A check that failed or timed out drops its channel, as before (a cancelled receive has already
# unsubscribed it; one that failed against a lost Redis stays behind: one per failed check in an outage).
_idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[tuple[str, str]]] = weakref.WeakKeyDictionary()


async def _round_trip(layer: Any) -> None:
    """Send a check to a group of this process's own and receive it back; raises if the layer fails."""
    idle = _idle.setdefault(asyncio.get_running_loop(), [])
    # A group of the channel's own (not named after it: the in-memory layer's names hold a "!").
    channel, group = idle.pop() if idle else (await layer.new_channel(), f"layer-check.{uuid.uuid4().hex}")
    token = uuid.uuid4().hex
    await layer.group_add(group, channel)  # a kept channel is in it already: this only renews it
    await layer.group_send(group, {"type": "layer.check", "token": token})
    while (await layer.receive(channel)).get("token") != token:
        pass  # not expected (a kept channel has received all it was sent), but never take an old answer
    idle.append((channel, group))


async def layer_answers(within: float = 2.0) -> bool:
    """A round trip through the channel layer: only a working Redis (or the in-memory layer) answers."""
    return await layer_reachable(within) is True


async def layer_reachable(within: float = CHECK_WITHIN) -> bool | None:
    """The watch's check: True when a round trip went through, False when the layer failed (Redis
    refused or dropped the connection), None when it did not answer in time (busy is not lost)."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async with asyncio.timeout(within):
            await _round_trip(layer)
        return True
    except TimeoutError:
        return None
    except Exception:
        return False


async def close_all_sockets() -> int:
    sockets = list(_sockets)
    for consumer in sockets:
        try:
            await consumer.close(code=RESYNC)
        except Exception:  # a socket that is already going away
            logger.debug("closing a socket after the layer came back failed", exc_info=True)
    return len(sockets)


class LayerWatch:
    """Remembers a failed check; on the first check that passes after it, brings the sockets back."""

    def __init__(self, check: Callable[[], Awaitable[bool | None]] = layer_reachable,
                 resync: Callable[[], Awaitable[int]] = close_all_sockets) -> None:
        self.check = check
        self.resync = resync
        self.lost = False

    async def step(self) -> bool:
        """One check. True when it brought the sockets back (the layer had been lost and is back)."""
        answered = await self.check()
        if answered is None:
            return False  # slow, not lost: nothing to say either way
        if not answered:
            if not self.lost:
                logger.warning("channel layer lost: its sockets will be told to reconnect when it is back")
            self.lost = True
            return False
        if not self.lost:
            return False
        self.lost = False
        closed = await self.resync()
        logger.warning("channel layer back: %d sockets told to reconnect (%d)", closed, RESYNC)
        return True

    async def run_forever(self, every: float = LAYER_CHECK_EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.step()
            except Exception:
                logger.warning("channel layer check failed", exc_info=True)
