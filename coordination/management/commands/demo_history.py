"""python manage.py demo_history [--consortium sunshine] [--weeks 8] [--seed 20] [--force]

Weeks of generated past for the demo consortium (coordination/history.py), so that its statistics,
coverage map and board show something on the first run. `python3 dev.py demo` runs it after
importing deploy/demo-consortium.yaml.

Invented chats have no place in a real service's figures: on the production engines (DATABASE_URL
or REDIS_URL set, settings.EMBEDDED false) the command refuses unless `--force` says the database
is a throwaway one (a test stack, a staging copy).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from consortium.models import Consortium
from coordination import history


class Command(BaseCommand):
    help = "Load weeks of generated chats, surveys, follow-ups and rota shifts into the demo consortium."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--consortium", default="sunshine", help="its slug (default: the demo's, sunshine)")
        parser.add_argument("--weeks", type=int, default=8, help="how many weeks, 1 to 26 (default 8)")
        parser.add_argument("--seed", type=int, default=20, help="the same seed gives the same past (default 20)")
        parser.add_argument("--force", action="store_true",
                            help="write to a production database all the same (a throwaway one)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED and not options["force"]:
            engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
            raise CommandError(
                f"this is a production database ({engine}, DATABASE_URL or REDIS_URL set): demo_history writes "
                "invented chats into the statistics. Use --force only on a throwaway database.")
        if not 1 <= options["weeks"] <= 26:
            raise CommandError("--weeks must be 1 to 26")
        consortium = Consortium.objects.filter(slug=options["consortium"]).first()
        if consortium is None:
            raise CommandError(f"no consortium {options['consortium']!r}: import deploy/demo-consortium.yaml first "
                               "(python manage.py import_consortium deploy/demo-consortium.yaml)")
        started = time.monotonic()
        done = history.load(consortium, timezone.now(), weeks=options["weeks"], seed=options["seed"])
        outcomes = ", ".join(f"{n} {name}" for name, n in sorted(done.outcomes.items(), key=lambda kv: -kv[1]))
        self.stdout.write(
            f"{consortium.name}: {done.chats} chats from {done.first} to {done.last} ({outcomes}), {done.surveys} "
            f"surveys, {done.followups} follow-ups, {done.shifts} new rota shifts, in "
            f"{time.monotonic() - started:.1f} s.")
