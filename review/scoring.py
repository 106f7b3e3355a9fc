"""Scoring a review and marking it notable: the writes of transcript review besides sampling.

`review_submit` takes every active criterion's score at once (a half-scored review is not kept:
the page shows the reviewer what is missing, with everything they typed still in the form), and
after commit hands the mail to the answering library's liaisons to Celery (review.tasks).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext, gettext_lazy

from libraries.models import StaffProfile
from review import access
from review.models import Review, Score
from review.rubric import rubric
from routing.services.common import Refused

COMMENT_MAX = 4000


def review_submit(profile: StaffProfile, review_id: int, now: datetime, *, values: Mapping[int, str],
                  comments: Mapping[int, str], comment: str) -> Review:
    """Score review `review_id` (criterion id -> the value as typed, and a comment each); raises Refused."""
    from review.tasks import mail_review_feedback  # tasks import this module: keep the import graph one-way

    with transaction.atomic():
        review = Review.objects.select_for_update().select_related("consortium").filter(
            pk=review_id, consortium_id=profile.library.consortium_id).first()
        if review is None or review.reviewer_id != profile.pk:
            raise Refused("not_found", gettext_lazy("no such review"))
        if review.submitted:
            raise Refused("already_submitted", gettext_lazy("this review has been submitted"))
        errors: dict[str, list[str]] = {}
        scores = []
        for criterion in rubric(review.consortium):
            raw = (values.get(criterion.pk) or "").strip()
            note = (comments.get(criterion.pk) or "").strip()
            if not raw.isdigit() or not 1 <= int(raw) <= criterion.scale:
                errors[criterion.name] = [gettext("choose a score from 1 to %(most)d") % {"most": criterion.scale}]
            elif len(note) > COMMENT_MAX:
                errors[criterion.name] = [gettext("at most %(most)d characters") % {"most": COMMENT_MAX}]
            else:
                scores.append(Score(review=review, criterion=criterion, value=int(raw), comment=note))
        comment = comment.strip()
        if len(comment) > COMMENT_MAX:
            errors["comment"] = [gettext("at most %(most)d characters") % {"most": COMMENT_MAX}]
        if errors:
            raise Refused("invalid", gettext_lazy("some scores are missing or wrong"), errors)
        Score.objects.bulk_create(scores)
        review.comment = comment
        review.submitted_at = now
        review.save(update_fields=["comment", "submitted_at"])
        transaction.on_commit(lambda: mail_review_feedback.delay(review.pk))
    return review


def review_mark_notable(profile: StaffProfile, review_id: int, now: datetime, *, notable: bool) -> Review:
    with transaction.atomic():
        review = Review.objects.select_for_update().filter(
            pk=review_id, consortium_id=profile.library.consortium_id).first()
        if review is None or not access.visible(profile).filter(pk=review_id).exists():
            raise Refused("not_found", gettext_lazy("no such review"))
        if not access.may_mark_notable(profile, review):
            raise Refused("forbidden", gettext_lazy(
                "only its reviewer or a coordinator marks a submitted review notable"))
        review.notable = notable
        review.notable_by = profile if notable else None
        review.notable_at = now if notable else None
        review.save(update_fields=["notable", "notable_by", "notable_at"])
    return review
