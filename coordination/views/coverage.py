"""Coverage: demand against the librarians on the rota, per queue and hour of the week, and the waits
the staffing forecast predicts for the coming week (coordination.forecast)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
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
        return _("never")
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def forecast_cell(hour: HourForecast) -> ForecastCell:
    """One hour of the coming week on the heat map, its title in the active language (the coordinator's)."""
    when = date_format(hour.start, "D d M H:00")
    if not hour.open:
        return ForecastCell("closed", "", _("%(when)s: closed") % {"when": when})
    p = hour.prediction
    expected = ngettext("%(chats).1f chats expected, %(n)s librarian", "%(chats).1f chats expected, %(n)s librarians",
                        hour.librarians) % {"chats": hour.arrivals, "n": hour.librarians}
    if p is None or p.model == "idle":
        return ForecastCell("fc-idle", "", _("%(when)s: no chats expected (%(n)s on the rota)") % {
            "when": when, "n": hour.librarians})
    if not p.staffed:
        return ForecastCell("fc-none", "0", _("%(when)s: %(expected)s: nobody to answer") % {
            "when": when, "expected": expected})
    css = "fc-good" if p.service_level >= GOOD_LEVEL else "fc-fair" if p.service_level >= FAIR_LEVEL else "fc-bad"
    return ForecastCell(css, f"{p.service_level * 100:.0f}", _(
        "%(when)s: %(expected)s (%(slots)s chats at once); predicted wait %(p50)s (median), %(p90)s (9 in 10); "
        "%(level).0f%% answered within 60 s") % {
            "when": when, "expected": expected, "slots": hour.slots, "p50": seconds_text(p.wait_p50),
            "p90": seconds_text(p.wait_p90), "level": p.service_level * 100})


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
