"""This web process's identity and heartbeat: sockets belong to a process, and a process that stops
heart-beating (killed, frozen, cut off) has its sockets counted as closed by the timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from routing.layer_watch import LayerWatch
from routing.services.sweeps import process_heartbeat
from routing.threads import HEARTBEAT_THREAD, in_thread

HEARTBEAT_EVERY = 5.0
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
logger = logging.getLogger(__name__)

_task: asyncio.Task[None] | None = None
_watch: asyncio.Task[None] | None = None
_registered = False
# The in-memory layer (the embedded default) is in the process itself: it cannot be lost.
_LAYER_CAN_BE_LOST = not settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")


async def _beat_forever() -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY)
        try:
            # A thread of its own: never queued behind the sockets' work (routing.threads).
            await in_thread(process_heartbeat, HEARTBEAT_THREAD)(PROCESS_ID, timezone.now())
        except Exception:  # the database may be restarting: keep beating, the next one may pass
            logger.warning("process heartbeat failed", exc_info=True)


async def ensure_registered() -> str:
    """Register this process (once) and keep its heartbeat going. Returns the process id."""
    global _task, _watch, _registered
    if not _registered:
        await database_sync_to_async(process_heartbeat)(PROCESS_ID, timezone.now())
        _registered = True
    if _task is None or _task.done():
        with contextlib.suppress(RuntimeError):
            _task = asyncio.get_running_loop().create_task(_beat_forever())
    if _LAYER_CAN_BE_LOST and (_watch is None or _watch.done()):
        with contextlib.suppress(RuntimeError):
            _watch = asyncio.get_running_loop().create_task(LayerWatch().run_forever())
    return PROCESS_ID


def reset_for_tests() -> None:
    global _task, _watch, _registered
    for task in (_task, _watch):
        if task is not None:
            task.cancel()
    _task = _watch = None
    _registered = False
