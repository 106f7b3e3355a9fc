"""python manage.py import_consortium FILE.yaml [--prune] [--dry-run] [--quiet] [--base-url URL]"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from libraries.consortium_file.importer import apply
from libraries.consortium_file.schema import InvalidConsortiumFile, Problem
from libraries.consortium_file.validate import validate
from libraries.consortium_file.yaml_text import load_yaml


class Command(BaseCommand):
    help = (
        "Import or update a whole consortium from a YAML file (spec/CONSORTIUM_FILE.md). "
        "All or nothing: on any problem, every problem is printed and nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the consortium file (YAML)")
        parser.add_argument("--prune", action="store_true",
                            help="deactivate (never delete) libraries, shared queues and staff "
                                 "missing from the file")
        parser.add_argument("--dry-run", action="store_true", help="check and report, but write nothing")
        parser.add_argument("--quiet", action="store_true", help="print only problems and set-password links")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="where the site is served, for set-password links (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        base_url: str = options["base_url"]
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise CommandError(f'--base-url "{base_url}" is not an http(s) address like https://ask.example.org')
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        try:
            data = load_yaml(text, str(path))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        # Structure first, then (inside apply) what only the database knows; either way the
        # coordinator sees every problem at once, and nothing has been written.
        problems: list[Problem] = validate(data)
        if not problems:
            try:
                report = apply(data, prune=options["prune"], dry_run=options["dry_run"])
            except InvalidConsortiumFile as exc:
                problems = exc.problems
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}; "
                               "nothing was imported.")

        lines = report.link_lines(base_url) if options["quiet"] else report.lines(base_url)
        for line in lines:
            self.stdout.write(line)
