"""Statistics for a period: the page (tables and charts from coordination.statistics) and each table as CSV."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from consortium import csv_safe
from coordination import charts, statistics
from coordination.access import Coordinator
from coordination.forms import PeriodForm
from coordination.views._page import DAY_NAMES, context, staff_page
from libraries.models import Library
from routing.outcomes import LABELS, Outcome

CSV_TABLES = ("outcomes", "libraries", "matrix", "balance", "hours", "surveys", "read", "subjects", "who",
              "channels")


@require_GET
@staff_page("coordinator")
def statistics_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    zone = ZoneInfo(consortium.timezone)
    form = PeriodForm(request.GET or None)
    today = timezone.now().astimezone(zone).date()
    period = statistics.period_ending(consortium, today)
    library = None
    if form.is_bound and form.is_valid():
        first = form.cleaned_data["since"] or period.first
        last = form.cleaned_data["until"] or period.last
        if last < first:
            first = last
        period = statistics.Period(first, last, zone)
        if form.cleaned_data["library"]:
            library = get_object_or_404(Library, consortium=consortium, slug=form.cleaned_data["library"])
    found = statistics.report(consortium, period, library)
    table = request.GET.get("csv", "")
    if table in CSV_TABLES:
        return _csv(found, table)
    return render(request, "coordination/statistics.html", context(
        who, "statistics", report=found, form=form, period=period, library=library,
        libraries=Library.objects.filter(consortium=consortium).order_by("name"),
        matrix_rows=_matrix_rows(found.matrix), charts=_charts(found),
        query=request.GET.urlencode() if request.GET else "", tables=CSV_TABLES, days=DAY_NAMES,
        outcome_names=[(o.value, _(LABELS[o])) for o in Outcome],
        summary=[(o.value, _(LABELS[o]), n) for o, n in found.outcomes.items()],
        per_library=[(lib, [n for _, n in o.items()], o.total, w) for lib, o, w in found.per_library]))


MATRIX_TABLE_LIMIT = 30  # more answering libraries than this: the CSV, not a table on the page


def _matrix_rows(matrix: statistics.Matrix) -> dict[str, Any]:
    columns = matrix.columns()
    if len(columns) > MATRIX_TABLE_LIMIT:
        return {"columns": columns, "rows": [], "totals": []}
    rows = [((matrix.libraries[h].name if h is not None else _("no home library")),
             [matrix.get(h, c) for c in columns], matrix.row_total(h), h) for h in matrix.rows()]
    return {"columns": [matrix.libraries[c].name for c in columns], "rows": rows,
            "totals": [matrix.column_total(c) for c in columns]}


def _charts(found: statistics.Report) -> dict[str, Any]:
    o = found.outcomes
    out = {
        "outcomes": charts.bar_chart([(_(LABELS[outcome]), n) for outcome, n in o.items()],
                                     label=_("Chats by outcome")),
        "hours": charts.week_heat(found.hours, label=_("Chats by hour of the week")),
        "surveys": charts.bar_chart([(f"{r} ★", n) for r, n in found.surveys.ratings.items()],
                                    label=_("Survey ratings")),
        "read": charts.bar_chart([(f"READ {lvl}" if lvl else _("not classified"), n) for lvl, n in found.read.items()],
                                 label=_("READ scale")),
        "subjects": charts.bar_chart(found.subjects[:15], label=_("Subjects")),
        "balance": charts.bar_chart(sorted(((b.library.name, b.net) for b in found.balances if b.net > 0),
                                           key=lambda x: -x[1])[:15], label=_("Libraries answering most for others")),
    }
    if found.who_answered is not None:
        w = found.who_answered
        out["who"] = charts.bar_chart([(_("own staff"), w.own), *((p.name, n) for p, n in w.partners),
                                       (_("rest of the consortium"), w.consortium), (_("not answered"), w.unanswered)],
                                      label=_("Who answered %(name)s's patrons") % {"name": w.library.name})
    return out


def _csv(found: statistics.Report, table: str) -> HttpResponse:
    period = f"{found.period.first.isoformat()}_{found.period.last.isoformat()}"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{found.consortium.slug}-{table}-{period}.csv"'
    # Subject tags are librarians' free text: quoted where a spreadsheet would run them (consortium/csv_safe.py).
    csv_safe.writer(response).writerows(statistics_rows(found, table))
    return response


def statistics_rows(found: statistics.Report, table: str) -> list[list[Any]]:
    """The rows of one CSV table (a header first), the same figures as the page shows."""
    def seconds(value: float | None) -> Any:
        return "" if value is None else round(value, 1)

    if table == "outcomes":
        return [["outcome", "chats"], *([outcome.value, n] for outcome, n in found.outcomes.items()),
                ["total", found.outcomes.total]]
    if table == "libraries":
        return [["library", "chats", *(o.value for o in Outcome), "wait_p50_s", "wait_p90_s"],
                *([lib.slug, o.total, *(n for _, n in o.items()), seconds(w.p50), seconds(w.p90)]
                  for lib, o, w in found.per_library)]
    if table == "channels":
        return [["channel", "chats", *(o.value for o in Outcome), "wait_p50_s", "wait_p90_s"],
                *([c, o.total, *(n for _, n in o.items()), seconds(w.p50), seconds(w.p90)]
                  for c, o, w in found.per_channel)]
    if table == "matrix":
        m = found.matrix
        return [["home_library", "answering_library", "chats"],
                *([m.libraries[h].slug if h is not None else "", m.libraries[a].slug, n]
                  for (h, a), n in sorted(m.counts.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])))]
    if table == "balance":
        return [["library", "patrons_chats", "answered", "answered_for_others", "answered_by_others", "net"],
                *([b.library.slug, b.patrons_chats, b.answered, b.for_others, b.by_others, b.net]
                  for b in found.balances)]
    if table == "hours":
        return [["weekday", *[f"{h:02d}" for h in range(24)]],
                *([DAY_NAMES[d], *found.hours[d]] for d in range(7))]
    if table == "surveys":
        return [["rating", "answers"], *([r, n] for r, n in found.surveys.ratings.items())]
    if table == "read":
        return [["read_scale", "chats"], *([lvl or "", n] for lvl, n in found.read.items())]
    if table == "subjects":
        return [["subject", "chats"], *([s, n] for s, n in found.subjects)]
    w = found.who_answered
    if w is None:
        return [["answered_by", "chats"]]
    return [["answered_by", "chats"], ["own staff", w.own], *([p.slug, n] for p, n in w.partners),
            ["rest of the consortium", w.consortium], ["not answered", w.unanswered],
            ["answered for others", w.for_others]]
