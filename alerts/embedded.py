"""The evaluation in the embedded default (`manage.py serve`), where no Celery beat runs: every minute
in the one process's event loop, on a database thread, as beat would send it in production."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

from alerts.tasks import alerts_evaluate_all

INTERVAL_SECONDS = 60.0
logger = logging.getLogger(__name__)


async def evaluate_forever() -> None:
    while True:
        await asyncio.sleep(INTERVAL_SECONDS)
        try:
            await database_sync_to_async(alerts_evaluate_all)()
        except Exception:  # one failed run must not end the loop: the next minute tries again
            logger.exception("alerts: the evaluation failed")
