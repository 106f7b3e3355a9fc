"""Draw the transcript-review sample of a month (what the daily beat task does for the previous one)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consortium.models import Consortium
from review.sampling import month_sample, parse_month


class Command(BaseCommand):
    help = ("Sample each library's answered chats of MONTH for review and assign them to reviewers of other "
            "libraries. Run again, it assigns nothing twice.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("month", help="the month the chats arrived in: YYYY-MM")
        parser.add_argument("--consortium", help="one consortium's slug (default: every active consortium)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            month = parse_month(options["month"])
        except ValueError as e:
            raise CommandError(str(e)) from e
        consortia = Consortium.objects.filter(is_active=True).order_by("pk")
        if options["consortium"]:
            consortia = consortia.filter(slug=options["consortium"])
            if not consortia.exists():
                raise CommandError(f'no active consortium "{options["consortium"]}"')
        now = timezone.now()
        for consortium in consortia:
            report = month_sample(consortium, month, now)
            self.stdout.write(f"{consortium.slug} {month:%Y-%m}: {report.total} review(s) assigned")
            for slug, n in report.sampled.items():
                self.stdout.write(f"  {slug}: {n}")
            if report.already:
                self.stdout.write(f"  already sampled: {', '.join(report.already)}")
            if report.no_reviewer:
                self.stdout.write(f"  no reviewer from another library (flag reviewers, then run again): "
                                  f"{', '.join(report.no_reviewer)}")
