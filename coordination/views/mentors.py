"""Mentors, for the consortium's coordinators: which staff carry the mentor flag (they see every live
chat of the consortium and may watch, whisper, join and take over: docs/coordinators.md, "Mentors").
The write is routing.services.mentoring.mentors_set; this view parses and answers."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from coordination.access import Coordinator
from coordination.views._page import context, staff_page
from libraries.models import StaffProfile
from routing.services.mentoring import mentors_set


@require_http_methods(["GET", "POST"])
@staff_page("coordinator")
def mentors_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    staff = list(StaffProfile.objects.filter(library__consortium=consortium, is_active=True, user__is_active=True)
                 .select_related("user", "library").order_by("library__name", "user__first_name", "user__username"))
    if request.method == "POST":
        ids = {p.pk for p in staff}
        chosen = {int(v) for v in request.POST.getlist("mentor") if v.isdigit()} & ids
        mentors_set(consortium.pk, chosen)
        messages.success(request, "Mentors saved.")
        return redirect("coordination-mentors", consortium_slug=consortium.slug)
    return render(request, "coordination/mentors.html", context(who, "mentors", staff=staff))
