"""Overdue follow-ups by library, for the consortium's coordinators (coordination.followthrough reads)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from coordination import followthrough
from coordination.access import Coordinator
from coordination.followthrough import OverdueRow
from coordination.views._page import context, staff_page

# The names of a follow-up's history steps and stages, for the codes Ticket.history keeps
# (routing.services.followup_deadlines, routing.services.followups); a code not named here is shown as stored.
STEP_NAMES = {
    "due": pgettext_lazy("a follow-up's history", "due time set"),
    "claimed": pgettext_lazy("a follow-up's history", "claimed"),
    "remind": pgettext_lazy("a follow-up's history", "reminder sent"),
    "escalate": pgettext_lazy("a follow-up's history", "moved on"),
}
STAGE_NAMES = {
    "library": pgettext_lazy("a follow-up's history: on the list of", "the library"),
    "partners": pgettext_lazy("a follow-up's history: on the list of", "the partners"),
    "consortium": pgettext_lazy("a follow-up's history: on the list of", "the consortium"),
}


def history_lines(row: OverdueRow) -> list[tuple[str, str, str]]:
    """(when, the step's name, the list it moved to or ""), oldest first."""
    return [(str(step.get("at", ""))[:16], str(STEP_NAMES.get(str(step.get("kind")), step.get("kind", ""))),
             str(STAGE_NAMES.get(str(step["to"]), step["to"])) if step.get("to") else "")
            for step in row.ticket.history if isinstance(step, dict)]


@require_GET
@staff_page("coordinator")
def overdue_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    now = timezone.now()
    groups = followthrough.overdue_by_library(who.consortium, now)
    return render(request, "coordination/overdue.html", context(
        who, "overdue", groups=[(name, [(row, history_lines(row)) for row in rows]) for name, rows in groups],
        total=sum(len(rows) for _, rows in groups), now=now))
