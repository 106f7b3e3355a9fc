"""python manage.py export_consortium SLUG [-o FILE]: the consortium file of what the database holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium.models import Consortium
from libraries.consortium_file.export import export
from libraries.consortium_file.yaml_text import dump_yaml

HEADER = (
    "# Consortium file (spec/CONSORTIUM_FILE.md), exported from the database.\n"
    "# Passwords are never exported; import_consortium leaves existing passwords as they are.\n"
)


class Command(BaseCommand):
    help = "Write a consortium's libraries, shared queues and staff as a consortium file (YAML)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the consortium's slug")
        parser.add_argument("-o", "--output", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        consortium = Consortium.objects.filter(slug=options["slug"]).first()
        if consortium is None:
            known = ", ".join(Consortium.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f'no consortium "{options["slug"]}" (known: {known})')
        text = HEADER + dump_yaml(export(consortium))
        if options["output"]:
            try:
                Path(options["output"]).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {options['output']}: {exc.strerror or exc}") from exc
        else:
            self.stdout.write(text, ending="")
