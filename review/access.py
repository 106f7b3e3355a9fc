"""Who may see and do what with a review: the one place the review pages ask.

- The **reviewer** it is assigned to scores it (until submitted) and reads it.
- The answering library's **liaisons** read it once submitted, and no other library's.
- The answering **librarian** reads it once submitted, when the consortium shares scores with them.
- **Coordinators** of the consortium read every review and see the statistics.
- Any staff of the consortium reads a submitted review marked **notable** (scrubbed, as always).
- Marking notable: the reviewer of a submitted review, or a coordinator.

Never across consortia: a review of another consortium is "no such review" (a 404) to everyone.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from libraries.models import StaffProfile
from review.models import Review
from review.roles import roles_of
from review.rubric import settings_of


def is_coordinator(profile: StaffProfile) -> bool:
    return profile.role == StaffProfile.Role.COORDINATOR


def visible_q(profile: StaffProfile) -> Q:
    """The reviews this librarian may open (a filter on Review, within their consortium)."""
    q = Q(reviewer=profile) | Q(notable=True, submitted_at__isnull=False)
    if is_coordinator(profile):
        return Q(consortium_id=profile.library.consortium_id)
    if roles_of(profile).liaison:
        q |= Q(library_id=profile.library_id, submitted_at__isnull=False)
    if settings_of(profile.library.consortium).share_with_librarian:
        q |= Q(librarian=profile, submitted_at__isnull=False)
    return Q(consortium_id=profile.library.consortium_id) & q


def visible(profile: StaffProfile) -> QuerySet[Review]:
    return Review.objects.filter(visible_q(profile))


def review_for(profile: StaffProfile, review_id: int) -> Review | None:
    return (visible(profile).select_related("chat", "library", "librarian__user", "librarian__library",
                                            "reviewer__user", "reviewer__library", "consortium")
            .filter(pk=review_id).first())


def may_score(profile: StaffProfile, review: Review) -> bool:
    return review.reviewer_id == profile.pk and not review.submitted


def may_mark_notable(profile: StaffProfile, review: Review) -> bool:
    if review.consortium_id != profile.library.consortium_id or not review.submitted:
        return False
    return review.reviewer_id == profile.pk or is_coordinator(profile)
