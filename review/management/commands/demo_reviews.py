"""python manage.py demo_reviews [--consortium sunshine] [--force]: transcript review in the demo (review.demo),
after demo_history. Refuses a production database unless --force says it is a throwaway one."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from consortium.models import Consortium
from review import demo


class Command(BaseCommand):
    help = "Name reviewers and liaisons in the demo consortium, sample its last two months and score most reviews."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--consortium", default="sunshine", help="its slug (default: the demo's, sunshine)")
        parser.add_argument("--force", action="store_true",
                            help="write to a production database all the same (a throwaway one)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED and not options["force"]:
            raise CommandError("this is a production database (DATABASE_URL or REDIS_URL set): demo_reviews "
                               "replaces every review of the consortium. Use --force only on a throwaway database.")
        consortium = Consortium.objects.filter(slug=options["consortium"]).first()
        if consortium is None:
            raise CommandError(f"no consortium {options['consortium']!r}: import deploy/demo-consortium.yaml first")
        done = demo.load(consortium, timezone.now())
        self.stdout.write(f"{consortium.name}: {done.reviews} reviews, {done.submitted} submitted, "
                          f"{done.notable} notable.")
