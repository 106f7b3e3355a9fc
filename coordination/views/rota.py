"""The consortium's rota, for its coordinators: weekly shifts of the shared queues, who is on them,
rota-driven queues, libraries' weekly targets, and the swaps librarians offer.

Changes go through libraries.rota; a librarian's own rota is coordination.views.my_rota.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from coordination.access import Coordinator
from coordination.forecast import HourForecast, QueueForecast, forecast, shift_hours
from coordination.forms import ShiftForm
from coordination.views._page import DAY_NAMES, context, int_param, staff_page
from coordination.views.coverage import seconds_text
from libraries import rota
from libraries.hours import format_interval
from libraries.models import Library, Queue, Shift, StaffProfile


@require_http_methods(["GET", "POST"])
@staff_page("coordinator")
def rota_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    now = timezone.now()
    shift_form = ShiftForm()
    status = 200
    predicted = {q.queue.slug: q for q in forecast(consortium, now).queues}
    preview = None
    if request.method == "POST" and request.POST.get("action") == "shift_preview":
        shift_form, preview = _shift_preview(request, predicted)
        status = 200 if preview else 400
    elif request.method == "POST":
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
    return render(request, "coordination/rota.html", context(
        who, "rota", week=[(q, [(s, DAY_NAMES[s.weekday], format_interval(s.start_minute, s.end_minute),
                                 _outlook(predicted.get(q.slug), s)) for s in shifts]) for q, shifts in week.items()],
        preview=preview,
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
        messages.success(request, _("Shift added."))
        return ShiftForm(), True
    if action == "shift_delete":
        rota.shift_delete(get_object_or_404(shifts, pk=int_param(request.POST.get("shift"))), now)
        messages.success(request, _("Shift removed."))
        return ShiftForm(), True
    if action in ("assign", "unassign"):
        shift = get_object_or_404(shifts, pk=int_param(request.POST.get("shift")))
        librarian = _staff_of(consortium.pk, request.POST.get("librarian", ""))
        if librarian is None:
            raise rota.RotaError(gettext_lazy("pick a librarian of the consortium"))
        if action == "assign":
            rota.shift_assign(shift, librarian, now)
            messages.success(request, _("%(name)s is on %(shift)s every week.") % {
                "name": librarian.display_name, "shift": shift})
        else:
            rota.shift_unassign(shift, librarian, now)
            messages.success(request, _("%(name)s is off %(shift)s.") % {
                "name": librarian.display_name, "shift": shift})
        return ShiftForm(), True
    if action == "rota_driven":
        queue = get_object_or_404(queues, slug=request.POST.get("queue", ""))
        rota.queue_rota_driven_set(queue, request.POST.get("value") == "on", now)
        messages.success(request, (_("%(queue)s is now rota-driven.") if queue.rota_driven
                                  else _("%(queue)s is no longer rota-driven.")) % {"queue": queue.name})
        return ShiftForm(), True
    if action == "target":
        library = get_object_or_404(Library, consortium=consortium, slug=request.POST.get("library", ""))
        raw = request.POST.get("hours", "").strip()
        if raw and not raw.isdigit():
            raise rota.RotaError(gettext_lazy("a weekly target is a whole number of hours, at most 168"))
        rota.library_target_set(library, int(raw) if raw else None)
        return ShiftForm(), True
    if action == "swap_withdraw" and who.profile is not None:
        rota.swap_withdraw(int_param(request.POST.get("swap")), who.profile, as_coordinator=True)
        return ShiftForm(), True
    raise rota.RotaError(gettext_lazy("unknown action"))


def _staff_of(consortium_id: int, value: str) -> StaffProfile | None:
    """A staff member by username, or by 'username' at the start of 'username (Library)' from the picker."""
    username = value.split(" (", 1)[0].strip()
    return (StaffProfile.objects.select_related("library", "user")
            .filter(library__consortium_id=consortium_id, is_active=True)
            .filter(Q(user__username=username)).first())


# --- the staffing forecast beside the rota: what each shift is worth, and "what if" ---------------------------


@dataclass(frozen=True)
class Outlook:
    """The worst hour of a shift as the forecast sees it: as it is, without the shift, with one more."""

    now: str
    without: str
    one_more: str


def outlook_text(hour: HourForecast | None) -> str:
    """An hour as the forecast sees it, in the active language (the coordinator's)."""
    if hour is None or not hour.open:
        return _("closed")
    p = hour.prediction
    if p is None or p.model == "idle":
        return _("no chats expected")
    if not p.staffed:
        return _("nobody to answer %(chats).1f chats") % {"chats": hour.arrivals}
    return _("%(level).0f%% within 60 s, 9 in 10 wait under %(p90)s") % {
        "level": p.service_level * 100, "p90": seconds_text(p.wait_p90)}


def _outlook(found: QueueForecast | None, shift: Shift) -> Outlook | None:
    if found is None:
        return None
    hours = shift_hours(shift.weekday, shift.start_minute, shift.end_minute)
    crew = len(shift.assignments.all())
    without = found.what_if(dict.fromkeys(hours, -crew)) if crew else found
    return Outlook(outlook_text(found.worst(hours)), outlook_text(without.worst(hours)),
                   outlook_text(found.what_if(dict.fromkeys(hours, 1)).worst(hours)))


@dataclass(frozen=True)
class Preview:
    queue: Queue
    day: str
    hours: str
    librarians: int
    before: list[tuple[str, str, str]]  # (hour, as it is, with the shift)


def _shift_preview(request: HttpRequest, predicted: dict[str, QueueForecast]) -> tuple[ShiftForm, Preview | None]:
    """What a shift would change before it is added: nothing is saved."""
    form = ShiftForm(request.POST)
    found = predicted.get(request.POST.get("queue", ""))
    if found is None or not form.is_valid():
        return form, None
    start, end = form.cleaned_data["hours"]
    weekday, n = form.cleaned_data["weekday"], form.cleaned_data["min_librarians"]
    hours = shift_hours(weekday, start, end)
    after = found.what_if(dict.fromkeys(hours, n))
    rows = [(f"{h:02d}:00", outlook_text(found.hours.get((d, h))), outlook_text(after.hours.get((d, h))))
            for d, h in hours]
    return form, Preview(found.queue, str(DAY_NAMES[weekday]), format_interval(start, end), n, rows)


@require_POST
@staff_page("coordinator")
def rota_what_if(request: HttpRequest, who: Coordinator) -> HttpResponse:
    """The "What if?" of the rota page as JSON, for its script (coordination/static/coordination/what_if.js)
    to redraw the forecast as the coordinator edits a shift, without a reload. The same form fields and
    the same computation as the page's own What if? (which still works without JavaScript); a POST
    with the page's CSRF token, since it reads the form as the page does. Nothing is saved."""
    predicted = {q.queue.slug: q for q in forecast(who.consortium, timezone.now()).queues}
    form, preview = _shift_preview(request, predicted)
    if preview is None:
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        return JsonResponse({"errors": errors or [_("Choose a shared queue of this consortium.")]}, status=400)
    # The page's sentence (the same catalogue entry), as plain text: the script writes it with textContent.
    summary = ngettext(
        "<strong>What if</strong> %(librarians)s librarian worked %(day)s %(hours)s? Nothing is saved until "
        "you add the shift.",
        "<strong>What if</strong> %(librarians)s librarians worked %(day)s %(hours)s? Nothing is saved until "
        "you add the shift.", preview.librarians) % {
        "librarians": preview.librarians, "day": preview.day, "hours": preview.hours}
    return JsonResponse({
        "queue": preview.queue.slug, "summary": strip_tags(summary),
        "columns": [_("Hour"), _("As the rota is"), _("With this shift")],
        "rows": [{"hour": hour, "before": before, "after": after} for hour, before, after in preview.before],
    })
