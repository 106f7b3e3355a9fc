"""Opening hours: the grid of every queue's week, one queue's editor (weekly hours, closures, special
days, an iCalendar import), and its hours as an iCalendar file.

Coordinators keep every queue's hours; a library admin their own library's local queue
(coordination.access). Changes go through libraries.services.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from coordination.forms import ClosureForm, IcsImportForm, SpecialHoursForm, WeeklyHoursForm
from coordination.views._page import DAY_NAMES, HoursKeeper, context, staff_page
from libraries import ical, services
from libraries.hours import format_interval, schedule_for
from libraries.models import Queue


def _hours_text(intervals: Any) -> str:
    return ", ".join(format_interval(s, e) for s, e in intervals)


@require_GET
@staff_page("hours")
def hours_grid(request: HttpRequest, who: HoursKeeper) -> HttpResponse:
    rows = []
    for queue in who.queues.select_related("library").prefetch_related("weekly", "closures", "special_hours") \
            .order_by("-kind", "position", "name"):
        schedule = schedule_for(queue)
        week = ["around the clock" if queue.always_open else _hours_text(schedule.weekly.get(d, ())) or "closed"
                for d in range(7)]
        today = timezone.now().date()
        upcoming = [c for c in queue.closures.all() if c.end_date >= today][:3]
        rows.append({"queue": queue, "week": week, "closures": upcoming,
                     "special": [s for s in queue.special_hours.all() if s.date >= today][:3]})
    return render(request, "coordination/hours_grid.html", context(who, "hours", rows=rows, days=DAY_NAMES))


@require_http_methods(["GET", "POST"])
@staff_page("hours")
def hours_edit(request: HttpRequest, who: HoursKeeper, queue_slug: str) -> HttpResponse:
    queue = get_object_or_404(who.queues.select_related("library"), slug=queue_slug)
    schedule = schedule_for(queue)
    initial = {"timezone": queue.timezone, "always_open": queue.always_open,
               **{day: _hours_text(schedule.weekly.get(i, ())) for i, day in enumerate(WeeklyHoursForm.DAYS)}}
    weekly_form = WeeklyHoursForm(initial=initial)
    closure_form, special_form, import_form = ClosureForm(), SpecialHoursForm(), IcsImportForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        done = _hours_action(request, who, queue, action)
        if done is None:
            return redirect("coordination-hours-edit", consortium_slug=who.consortium.slug, queue_slug=queue.slug)
        status = 400
        if isinstance(done, WeeklyHoursForm):
            weekly_form = done
        elif isinstance(done, ClosureForm):
            closure_form = done
        elif isinstance(done, SpecialHoursForm):
            special_form = done
        elif isinstance(done, IcsImportForm):
            import_form = done
    return render(request, "coordination/hours_edit.html", context(
        who, "hours", queue=queue, weekly_form=weekly_form, closure_form=closure_form, special_form=special_form,
        import_form=import_form, closures=queue.closures.order_by("start_date"),
        specials=[(s, _hours_text(s.intervals) or "closed") for s in queue.special_hours.order_by("date")],
    ), status=status)


def _hours_action(request: HttpRequest, who: HoursKeeper, queue: Queue, action: str) -> Any:
    """Apply one form of the hours page: None when done, else the form with its errors."""
    form: Any
    if action == "weekly":
        form = WeeklyHoursForm(request.POST)
        if form.is_valid():
            zone = form.cleaned_data["timezone"] if who.is_coordinator else queue.timezone
            try:
                services.queue_hours_set(queue, timezone.now(), weekly=form.weekly(),
                                         always_open=form.cleaned_data["always_open"], timezone=zone)
            except ValueError as e:
                form.add_error(None, str(e))
                return form
            messages.success(request, _("Weekly hours of %(queue)s saved.") % {"queue": queue.name})
            return None
        return form
    if action == "closure_add":
        form = ClosureForm(request.POST)
        if form.is_valid():
            services.closure_add(queue, timezone.now(), form.cleaned_data["start"], form.cleaned_data["end"],
                                 form.cleaned_data["reason"])
            messages.success(request, _("Closure added."))
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
            messages.success(request, _("Special hours saved."))
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
            messages.success(request, _("Imported: %(weekly)s weekday(s) of hours, %(closures)s closure(s), "
                                        "%(special)s special day(s).") % {
                "weekly": len(found.weekly), "closures": len(found.closures), "special": len(found.special)})
            for note in found.notes:
                messages.warning(request, note)
            return None
        return form
    messages.error(request, _("Unknown action."))
    return None


@require_GET
@staff_page("hours")
def hours_ics(request: HttpRequest, who: HoursKeeper, queue_slug: str) -> HttpResponse:
    queue = get_object_or_404(who.queues, slug=queue_slug)
    response = HttpResponse(ical.hours_calendar(queue, timezone.now(), host=request.get_host()),
                            content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{queue.slug}-hours.ics"'
    return response
