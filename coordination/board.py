"""The live board: the state of a consortium's service right now, as one JSON-ready snapshot.

Who is present (by library and by queue), the chats waiting (their wait and step) and in progress,
today's chats by outcome (routing/outcomes.py), and alerts: a librarian on a rota shift who has not been
present for `ABSENT_AFTER`, and a shift going on with fewer librarians present than its minimum; and
`raised`, the alerts to coordinators in force (alerts/: each with the page that fixes it).

The snapshot is read from the database, so every web process shows the same board, and it is a
bounded number of queries whatever the size of the consortium (lists are capped at `LIMIT`). The
coordinator socket sends it again whenever it changes (coordination/consumers.py).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.evaluate import raised_alerts
from alerts.text import alert_text, fix_label
from consortium.models import Consortium
from libraries import rota
from libraries.hours import is_open, schedule_for
from libraries.models import Queue, StaffProfile
from routing import outcomes
from routing.models import Chat, ChatState, LibrarianPresence
from routing.plan import plan_from_json
from routing.router import audience
from routing.selectors import present_librarians

ABSENT_AFTER = timedelta(minutes=5)
LIMIT = 200


def _today_counts(consortium: Consortium, now: datetime) -> dict[str, Any]:
    zone = ZoneInfo(consortium.timezone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    # By outcome (routing/outcomes.py), as the statistics page counts them: the figures add up to `arrived`.
    counts = outcomes.count(Chat.objects.filter(consortium=consortium, arrived_at__gte=start, arrived_at__lte=now))
    today_counts = counts[None]
    return {"date": today.isoformat(), "arrived": today_counts.total,
            **{outcome.value: n for outcome, n in today_counts.items()}}


def _waiting(consortium: Consortium, now: datetime) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows = (Chat.objects.filter(consortium=consortium, state=ChatState.QUEUED).select_related("home_library")
            .order_by("arrived_at")[:LIMIT])
    waiting = []
    per_queue: dict[str, int] = defaultdict(int)
    for chat in rows:
        plan = plan_from_json(chat.plan)
        step = plan[chat.step_index].name if 0 <= chat.step_index < len(plan) else None
        queues = list(audience(plan, chat.step_index)) if chat.step_index >= 0 else []
        for slug in queues:
            per_queue[slug] += 1
        waiting.append({
            "chat": chat.pk,
            "home_library": chat.home_library.name if chat.home_library else None,
            "step": step,
            "queues": queues,
            "language": chat.language or None,
            "arrived_at": chat.arrived_at.isoformat(),
            "wait_seconds": int((now - chat.arrived_at).total_seconds()),
            "max_wait_passed": chat.max_wait_passed,
        })
    return waiting, per_queue


def _active(consortium: Consortium, now: datetime) -> list[dict[str, Any]]:
    rows = (Chat.objects.filter(consortium=consortium, state=ChatState.ACTIVE)
            .select_related("home_library", "librarian__user", "librarian__library").order_by("accepted_at")[:LIMIT])
    return [{
        "chat": chat.pk,
        "home_library": chat.home_library.name if chat.home_library else None,
        "librarian": chat.librarian.display_name if chat.librarian else None,
        "library": chat.librarian.library.name if chat.librarian else None,
        "step": chat.answered_step or None,
        "partner": bool(chat.librarian and chat.home_library_id and chat.librarian.library_id != chat.home_library_id),
        "since": chat.accepted_at.isoformat() if chat.accepted_at else None,
    } for chat in rows]


def _shifts(consortium: Consortium, queues: list[Queue], present_ids: set[int],
            now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The shifts going on now with their crews, and the alerts they raise."""
    shifts = rota.shifts_of([q for q in queues if q.kind == Queue.Kind.SHARED])
    current = rota.occurrences_at(shifts, now)
    crews = rota.crews(current)
    crew_ids = {pk for crew in crews.values() for pk in crew}
    people = {p.pk: p for p in StaffProfile.objects.filter(pk__in=crew_ids).select_related("user", "library")}
    changed = dict(LibrarianPresence.objects.filter(pk__in=crew_ids).values_list("pk", "changed_at"))
    minimum = {s.id: s.min_librarians for s in shifts}
    names = {q.slug: q.name for q in queues}
    rota_driven = {q.slug for q in queues if q.rota_driven}
    going_on, alerts = [], []
    for occurrence in current:
        crew = sorted(crews.get(occurrence.key, frozenset()),
                      key=lambda pk: people[pk].display_name if pk in people else "")
        here = [pk for pk in crew if pk in present_ids]
        going_on.append({
            "queue": occurrence.queue, "queue_name": names.get(occurrence.queue, occurrence.queue),
            "start": occurrence.start.isoformat(), "end": occurrence.end.isoformat(),
            "min": minimum.get(occurrence.shift_id, 1), "present": len(here),
            "rota_driven": occurrence.queue in rota_driven,
            "crew": [{"name": people[pk].display_name, "library": people[pk].library.name, "present": pk in here}
                     for pk in crew if pk in people],
        })
        for pk in crew:
            if pk in here or pk not in people:
                continue
            # Absent since the shift started, or since they stopped being present, whichever is later.
            last_change = changed.get(pk)
            since = max(occurrence.start, last_change) if last_change else occurrence.start
            if now - since >= ABSENT_AFTER:
                alerts.append({"kind": "absent", "librarian": people[pk].display_name,
                               "library": people[pk].library.name, "queue": names.get(occurrence.queue),
                               "since": since.isoformat(), "minutes": int((now - since).total_seconds() // 60)})
        if len(here) < minimum.get(occurrence.shift_id, 1) and now - occurrence.start >= ABSENT_AFTER:
            alerts.append({"kind": "understaffed", "queue": names.get(occurrence.queue), "present": len(here),
                           "min": minimum.get(occurrence.shift_id, 1)})
    return going_on, alerts


def _raised(consortium: Consortium) -> list[dict[str, Any]]:
    """The alerts raised by the last evaluation (alerts.evaluate), in the reader's language, each with
    the page that fixes it."""
    return [{"kind": alert.kind, "key": alert.key, "text": alert_text(alert.kind, alert.detail),
             "link": alert.link, "fix": fix_label(alert.kind), "since": alert.raised_at.isoformat()}
            for alert in raised_alerts(consortium) if alert.raised_at is not None]


def board_snapshot(consortium: Consortium, now: datetime) -> dict[str, Any]:
    queues = list(Queue.objects.filter(consortium=consortium, is_active=True).select_related("library")
                  .prefetch_related("weekly", "closures", "special_hours").order_by("-kind", "position", "name"))
    present = sorted(present_librarians(consortium), key=lambda p: (p.library.name, p.display_name))
    present_ids = {p.pk for p in present}
    on_shift = rota.on_shift(present_ids, [q for q in queues if q.rota_driven], now)
    by_library: dict[int, dict[str, Any]] = {}
    per_queue_present: dict[str, int] = defaultdict(int)
    for profile in present:
        served = [profile.library.slug, *(q.slug for q in profile.queues.all()),
                  *sorted(on_shift.get(profile.pk, frozenset()))]
        served = list(dict.fromkeys(served))
        for slug in served:
            per_queue_present[slug] += 1
        entry = by_library.setdefault(profile.library_id, {"slug": profile.library.slug,
                                                           "name": profile.library.name, "present": []})
        capacity = profile.capacity if profile.capacity is not None else consortium.librarian_capacity
        entry["present"].append({"name": profile.display_name, "active": getattr(profile, "active_count", 0),
                                 "capacity": capacity, "queues": served})
    waiting, waiting_per_queue = _waiting(consortium, now)
    going_on, alerts = _shifts(consortium, queues, present_ids, now)
    queue_rows = [{
        "slug": q.slug, "name": q.name, "kind": q.kind, "open": is_open(schedule_for(q), now),
        "rota_driven": q.rota_driven, "present": per_queue_present.get(q.slug, 0),
        "waiting": waiting_per_queue.get(q.slug, 0),
    } for q in queues]
    # Shared queues always; a library's own queue when something is happening in it.
    queue_rows = [r for r in queue_rows if r["kind"] == Queue.Kind.SHARED or r["present"] or r["waiting"]]
    return {
        "type": "board",
        "consortium": {"slug": consortium.slug, "name": consortium.name, "timezone": consortium.timezone},
        "at": now.isoformat(),
        "queues": queue_rows,
        "libraries": list(by_library.values()),
        "present_count": len(present),
        "waiting": waiting,
        "active": _active(consortium, now),
        "today": _today_counts(consortium, now),
        "shifts": going_on,
        "alerts": alerts,
        "raised": _raised(consortium),
    }


def without_clock(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot minus what changes every second by itself (the browser counts waits up on its own),
    to tell whether anything happened since the last one sent."""
    return {**snapshot, "at": None, "waiting": [{**w, "wait_seconds": None} for w in snapshot["waiting"]],
            "alerts": [{**a, "minutes": None} for a in snapshot["alerts"]]}
