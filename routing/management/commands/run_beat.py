"""Celery beat, the `beat` process of deploy/Procfile: starts the nightly jobs of CELERY_BEAT_SCHEDULE.

A wrapper rather than a bare `celery beat` line so that beat's schedule file (when each job last
ran) lives in the project's data folder, which settings resolve from VR_DATA_DIR or its default,
whether or not the variable is set in the process's environment.

Beat only sends the jobs; a `worker` runs them. Run one beat per deployment: a second copy sends
each job twice, which the jobs shrug off (the scrubbing job skips rows another copy holds and
chats already scrubbed) but which is wasted work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run Celery beat with its schedule file in the data folder."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        from consortium.celery import app

        schedule = Path(settings.DATA_DIR) / "celerybeat-schedule"
        self.stdout.write(f"beat: schedule file {schedule}")
        app.Beat(schedule=str(schedule), loglevel=options["loglevel"]).run()
