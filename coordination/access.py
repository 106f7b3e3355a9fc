"""Who may open the coordinator pages, by the staff role (the single source of truth, consortium/scoping.py).

- The board, the rota, coverage and statistics: the consortium's coordinators (and superusers).
- The hours editor: coordinators for every queue of their consortium; a library admin for their own
  library's local queue only.
- Anyone else signed in gets 403; a coordinator of another consortium gets 404, as for a chat of
  another tenant (existence is not revealed across consortia).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from consortium.models import Consortium
from consortium.scoping import AnyUser, admin_role, is_superuser, scope_queryset, staff_profile
from libraries.models import Queue, StaffProfile


class Refused(Exception):
    """Not allowed: `status` is 403 (wrong role) or 404 (another consortium, or no such thing)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Coordinator:
    consortium: Consortium
    profile: StaffProfile | None  # None for a superuser without a staff profile


def _consortium(slug: str) -> Consortium:
    consortium = Consortium.objects.filter(slug=slug, is_active=True).first()
    if consortium is None:
        raise Refused(404, "no such consortium")
    return consortium


def coordinator_of(user: AnyUser, slug: str) -> Coordinator:
    """The consortium `slug`, if this user coordinates it; else Refused."""
    profile = staff_profile(user)
    if is_superuser(user):
        return Coordinator(_consortium(slug), profile)
    if admin_role(user) != StaffProfile.Role.COORDINATOR or profile is None:
        raise Refused(403, "these pages are for the consortium's coordinators")
    consortium = _consortium(slug)
    if profile.library.consortium_id != consortium.pk:
        raise Refused(404, "no such consortium")
    return Coordinator(consortium, profile)


def editable_queues(user: AnyUser, slug: str) -> tuple[Consortium, QuerySet[Queue]]:
    """The queues of consortium `slug` whose hours this user may edit (Refused when none)."""
    role = admin_role(user)
    if not is_superuser(user) and role not in (StaffProfile.Role.COORDINATOR, StaffProfile.Role.LIBRARY_ADMIN):
        raise Refused(403, "hours are kept by coordinators and library admins")
    consortium = _consortium(slug)
    profile = staff_profile(user)
    if not is_superuser(user) and (profile is None or profile.library.consortium_id != consortium.pk):
        raise Refused(404, "no such consortium")
    queues = scope_queryset(Queue.objects.filter(consortium=consortium, is_active=True), user,
                            path_to_consortium="consortium", path_to_library="library")
    return consortium, queues


def may_edit_all_hours(user: AnyUser) -> bool:
    return is_superuser(user) or admin_role(user) == StaffProfile.Role.COORDINATOR
