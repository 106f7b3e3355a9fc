"""What needs a coordinator now: each condition of docs/coordinators.md ("Alerts") as one small read.

Each function takes the consortium, its alert settings and the instant, reads the tables and returns
the conditions that hold, each with a stable key (the same condition has the same key from one run
to the next: the throttle and the "for N minutes" count hang on it), the figures its text needs, the
page where a coordinator fixes it, and how long it must hold before it is raised. Nothing here
writes; alerts.evaluate keeps the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.urls import reverse

from alerts.models import Alert
from consortium.models import AlertSettings, Consortium
from libraries import rota
from libraries.models import Library, Queue, StaffProfile
from routing.models import Chat, ChatState, Ticket
from routing.selectors import present_librarians, situation_for
from routing.staff.selectors import policy_is_stale

# The window over which the share of chats ending unstaffed is counted.
RATE_WINDOW = timedelta(hours=1)
OPEN_FOLLOWUP = (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS)


@dataclass(frozen=True)
class Condition:
    kind: Alert.Kind
    key: str
    detail: dict[str, Any]
    link: str
    # Raised only once it has held this long (seen by consecutive runs); zero: at once.
    after: timedelta = field(default=timedelta(0))


def local_time(consortium: Consortium, at: datetime) -> str:
    """An instant as the consortium's coordinators read it, HH:MM in its time zone."""
    return at.astimezone(ZoneInfo(consortium.timezone)).strftime("%H:%M")


def queues_unstaffed(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    """Queues open by their hours with nobody available to take their chats (on a rota-driven queue,
    nobody present on shift): the router's own view of the situation, so the alert says what routing sees."""
    situation = situation_for(consortium, now)
    queues = {q.slug: q for q in Queue.objects.filter(consortium=consortium, is_active=True,
                                                     slug__in=situation.open_queues)}
    found = []
    for slug in sorted(situation.open_queues):
        queue = queues.get(slug)
        if queue is None:
            continue
        present = situation.present.get(slug, ())
        available = [p for p in present if slug not in situation.rota_driven or slug in p.on_shift]
        if available:
            continue
        if queue.rota_driven:
            link = reverse("coordination-rota", args=[consortium.slug])
        else:
            link = reverse("coordination-hours-edit", args=[consortium.slug, slug])
        found.append(Condition(Alert.Kind.QUEUE_UNSTAFFED, f"queue:{slug}", {"queue": queue.name}, link,
                               after=timedelta(minutes=settings.queue_unstaffed_minutes)))
    return found


def unstaffed_rate(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    """The share of the chats that ended in the last hour which ended unstaffed (nobody could take
    them when they arrived), when it reaches the consortium's percentage and count."""
    ended = Chat.objects.filter(consortium=consortium, ended_at__gt=now - RATE_WINDOW, ended_at__lte=now)
    total = ended.count()
    unstaffed = ended.filter(state=ChatState.UNSTAFFED).count()
    if not total or unstaffed < settings.unstaffed_min_chats or unstaffed * 100 < settings.unstaffed_percent * total:
        return []
    return [Condition(Alert.Kind.UNSTAFFED_RATE, "unstaffed-rate",
                      {"unstaffed": unstaffed, "total": total, "percent": round(unstaffed * 100 / total)},
                      reverse("coordination-coverage", args=[consortium.slug]))]


def shifts_absent(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    """Librarians on a rota shift going on now who are not present `shift_absent_minutes` after it started."""
    queues = list(Queue.objects.filter(consortium=consortium, is_active=True, kind=Queue.Kind.SHARED))
    current = rota.occurrences_at(rota.shifts_of(queues), now)
    late = [o for o in current if now - o.start >= timedelta(minutes=settings.shift_absent_minutes)]
    if not late:
        return []
    crews = rota.crews(late)
    present = {p.pk for p in present_librarians(consortium)}
    wanted = {pk for o in late for pk in crews.get(o.key, frozenset())} - present
    people = {p.pk: p for p in StaffProfile.objects.filter(pk__in=wanted, is_active=True)
              .select_related("user", "library")}
    names = {q.slug: q.name for q in queues}
    link = reverse("coordination-rota", args=[consortium.slug])
    found = []
    for occurrence in late:
        for pk in sorted(crews.get(occurrence.key, frozenset()) & people.keys()):
            found.append(Condition(
                Alert.Kind.SHIFT_ABSENT, f"shift:{occurrence.shift_id}:{occurrence.day.isoformat()}:{pk}",
                {"librarian": people[pk].display_name, "library": people[pk].library.name,
                 "queue": names.get(occurrence.queue, occurrence.queue),
                 "start": local_time(consortium, occurrence.start)}, link))
    return found


def policies_stale(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    """Libraries whose policy page is past its review date: the consortium's `policy_review_limit_days`,
    the same rule as the console's warning beside a chat (routing.staff.selectors.policy_is_stale)."""
    today = now.astimezone(ZoneInfo(consortium.timezone)).date()
    libraries = Library.objects.filter(consortium=consortium, is_active=True).exclude(policy="").order_by("name")
    return [Condition(Alert.Kind.POLICY_STALE, f"policy:{library.pk}",
                      {"library": library.name,
                       "reviewed_on": library.policy_reviewed_on.isoformat() if library.policy_reviewed_on else None},
                      reverse("admin:libraries_library_change", args=[library.pk]))
            for library in libraries
            if policy_is_stale(library.policy_reviewed_on, today, consortium.policy_review_limit_days)]


def overdue_followups(consortium: Consortium, settings: AlertSettings, now: datetime) -> QuerySet[Ticket]:
    """The follow-ups that are overdue: still open `followup_overdue_hours` after they were left.

    The one definition of "overdue" for the alert; when follow-ups carry a due time of their own, it
    becomes "open past its due time" here and nowhere else."""
    return Ticket.objects.filter(consortium=consortium, status__in=OPEN_FOLLOWUP,
                                 created_at__lte=now - timedelta(hours=settings.followup_overdue_hours))


def followups_overdue(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    count = overdue_followups(consortium, settings, now).count()
    if not count:
        return []
    return [Condition(Alert.Kind.FOLLOWUPS_OVERDUE, "followups-overdue",
                      {"count": count, "hours": settings.followup_overdue_hours}, reverse("staff-tickets"))]


CHECKS = (queues_unstaffed, unstaffed_rate, shifts_absent, policies_stale, followups_overdue)


def conditions_now(consortium: Consortium, settings: AlertSettings, now: datetime) -> list[Condition]:
    """Every condition that holds at `now`, in the order of CHECKS."""
    return [condition for check in CHECKS for condition in check(consortium, settings, now)]
