"""Coordinators' figures of transcript review: scores by library and criterion, month by month, and
how many reviews are done, still open and overdue. Two grouped queries, whatever the number of reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Avg, Count, Q

from consortium.models import Consortium
from review.models import Criterion, Review, Score


@dataclass(frozen=True)
class Progress:
    month: date
    assigned: int
    done: int
    overdue: int

    @property
    def open(self) -> int:
        return self.assigned - self.done


@dataclass(frozen=True)
class LibraryScores:
    month: date
    library: str
    # One cell per criterion of the header, in its order: (mean score, scores) or None.
    cells: list[tuple[float, int] | None]


@dataclass(frozen=True)
class Figures:
    criteria: list[Criterion]
    progress: list[Progress]
    scores: list[LibraryScores]


def figures(consortium: Consortium, now: datetime, *, since: date) -> Figures:
    reviews = Review.objects.filter(consortium=consortium, month__gte=since)
    progress = [Progress(row["month"], row["assigned"], row["done"], row["overdue"]) for row in
                reviews.values("month").annotate(
                    assigned=Count("pk"), done=Count("pk", filter=Q(submitted_at__isnull=False)),
                    overdue=Count("pk", filter=Q(submitted_at__isnull=True, due_at__lt=now))).order_by("-month")]
    rows = (Score.objects.filter(review__in=reviews)
            .values("review__month", "review__library__name", "criterion_id")
            .annotate(mean=Avg("value"), n=Count("pk")).order_by("-review__month", "review__library__name"))
    used = {row["criterion_id"] for row in rows}
    criteria = list(Criterion.objects.filter(Q(is_active=True) | Q(pk__in=used), consortium=consortium)
                    .order_by("position", "pk"))
    column = {c.pk: i for i, c in enumerate(criteria)}
    grouped: dict[tuple[date, str], list[tuple[float, int] | None]] = {}
    for row in rows:
        cells = grouped.setdefault((row["review__month"], row["review__library__name"]), [None] * len(criteria))
        cells[column[row["criterion_id"]]] = (round(float(row["mean"]), 2), row["n"])
    return Figures(criteria, progress, [LibraryScores(m, lib, cells) for (m, lib), cells in grouped.items()])
