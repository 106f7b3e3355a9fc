"""What every coordination page shares: who may open it (one decorator), the refusal page, the context.

`staff_page(role)` is the only place a view of this package checks sign-in and access; the rules
themselves are coordination.access's. The one page without it is the rota feed, whose secret address
is its only credential (coordination.views.my_rota).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Literal

from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import pgettext_lazy

from consortium.models import Consortium
from coordination.access import Coordinator, Refused, coordinator_of, editable_queues, may_edit_all_hours
from libraries.models import Queue, StaffProfile
from routing import access

View = Callable[..., HttpResponse]
Role = Literal["coordinator", "hours", "librarian"]
# In the reader's language when shown (lazy): the rota, coverage and statistics pages.
# A context of their own: Django's catalogue has these words for dates ("abre martes 9:00", lower case
# in Spanish), and ours would override it; as a heading they are capitalised.
DAY_NAMES = (pgettext_lazy("weekday heading", "Monday"), pgettext_lazy("weekday heading", "Tuesday"),
             pgettext_lazy("weekday heading", "Wednesday"), pgettext_lazy("weekday heading", "Thursday"),
             pgettext_lazy("weekday heading", "Friday"), pgettext_lazy("weekday heading", "Saturday"),
             pgettext_lazy("weekday heading", "Sunday"))


@dataclass(frozen=True)
class HoursKeeper:
    """Someone who keeps opening hours: a coordinator (every queue) or a library admin (their own)."""

    consortium: Consortium
    queues: QuerySet[Queue]  # the queues whose hours they may edit
    profile: StaffProfile | None
    is_coordinator: bool  # may edit every queue's hours, and the time zone


def staff_page(role: Role) -> Callable[[View], View]:
    """Signed in (else the sign-in page) and allowed as `role` (else 403, or 404 across consortia).

    The view is called with who asks as its second argument, and without `consortium_slug`:
    - "coordinator": a Coordinator of the consortium in the address (board, rota, coverage, statistics);
    - "hours": a HoursKeeper of the consortium in the address (the hours pages);
    - "librarian": the StaffProfile of any active librarian (their own rota; no consortium in the address).
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def handler(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                who = _who(request, role, kwargs)
            except Refused as refused:
                return _refused(request, refused)
            return view(request, who, **kwargs)

        return handler

    return decorate


def _who(request: HttpRequest, role: Role, kwargs: dict[str, Any]) -> Coordinator | HoursKeeper | StaffProfile:
    if role == "coordinator":
        return coordinator_of(request.user, kwargs.pop("consortium_slug"))
    if role == "hours":
        consortium, queues = editable_queues(request.user, kwargs.pop("consortium_slug"))
        return HoursKeeper(consortium, queues, access.staff_of(request.user),
                           may_edit_all_hours(request.user))
    profile = access.staff_of(request.user)
    if profile is None:
        raise Refused(403, "this account has no staff profile")
    return profile


def _refused(request: HttpRequest, refused: Refused) -> HttpResponse:
    if refused.status == 404:
        raise Http404(refused.detail)
    return render(request, "coordination/forbidden.html", {"detail": refused.detail}, status=403)


def context(who: Coordinator | HoursKeeper, section: str, **extra: Any) -> dict[str, Any]:
    """The template context every consortium page starts from (the menu shows what `who` may open)."""
    is_coordinator = who.is_coordinator if isinstance(who, HoursKeeper) else True
    return {"consortium": who.consortium, "profile": who.profile, "section": section,
            "is_coordinator": is_coordinator, **extra}


def int_param(value: str | None) -> int:
    """A whole number from a form or query field; 0 when it is missing or not one."""
    return int(value) if value and value.isdigit() else 0
