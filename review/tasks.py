"""Celery tasks of transcript review: the daily sampling (from beat) and the feedback mail."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from libraries.models import StaffProfile
from review.models import Review
from review.roles import liaisons_of
from review.rubric import settings_of
from review.sampling import parse_month, samples_due
from routing.tasks import send_once


@shared_task(acks_late=True)
def reviews_sample_due(month: str | None = None) -> dict[str, int]:
    """Daily, from Celery beat: every consortium's sample of its previous month (or of `month`, "YYYY-MM"),
    once: review.sampling skips the libraries already drawn, so the days after the first only catch up
    on the ones that had no reviewer."""
    wanted = parse_month(month) if month else None
    return {slug: report.total for slug, report in samples_due(timezone.now(), wanted).items()}


def feedback_text(review: Review) -> str:
    lines = [f"A transcript answered by {review.librarian.display_name} ({review.library.name}) in "
             f"{review.month:%B %Y} was reviewed by {review.reviewer.display_name} "
             f"({review.reviewer.library.name}).", ""]
    for score in review.scores.select_related("criterion"):
        lines.append(f"{score.criterion.name}: {score.criterion.label(score.value)} (of {score.criterion.scale})")
        if score.comment:
            lines.append(f"  {score.comment}")
    if review.comment:
        lines += ["", "Overall:", review.comment]
    lines += ["", f"The review, with the transcript (patron details removed): "
                  f"{settings.PUBLIC_URL}{reverse('review-detail', args=[review.pk])}"]
    return "\n".join(lines) + "\n"


@shared_task(bind=True, acks_late=True)
def mail_review_feedback(self: Any, review_id: int) -> None:
    """The scores and comments of a submitted review, to the answering library's liaisons (and the
    librarian, when the consortium shares scores with them). Sent once per task (routing.tasks.send_once)."""
    review = (Review.objects.select_related("consortium", "library", "librarian__user", "reviewer__user",
                                            "reviewer__library").filter(pk=review_id).first())
    if review is None or not review.submitted:
        return
    recipients = [p.user.email for p in liaisons_of(review.library_id) if p.user.email]
    if settings_of(review.consortium).share_with_librarian and review.librarian.user.email:
        recipients.append(review.librarian.user.email)
    recipients = sorted(set(recipients))
    if not recipients:
        return
    send_once(self.request.id, subject=f"{review.consortium.name}: a transcript review for {review.library.name}",
              message=feedback_text(review), from_email=None, recipient_list=recipients)


@shared_task(bind=True, acks_late=True)
def mail_reviews_assigned(self: Any, staff_id: int, month: str) -> None:
    """A reviewer's open reviews of `month` (YYYY-MM-DD, its first day), with their due date and where
    to find them. Nothing of the chats: the page shows them, scrubbed."""
    reviewer = StaffProfile.objects.select_related("user", "library__consortium").filter(pk=staff_id).first()
    if reviewer is None or not reviewer.user.email:
        return
    open_reviews = list(Review.objects.filter(reviewer=reviewer, month=month, submitted_at__isnull=True)
                        .select_related("consortium"))
    if not open_reviews:
        return
    consortium = reviewer.library.consortium
    due = max(r.due_on for r in open_reviews)
    first = open_reviews[0].month
    send_once(self.request.id, subject=f"{consortium.name}: transcripts to review by {due:%B} {due.day}",
              message=(f"Hello {reviewer.display_name},\n\nYou have {len(open_reviews)} transcript(s) of "
                       f"{first:%B %Y} to review for {consortium.name}, by {due:%A %B} {due.day}.\n"
                       f"They are on your Reviews page: {settings.PUBLIC_URL}{reverse('review-home')}\n"),
              from_email=None, recipient_list=[reviewer.user.email])
