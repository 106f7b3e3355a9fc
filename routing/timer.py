"""The timer: fires every stored deadline within a second of it, in any number of processes.

Deadlines live in the database (Chat.deadline, LibrarianPresence.grace_until, ServerProcess
heartbeats), so a timer that is killed loses nothing: its replacement, or another timer already
running, finds the overdue rows and fires each once (rows are taken with SKIP LOCKED, and what
fires is decided again from the stored state, so a second firing has nothing left to do).
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from routing.services import sweeps

logger = logging.getLogger(__name__)
TICK_SECONDS = 0.25
REAP_EVERY_SECONDS = 2.0


def tick(*, reap: bool) -> int:
    close_old_connections()
    now = timezone.now()
    if reap:
        sweeps.dead_processes_reap(now)
    return sweeps.due_sweep(now)


async def run_forever(stop: asyncio.Event | None = None) -> None:
    last_reap = 0.0
    while stop is None or not stop.is_set():
        started = time.monotonic()
        reap = started - last_reap >= REAP_EVERY_SECONDS
        try:
            await database_sync_to_async(tick)(reap=reap)
            if reap:
                last_reap = started
        except Exception:  # the database or Redis may be restarting: try again next tick
            logger.warning("timer tick failed", exc_info=True)
        await asyncio.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - started)))
