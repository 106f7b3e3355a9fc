"""A librarian's own rota: their shifts for the next weeks, swaps to offer and take, and the private
calendar feed of their shifts."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from coordination.views._page import int_param, staff_page
from libraries import ical, rota
from libraries.models import Queue, Shift, StaffProfile


@require_http_methods(["GET", "POST"])
@staff_page("librarian")
def my_rota(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    """Any librarian: my shifts for the next weeks, swaps to offer and take, my calendar address."""
    now = timezone.now()
    token: str | None
    if request.method == "POST" and request.POST.get("action") == "reset_feed":
        # Answered with the page, not a redirect: only the new secret's hash is kept, so this answer
        # is the one place its address can be shown.
        token = rota.feed_token_reset(profile)
        messages.success(request, _("Your calendar has a new address; the old one no longer works."))
    elif request.method == "POST":
        try:
            _my_rota_action(request, profile, now)
        except rota.RotaError as e:
            messages.error(request, e.detail)
        return redirect("coordination-my-rota")
    else:
        token = rota.feed_token_issue(profile)  # None once made: it was shown then
    consortium = profile.library.consortium
    upcoming = rota.librarian_occurrences(profile, now, now + dt.timedelta(weeks=4))
    names = dict(Queue.objects.filter(consortium=consortium).values_list("slug", "name"))
    offered = {(s.shift_id, s.date): s for s in profile.swaps_offered.filter(status="open")}
    shifts = [{"occurrence": o, "queue": names.get(o.queue, o.queue), "swap": offered.get(o.key)} for o in upcoming]
    swaps = [s for s in rota.open_swaps(consortium, now) if s.offered_by_id != profile.pk]
    feed = request.build_absolute_uri(reverse("coordination-feed", args=[token])) if token else None
    return render(request, "coordination/my_rota.html", {
        "profile": profile, "consortium": consortium, "section": "my-rota", "shifts": shifts, "swaps": swaps,
        "feed": feed, "is_coordinator": profile.role == StaffProfile.Role.COORDINATOR,
        "zone": ZoneInfo(consortium.timezone),
    })


def _my_rota_action(request: HttpRequest, profile: StaffProfile, now: dt.datetime) -> None:
    action = request.POST.get("action", "")
    if action == "offer":
        shift = get_object_or_404(Shift.objects.select_related("queue"), pk=int_param(request.POST.get("shift")),
                                  queue__consortium_id=profile.library.consortium_id)
        try:
            day = dt.date.fromisoformat(request.POST.get("date", ""))
        except ValueError as e:
            raise rota.RotaError(gettext_lazy("that is not a date")) from e
        rota.swap_offer(shift, day, profile, now, note=request.POST.get("note", ""))
        messages.success(request, _("Your shift is offered to colleagues; you are on it until someone takes it."))
    elif action == "take":
        swap = rota.swap_take(int_param(request.POST.get("swap")), profile, now)
        messages.success(request, _("You took the %(queue)s shift of %(day)s.") % {
            "queue": swap.shift.queue.name, "day": date_format(swap.date, "l d F")})
    elif action == "withdraw":
        rota.swap_withdraw(int_param(request.POST.get("swap")), profile)
        messages.success(request, _("Offer withdrawn."))
    else:
        raise rota.RotaError(gettext_lazy("unknown action"))


@require_GET
def rota_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The private calendar feed: the secret address is the only credential (calendar apps send no cookie)."""
    librarian = rota.librarian_for_feed(token)
    if librarian is None:
        raise Http404("no such calendar")
    response = HttpResponse(ical.rota_feed(librarian, timezone.now(), host=request.get_host()),
                            content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
