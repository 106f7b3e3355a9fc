"""Coverage: demand against the librarians on the rota, per queue and hour of the week, and the waits
the staffing forecast predicts for the coming week (coordination.forecast)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from coordination import charts
from coordination.access import Coordinator
from coordination.coverage import coverage
from coordination.forecast import HISTORY_WEEKS, HourForecast, QueueForecast, forecast
from coordination.views._page import DAY_NAMES, context, int_param, staff_page

GOOD_LEVEL = 0.8  # share answered within 60 s that a coordinator can leave alone
FAIR_LEVEL = 0.5


@dataclass(frozen=True)
class ForecastCell:
    css: str  # fc-good | fc-fair | fc-bad | fc-none | closed
    text: str
    title: str


def seconds_text(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def forecast_cell(hour: HourForecast) -> ForecastCell:
    when = f"{hour.start:%a %d %b %H}:00"
    if not hour.open:
        return ForecastCell("closed", "", f"{when}: closed")
    p = hour.prediction
    expected = f"{hour.arrivals:.1f} chats expected, {hour.librarians} librarian{'s' if hour.librarians != 1 else ''}"
    if p is None or p.model == "idle":
        return ForecastCell("fc-idle", "", f"{when}: no chats expected ({hour.librarians} on the rota)")
    if not p.staffed:
        return ForecastCell("fc-none", "0", f"{when}: {expected}: nobody to answer")
    css = "fc-good" if p.service_level >= GOOD_LEVEL else "fc-fair" if p.service_level >= FAIR_LEVEL else "fc-bad"
    return ForecastCell(css, f"{p.service_level * 100:.0f}", (
        f"{when}: {expected} ({hour.slots} chats at once); predicted wait {seconds_text(p.wait_p50)} "
        f"(median), {seconds_text(p.wait_p90)} (9 in 10); {p.service_level * 100:.0f}% answered within 60 s"))


def forecast_rows(found: QueueForecast) -> list[tuple[str, list[ForecastCell]]]:
    return [(DAY_NAMES[d][:3], [forecast_cell(found.hour(d, h)) for h in range(24)]) for d in range(7)]


@require_GET
@staff_page("coordinator")
def coverage_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    weeks = int_param(request.GET.get("weeks")) or 4
    now = timezone.now()
    found = coverage(who.consortium, now, weeks)
    predicted = {q.queue.slug: q for q in forecast(who.consortium, now).queues}
    grids = []
    for queue_coverage in found.queues:
        rows = [(DAY_NAMES[d][:3], [(cell, int(charts.level(cell.demand, found.peak_demand)))
                                    for cell in queue_coverage.row(d)]) for d in range(7)]
        ahead = predicted.get(queue_coverage.queue.slug)
        grids.append((queue_coverage, rows, ahead, forecast_rows(ahead) if ahead else []))
    return render(request, "coordination/coverage.html", context(
        who, "coverage", coverage=found, grids=grids, hours=[f"{h:02d}" for h in range(24)],
        weeks_choices=(1, 2, 4, 8, 12, 26), ahead_weeks=HISTORY_WEEKS))
