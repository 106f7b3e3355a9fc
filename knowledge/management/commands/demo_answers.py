"""python manage.py demo_answers [--consortium sunshine] [--replace]: the demo's published answers
(knowledge.demo), into a consortium that has none yet."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from consortium.models import Consortium
from knowledge import demo


class Command(BaseCommand):
    help = "Publish the demo's answers (English and Spanish) in the demo consortium, if it has no answers yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--consortium", default="sunshine", help="its slug (default: the demo's, sunshine)")
        parser.add_argument("--replace", action="store_true", help="delete the consortium's answers first")

    def handle(self, *args: Any, **options: Any) -> None:
        consortium = Consortium.objects.filter(slug=options["consortium"]).first()
        if consortium is None:
            raise CommandError(f"no consortium {options['consortium']!r}: import deploy/demo-consortium.yaml first")
        made = demo.load(consortium, timezone.now(), replace=options["replace"])
        if made:
            self.stdout.write(f"{consortium.name}: {made} answers published.")
        else:
            self.stdout.write(f"{consortium.name} has answers already: left as they are (--replace starts again).")
