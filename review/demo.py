"""Transcript review in the demo (`python3 dev.py demo`, after coordination.history's generated past):
reviewers and liaisons named, the last two months sampled as the beat task would, most reviews
scored, a few marked notable, so the review pages and figures show something on the first run.

Like the generated past it replaces, it is rebuilt at each start and only for the demo: the command
(`manage.py demo_reviews`) refuses a production database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from consortium.models import Consortium
from libraries.models import StaffProfile
from review.models import Review, ReviewRoles, ReviewSettings, SampleRun, Score
from review.rubric import rubric
from review.sampling import month_sample, previous_month

COMMENTS = (
    "Warm greeting and a clear close.",
    "Good reference interview: the question was restated before searching.",
    "Long silences while searching; tell the patron what you are doing.",
    "Sources were explained and linked; the patron could find them again.",
    "Ask whether the question was answered before ending.",
    "",
)


@dataclass(frozen=True)
class Summary:
    reviews: int
    submitted: int
    notable: int


def load(consortium: Consortium, now: datetime, *, seed: int = 20) -> Summary:
    rng = random.Random(seed)
    zone = ZoneInfo(consortium.timezone)
    with transaction.atomic():
        Review.objects.filter(consortium=consortium).delete()
        SampleRun.objects.filter(consortium=consortium).delete()
        ReviewSettings.objects.update_or_create(consortium=consortium, defaults={
            "sample_kind": ReviewSettings.SampleKind.COUNT, "sample_value": 3, "share_with_librarian": True})
        staff = list(StaffProfile.objects.filter(library__consortium=consortium, is_active=True)
                     .order_by("library__name", "user__username"))
        by_library: dict[int, list[StaffProfile]] = {}
        for p in staff:
            by_library.setdefault(p.library_id, []).append(p)
        for people in by_library.values():
            admins = [p for p in people if p.role == StaffProfile.Role.LIBRARY_ADMIN]
            liaison = (admins or people)[0]
            reviewer = next((p for p in people if p.role == StaffProfile.Role.LIBRARIAN), people[0])
            for p in people:
                ReviewRoles.objects.update_or_create(staff=p, defaults={
                    "reviewer": p == reviewer, "liaison": p == liaison})
        criteria = rubric(consortium)
        coordinator = next((p for p in staff if p.role == StaffProfile.Role.COORDINATOR), None)
        last = previous_month(now, zone)
        before = previous_month(datetime(last.year, last.month, 1, 12, tzinfo=zone), zone)
        submitted = notable = 0
        for month, share_done in ((before, 0.8), (last, 0.5)):
            month_sample(consortium, month, now, rng=rng)
            for review in Review.objects.filter(consortium=consortium, month=month).order_by("pk"):
                if rng.random() >= share_done:
                    continue
                Score.objects.bulk_create(
                    Score(review=review, criterion=c, value=min(c.scale, rng.choice((2, 3, 3, 4, 4))),
                          comment=rng.choice(COMMENTS)) for c in criteria)
                review.submitted_at = min(now, review.assigned_at + timedelta(days=rng.randint(1, 20)))
                review.comment = rng.choice(COMMENTS)
                if rng.random() < 0.1:
                    review.notable, review.notable_by, review.notable_at = True, coordinator, review.submitted_at
                    notable += 1
                review.save()
                submitted += 1
    return Summary(Review.objects.filter(consortium=consortium).count(), submitted, notable)
