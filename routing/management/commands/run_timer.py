import asyncio
import logging
import signal
from typing import Any

from django.core.management.base import BaseCommand

from routing.timer import run_forever

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Fire routing deadlines (step timeouts, offer expiries, grace periods, idle ends). Run one or more."

    def handle(self, *args: Any, **options: Any) -> None:
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            logger.info("timer started")
            await run_forever(stop)

        asyncio.run(main())
