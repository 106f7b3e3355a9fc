"""Who reviews and who is a liaison: flags a coordinator sets on the consortium's review settings page.

Reviewers are the staff with the `reviewer` flag, not every coordinator or mentor: reviewing is a
monthly commitment a consortium asks of named people, often a few per library (the pages let a
coordinator flag themselves like anyone else). A liaison (`liaison`) receives the reviews of their
own library's chats.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from consortium.models import Consortium
from libraries.models import StaffProfile
from review.models import ReviewRoles


def active_staff(consortium: Consortium) -> QuerySet[StaffProfile]:
    return StaffProfile.objects.filter(library__consortium=consortium, is_active=True, user__is_active=True)


def reviewers_of(consortium: Consortium) -> QuerySet[StaffProfile]:
    return active_staff(consortium).filter(review_roles__reviewer=True).order_by("pk")


def liaisons_of(library_id: int) -> QuerySet[StaffProfile]:
    return (StaffProfile.objects.filter(library_id=library_id, is_active=True, user__is_active=True,
                                        review_roles__liaison=True).select_related("user").order_by("pk"))


def roles_of(profile: StaffProfile) -> ReviewRoles:
    found = ReviewRoles.objects.filter(staff=profile).first()
    return found or ReviewRoles(staff=profile)


def roles_set(consortium: Consortium, *, reviewers: set[int], liaisons: set[int]) -> None:
    """Make exactly `reviewers` and `liaisons` (staff ids of this consortium) hold those flags."""
    with transaction.atomic():
        for profile in StaffProfile.objects.filter(library__consortium=consortium).order_by("pk"):
            want = (profile.pk in reviewers, profile.pk in liaisons)
            roles = ReviewRoles.objects.select_for_update().filter(staff=profile).first()
            if roles is None:
                if any(want):
                    ReviewRoles.objects.create(staff=profile, reviewer=want[0], liaison=want[1])
            elif (roles.reviewer, roles.liaison) != want:
                roles.reviewer, roles.liaison = want
                roles.save(update_fields=["reviewer", "liaison"])
