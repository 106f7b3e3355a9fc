"""Coverage: demand against the librarians on the rota, per queue and hour of the week."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from coordination import charts
from coordination.access import Coordinator
from coordination.coverage import coverage
from coordination.views._page import DAY_NAMES, context, int_param, staff_page


@require_GET
@staff_page("coordinator")
def coverage_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    weeks = int_param(request.GET.get("weeks")) or 4
    found = coverage(who.consortium, timezone.now(), weeks)
    grids = []
    for queue_coverage in found.queues:
        rows = [(DAY_NAMES[d][:3], [(cell, int(charts.level(cell.demand, found.peak_demand)))
                                    for cell in queue_coverage.row(d)]) for d in range(7)]
        grids.append((queue_coverage, rows))
    return render(request, "coordination/coverage.html", context(
        who, "coverage", coverage=found, grids=grids, hours=[f"{h:02d}" for h in range(24)],
        weeks_choices=(1, 2, 4, 8, 12, 26)))
