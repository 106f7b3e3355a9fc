"""Overdue follow-ups by library, for the consortium's coordinators (coordination.followthrough reads)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from coordination import followthrough
from coordination.access import Coordinator
from coordination.views._page import context, staff_page


@require_GET
@staff_page("coordinator")
def overdue_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    now = timezone.now()
    groups = followthrough.overdue_by_library(who.consortium, now)
    return render(request, "coordination/overdue.html", context(
        who, "overdue", groups=groups, total=sum(len(rows) for _, rows in groups), now=now))
