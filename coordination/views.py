"""The coordinator pages and the librarians' rota page: check who asks, call a module, render.

Figures come from coordination.board / coverage / statistics; changes go through libraries.rota and
libraries.services. Every page is scoped by coordination.access.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from coordination import board, charts, coverage, statistics
from coordination.access import Coordinator, Refused, coordinator_of, editable_queues, may_edit_all_hours
from coordination.forms import ClosureForm, IcsImportForm, PeriodForm, ShiftForm, SpecialHoursForm, WeeklyHoursForm
from libraries import ical, rota, services
from libraries.hours import format_interval, schedule_for
from libraries.models import Library, Queue, Shift, StaffProfile
from routing import access

View = Callable[..., HttpResponse]
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _refused(request: HttpRequest, refused: Refused) -> HttpResponse:
    if refused.status == 404:
        raise Http404(refused.detail)
    return render(request, "coordination/forbidden.html", {"detail": refused.detail}, status=403)


def coordinator_page(view: View) -> View:
    """Signed in, and a coordinator of the consortium in the address (see coordination.access)."""

    @wraps(view)
    def handler(request: HttpRequest, consortium_slug: str, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            who = coordinator_of(request.user, consortium_slug)
        except Refused as refused:
            return _refused(request, refused)
        return view(request, who, **kwargs)

    return handler


def _context(who: Coordinator, section: str, **extra: Any) -> dict[str, Any]:
    return {"consortium": who.consortium, "profile": who.profile, "section": section, "is_coordinator": True,
            **extra}


# --- the live board ---------------------------------------------------------------------------------


@require_GET
@coordinator_page
def board_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    snapshot = board.board_snapshot(who.consortium, timezone.now())
    return render(request, "coordination/board.html", _context(who, "board", board=snapshot))


# --- hours -----------------------------------------------------------------------------------------------


def _hours_text(intervals: Any) -> str:
    return ", ".join(format_interval(s, e) for s, e in intervals)


@require_GET
def hours_grid(request: HttpRequest, consortium_slug: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        consortium, queues = editable_queues(request.user, consortium_slug)
    except Refused as refused:
        return _refused(request, refused)
    rows = []
    for queue in queues.select_related("library").prefetch_related("weekly", "closures", "special_hours") \
            .order_by("-kind", "position", "name"):
        schedule = schedule_for(queue)
        week = ["around the clock" if queue.always_open else _hours_text(schedule.weekly.get(d, ())) or "closed"
                for d in range(7)]
        today = timezone.now().date()
        upcoming = [c for c in queue.closures.all() if c.end_date >= today][:3]
        rows.append({"queue": queue, "week": week, "closures": upcoming,
                     "special": [s for s in queue.special_hours.all() if s.date >= today][:3]})
    return render(request, "coordination/hours_grid.html", {
        "consortium": consortium, "profile": access.staff_of(request.user), "section": "hours",
        "rows": rows, "days": DAY_NAMES, "is_coordinator": may_edit_all_hours(request.user),
    })


@require_http_methods(["GET", "POST"])
def hours_edit(request: HttpRequest, consortium_slug: str, queue_slug: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        consortium, queues = editable_queues(request.user, consortium_slug)
    except Refused as refused:
        return _refused(request, refused)
    queue = get_object_or_404(queues.select_related("library"), slug=queue_slug)
    schedule = schedule_for(queue)
    initial = {"timezone": queue.timezone, "always_open": queue.always_open,
               **{day: _hours_text(schedule.weekly.get(i, ())) for i, day in enumerate(WeeklyHoursForm.DAYS)}}
    weekly_form = WeeklyHoursForm(initial=initial)
    closure_form, special_form, import_form = ClosureForm(), SpecialHoursForm(), IcsImportForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        done = _hours_action(request, queue, action)
        if done is None:
            return redirect("coordination-hours-edit", consortium_slug=consortium.slug, queue_slug=queue.slug)
        status = 400
        if isinstance(done, WeeklyHoursForm):
            weekly_form = done
        elif isinstance(done, ClosureForm):
            closure_form = done
        elif isinstance(done, SpecialHoursForm):
            special_form = done
        elif isinstance(done, IcsImportForm):
            import_form = done
    return render(request, "coordination/hours_edit.html", {
        "consortium": consortium, "profile": access.staff_of(request.user), "section": "hours",
        "queue": queue, "weekly_form": weekly_form, "closure_form": closure_form, "special_form": special_form,
        "import_form": import_form, "closures": queue.closures.order_by("start_date"),
        "specials": [(s, _hours_text(s.intervals) or "closed") for s in queue.special_hours.order_by("date")],
        "is_coordinator": may_edit_all_hours(request.user),
    }, status=status)


def _hours_action(request: HttpRequest, queue: Queue, action: str) -> Any:
    """Apply one form of the hours page: None when done, else the form with its errors."""
    form: Any
    if action == "weekly":
        form = WeeklyHoursForm(request.POST)
        if form.is_valid():
            zone = form.cleaned_data["timezone"] if may_edit_all_hours(request.user) else queue.timezone
            try:
                services.queue_hours_set(queue, timezone.now(), weekly=form.weekly(),
                                         always_open=form.cleaned_data["always_open"], timezone=zone)
            except ValueError as e:
                form.add_error(None, str(e))
                return form
            messages.success(request, f"Weekly hours of {queue.name} saved.")
            return None
        return form
    if action == "closure_add":
        form = ClosureForm(request.POST)
        if form.is_valid():
            services.closure_add(queue, timezone.now(), form.cleaned_data["start"], form.cleaned_data["end"],
                                 form.cleaned_data["reason"])
            messages.success(request, "Closure added.")
            return None
        return form
    if action == "special_add":
        form = SpecialHoursForm(request.POST)
        if form.is_valid():
            try:
                services.special_hours_set(queue, timezone.now(), form.cleaned_data["date"], form.cleaned_data["hours"],
                                           form.cleaned_data["reason"])
            except ValueError as e:
                form.add_error("hours", str(e))
                return form
            messages.success(request, "Special hours saved.")
            return None
        return form
    if action in ("closure_remove", "special_remove"):
        pk = request.POST.get("id", "")
        if pk.isdigit():
            remove = services.closure_remove if action == "closure_remove" else services.special_hours_remove
            remove(queue, timezone.now(), int(pk))
        return None
    if action == "import":
        form = IcsImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                found = ical.hours_from_ics(form.cleaned_data["file"], queue.timezone,
                                            today=timezone.now().astimezone(ZoneInfo(queue.timezone)).date())
            except ValueError as e:  # CalendarError, or hours the router would refuse
                form.add_error("file", str(e))
                return form
            if not found.weekly and not found.closures and not found.special:
                form.add_error("file", "no opening hours, closures or special hours found in this file")
                return form
            try:
                services.queue_hours_import(queue, timezone.now(), found)
            except ValueError as e:
                form.add_error("file", str(e))
                return form
            messages.success(request, f"Imported: {len(found.weekly)} weekday(s) of hours, {len(found.closures)} "
                                      f"closure(s), {len(found.special)} special day(s).")
            for note in found.notes:
                messages.warning(request, note)
            return None
        return form
    messages.error(request, "Unknown action.")
    return None


@require_GET
def hours_ics(request: HttpRequest, consortium_slug: str, queue_slug: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        _consortium, queues = editable_queues(request.user, consortium_slug)
    except Refused as refused:
        return _refused(request, refused)
    queue = get_object_or_404(queues, slug=queue_slug)
    response = HttpResponse(ical.hours_calendar(queue, timezone.now(), host=request.get_host()),
                            content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{queue.slug}-hours.ics"'
    return response


# --- the rota ---------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@coordinator_page
def rota_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    now = timezone.now()
    shift_form = ShiftForm()
    status = 200
    if request.method == "POST":
        try:
            shift_form, ok = _rota_action(request, who, now)
        except rota.RotaError as e:
            messages.error(request, e.detail)
            ok = False
        if ok:
            return redirect(request.get_full_path())
        status = 400
    staff = (StaffProfile.objects.filter(library__consortium=consortium, is_active=True, user__is_active=True)
             .select_related("user", "library").order_by("library__name", "user__first_name", "user__username"))
    week = rota.week_shifts(consortium)
    return render(request, "coordination/rota.html", _context(
        who, "rota", week=[(q, [(s, DAY_NAMES[s.weekday], format_interval(s.start_minute, s.end_minute))
                                for s in shifts]) for q, shifts in week.items()],
        staff=staff, shift_form=shift_form, commitments=rota.commitments(consortium),
        swaps=rota.open_swaps(consortium, now), days=DAY_NAMES), status=status)


def _rota_action(request: HttpRequest, who: Coordinator, now: dt.datetime) -> tuple[ShiftForm, bool]:
    consortium = who.consortium
    action = request.POST.get("action", "")
    shifts = Shift.objects.filter(queue__consortium=consortium).select_related("queue")
    queues = Queue.objects.filter(consortium=consortium, kind=Queue.Kind.SHARED)
    if action == "shift_add":
        form = ShiftForm(request.POST)
        queue = queues.filter(slug=request.POST.get("queue", "")).first()
        if queue is None or not form.is_valid():
            return form, False
        start, end = form.cleaned_data["hours"]
        rota.shift_create(queue, now, weekday=form.cleaned_data["weekday"], start_minute=start, end_minute=end,
                          min_librarians=form.cleaned_data["min_librarians"])
        messages.success(request, "Shift added.")
        return ShiftForm(), True
    if action == "shift_delete":
        rota.shift_delete(get_object_or_404(shifts, pk=_int(request.POST.get("shift"))), now)
        messages.success(request, "Shift removed.")
        return ShiftForm(), True
    if action in ("assign", "unassign"):
        shift = get_object_or_404(shifts, pk=_int(request.POST.get("shift")))
        librarian = _staff_of(consortium.pk, request.POST.get("librarian", ""))
        if librarian is None:
            raise rota.RotaError("pick a librarian of the consortium")
        if action == "assign":
            rota.shift_assign(shift, librarian, now)
            messages.success(request, f"{librarian.display_name} is on {shift} every week.")
        else:
            rota.shift_unassign(shift, librarian, now)
            messages.success(request, f"{librarian.display_name} is off {shift}.")
        return ShiftForm(), True
    if action == "rota_driven":
        queue = get_object_or_404(queues, slug=request.POST.get("queue", ""))
        rota.queue_rota_driven_set(queue, request.POST.get("value") == "on", now)
        messages.success(request, f"{queue.name} is {'now' if queue.rota_driven else 'no longer'} rota-driven.")
        return ShiftForm(), True
    if action == "target":
        library = get_object_or_404(Library, consortium=consortium, slug=request.POST.get("library", ""))
        raw = request.POST.get("hours", "").strip()
        if raw and not raw.isdigit():
            raise rota.RotaError("a weekly target is a whole number of hours, at most 168")
        rota.library_target_set(library, int(raw) if raw else None)
        return ShiftForm(), True
    if action == "swap_withdraw" and who.profile is not None:
        rota.swap_withdraw(_int(request.POST.get("swap")), who.profile, as_coordinator=True)
        return ShiftForm(), True
    raise rota.RotaError("unknown action")


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _staff_of(consortium_id: int, value: str) -> StaffProfile | None:
    """A staff member by username, or by 'username' at the start of 'username (Library)' from the picker."""
    username = value.split(" (", 1)[0].strip()
    return (StaffProfile.objects.select_related("library", "user")
            .filter(library__consortium_id=consortium_id, is_active=True)
            .filter(Q(user__username=username)).first())


@require_http_methods(["GET", "POST"])
def my_rota(request: HttpRequest) -> HttpResponse:
    """Any librarian: my shifts for the next weeks, swaps to offer and take, my calendar address."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    profile = access.staff_of(request.user)
    if profile is None:
        return render(request, "coordination/forbidden.html", {"detail": "this account has no staff profile"},
                      status=403)
    now = timezone.now()
    if request.method == "POST":
        try:
            _my_rota_action(request, profile, now)
        except rota.RotaError as e:
            messages.error(request, e.detail)
        return redirect("coordination-my-rota")
    consortium = profile.library.consortium
    upcoming = rota.librarian_occurrences(profile, now, now + dt.timedelta(weeks=4))
    names = dict(Queue.objects.filter(consortium=consortium).values_list("slug", "name"))
    offered = {(s.shift_id, s.date): s for s in profile.swaps_offered.filter(status="open")}
    shifts = [{"occurrence": o, "queue": names.get(o.queue, o.queue), "swap": offered.get(o.key)} for o in upcoming]
    swaps = [s for s in rota.open_swaps(consortium, now) if s.offered_by_id != profile.pk]
    feed = request.build_absolute_uri(reverse("coordination-feed", args=[rota.feed_token(profile)]))
    return render(request, "coordination/my_rota.html", {
        "profile": profile, "consortium": consortium, "section": "my-rota", "shifts": shifts, "swaps": swaps,
        "feed": feed, "is_coordinator": profile.role == StaffProfile.Role.COORDINATOR,
        "zone": ZoneInfo(consortium.timezone),
    })


def _my_rota_action(request: HttpRequest, profile: StaffProfile, now: dt.datetime) -> None:
    action = request.POST.get("action", "")
    if action == "offer":
        shift = get_object_or_404(Shift.objects.select_related("queue"), pk=_int(request.POST.get("shift")),
                                  queue__consortium_id=profile.library.consortium_id)
        try:
            day = dt.date.fromisoformat(request.POST.get("date", ""))
        except ValueError as e:
            raise rota.RotaError("that is not a date") from e
        rota.swap_offer(shift, day, profile, now, note=request.POST.get("note", ""))
        messages.success(request, "Your shift is offered to colleagues; you are on it until someone takes it.")
    elif action == "take":
        swap = rota.swap_take(_int(request.POST.get("swap")), profile, now)
        messages.success(request, f"You took the {swap.shift.queue.name} shift of {swap.date:%A %d %B}.")
    elif action == "withdraw":
        rota.swap_withdraw(_int(request.POST.get("swap")), profile)
        messages.success(request, "Offer withdrawn.")
    elif action == "reset_feed":
        rota.feed_token_reset(profile)
        messages.success(request, "Your calendar has a new address; the old one no longer works.")
    else:
        raise rota.RotaError("unknown action")


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


# --- coverage ---------------------------------------------------------------------------------------------


@require_GET
@coordinator_page
def coverage_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    weeks = _int(request.GET.get("weeks")) or 4
    found = coverage.coverage(who.consortium, timezone.now(), weeks)
    grids = []
    for queue_coverage in found.queues:
        rows = [(DAY_NAMES[d][:3], [(cell, int(charts.level(cell.demand, found.peak_demand)))
                                    for cell in queue_coverage.row(d)]) for d in range(7)]
        grids.append((queue_coverage, rows))
    return render(request, "coordination/coverage.html", _context(
        who, "coverage", coverage=found, grids=grids, hours=[f"{h:02d}" for h in range(24)],
        weeks_choices=(1, 2, 4, 8, 12, 26)))


# --- statistics -------------------------------------------------------------------------------------------

CSV_TABLES = ("libraries", "matrix", "balance", "hours", "surveys", "read", "subjects", "who")


@require_GET
@coordinator_page
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
    return render(request, "coordination/statistics.html", _context(
        who, "statistics", report=found, form=form, period=period, library=library,
        libraries=Library.objects.filter(consortium=consortium).order_by("name"),
        matrix_rows=_matrix_rows(found.matrix), charts=_charts(found),
        query=request.GET.urlencode() if request.GET else "", tables=CSV_TABLES, days=DAY_NAMES))


MATRIX_TABLE_LIMIT = 30  # more answering libraries than this: the CSV, not a table on the page


def _matrix_rows(matrix: statistics.Matrix) -> dict[str, Any]:
    columns = matrix.columns()
    if len(columns) > MATRIX_TABLE_LIMIT:
        return {"columns": columns, "rows": [], "totals": []}
    rows = [((matrix.libraries[h].name if h is not None else "no home library"),
             [matrix.get(h, c) for c in columns], matrix.row_total(h), h) for h in matrix.rows()]
    return {"columns": [matrix.libraries[c].name for c in columns], "rows": rows,
            "totals": [matrix.column_total(c) for c in columns]}


def _charts(found: statistics.Report) -> dict[str, Any]:
    o = found.outcomes
    out = {
        "outcomes": charts.bar_chart([("answered", o.answered), ("abandoned", o.abandoned),
                                      ("unstaffed", o.unstaffed),
                                      ("other unanswered", o.unanswered - o.abandoned - o.unstaffed)],
                                     label="Chats by outcome"),
        "hours": charts.week_heat(found.hours, label="Chats by hour of the week"),
        "surveys": charts.bar_chart([(f"{r} ★", n) for r, n in found.surveys.ratings.items()],
                                    label="Survey ratings"),
        "read": charts.bar_chart([(f"READ {lvl}" if lvl else "not classified", n) for lvl, n in found.read.items()],
                                 label="READ scale"),
        "subjects": charts.bar_chart(found.subjects[:15], label="Subjects"),
        "balance": charts.bar_chart(sorted(((b.library.name, b.net) for b in found.balances if b.net > 0),
                                           key=lambda x: -x[1])[:15], label="Libraries answering most for others"),
    }
    if found.who_answered is not None:
        w = found.who_answered
        out["who"] = charts.bar_chart([("own staff", w.own), *((p.name, n) for p, n in w.partners),
                                       ("rest of the consortium", w.consortium), ("not answered", w.unanswered)],
                                      label=f"Who answered {w.library.name}'s patrons")
    return out


def _csv(found: statistics.Report, table: str) -> HttpResponse:
    period = f"{found.period.first.isoformat()}_{found.period.last.isoformat()}"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{found.consortium.slug}-{table}-{period}.csv"'
    writer = csv.writer(response)
    for row in statistics_rows(found, table):
        writer.writerow(row)
    return response


def statistics_rows(found: statistics.Report, table: str) -> list[list[Any]]:
    """The rows of one CSV table (a header first), the same figures as the page shows."""
    def seconds(value: float | None) -> Any:
        return "" if value is None else round(value, 1)

    if table == "libraries":
        return [["library", "chats", "answered", "abandoned", "unstaffed", "wait_p50_s", "wait_p90_s"],
                *([lib.slug, o.total, o.answered, o.abandoned, o.unstaffed, seconds(w.p50), seconds(w.p90)]
                  for lib, o, w in found.per_library)]
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
