"""Serve the whole product in one process: daphne, plus the routing timer in the same event loop.

This is the embedded default (`python dev.py demo`): with the in-memory channel layer there is only
one process, so the timer must live in it. In production the timer runs as its own process type.
"""

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run daphne on HOST:PORT with the routing timer inside (the embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-timer", action="store_true", help="when timers run as their own processes")

    def handle(self, *args: Any, **options: Any) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server
        from django.conf import settings
        from twisted.internet import reactor

        from consortium import collector
        from consortium.asgi import application
        from routing.timer import run_forever

        if settings.SMS_SIMULATOR:  # the demo's stand-in for Twilio's Messages resource (texting/simulator.py)
            from texting.simulator import start_outbox

            start_outbox()
        if not options["no_timer"]:
            reactor.callWhenRunning(lambda: asyncio.ensure_future(run_forever()))
        if settings.CELERY_TASK_ALWAYS_EAGER:  # no beat in the embedded default: the alerts run here
            from alerts.embedded import evaluate_forever

            reactor.callWhenRunning(lambda: asyncio.ensure_future(evaluate_forever()))
        collector.settle(settings.VR_GC_YOUNG)  # everything is loaded: as under daphne's command line
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=options["host"], port=options["port"]),
            ping_interval=20,
            ping_timeout=30,
            websocket_handshake_timeout=10,
        ).run()
