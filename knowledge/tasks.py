"""The knowledge base's daily job (Celery beat): tell owners of the answers past their review date."""

from __future__ import annotations

from collections import defaultdict

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from knowledge.models import Answer
from knowledge.services import answers_due_for_review, answers_flag


@shared_task(acks_late=True)
def answers_review_due() -> int:
    """One mail per owner listing their answers past the review date, each answer told once
    (`review_flagged_on`, set after the mail went; a failed mail is tried again the next day).
    Returns the answers told of."""
    today = timezone.now().date()
    by_owner: dict[int, list[Answer]] = defaultdict(list)
    for answer in answers_due_for_review(today):
        by_owner[answer.owner_id or 0].append(answer)
    told = 0
    for answers in by_owner.values():
        owner = answers[0].owner
        if owner is None or not owner.user.email:
            continue
        lines = "\n".join(f"- {a.question} (due {a.review_on:%Y-%m-%d}): {settings.PUBLIC_URL}"
                          f"{reverse('staff-answer', args=[a.pk])}" for a in answers)
        send_mail(subject=f"{answers[0].consortium.name}: answers to review", from_email=None,
                  recipient_list=[owner.user.email],
                  message=(f"Hello {owner.display_name},\n\nThese answers of yours are past their review date. "
                           f"Check that they are still right, then save them with a new review date (or ask "
                           f"for them to be retired):\n\n{lines}\n"))
        told += answers_flag([a.pk for a in answers], today)
    return told
