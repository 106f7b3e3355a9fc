"""Export a consortium in the consortium file's canonical form (import -> export -> import changes nothing)."""

from __future__ import annotations

from typing import Any

from consortium.models import ALERT_DEFAULTS, SETTING_DEFAULTS, AlertSettings, Consortium
from libraries.consortium_file.schema import WEEKDAYS, Doc, closure_doc, put_optional
from libraries.hours import format_interval
from libraries.models import OfferMode, Queue, StaffProfile


def export(consortium: Consortium) -> Doc:
    """The consortium's active libraries, shared queues and staff, in the canonical file form."""
    settings = {key: consortium.setting(key) for key in SETTING_DEFAULTS}
    shared = list(consortium.queues.filter(kind=Queue.Kind.SHARED, is_active=True)
                  .order_by("position", "slug").prefetch_related("weekly", "closures", "special_hours"))
    positions = {q.pk: i for i, q in enumerate(shared)}
    libraries = list(consortium.libraries.filter(is_active=True).order_by("slug")
                     .select_related("consortium_queue")
                     .prefetch_related("partner_links__partner"))
    local = {q.library_id: q for q in Queue.objects.filter(library__in=libraries)
             .prefetch_related("weekly", "closures", "special_hours")}
    active_slugs = {lib.slug for lib in libraries}

    queues_out = []
    for q in shared:
        doc: Doc = {"slug": q.slug, "name": q.name, "mode": q.mode, "timezone": q.timezone,
                    "languages": list(q.languages or [])}
        doc.update(_export_hours(q))
        queues_out.append(doc)

    libraries_out = []
    for lib in libraries:
        queue = local.get(lib.pk)
        doc = {"slug": lib.slug, "name": lib.name, "kind": lib.kind, "timezone": lib.timezone}
        put_optional(doc, "city", lib.city)
        doc["zip_codes"] = list(lib.zip_codes or [])
        links = sorted(lib.partner_links.all(), key=lambda k: k.position)
        doc["partners"] = [link.partner.slug for link in links if link.partner.slug in active_slugs]
        if lib.consortium_queue and lib.consortium_queue.is_active:
            doc["fallback"] = lib.consortium_queue.slug  # the file's name for the consortium step's queue
        doc["mode"] = queue.mode if queue else OfferMode.BROADCAST.value
        put_optional(doc, "local_timeout", lib.local_timeout)
        put_optional(doc, "partner_timeout", lib.partner_timeout)
        put_optional(doc, "transcript_retention_days", lib.transcript_retention_days)
        put_optional(doc, "followup_due_hours", lib.followup_due_hours)
        doc.update(_export_hours(queue) if queue else {"hours": {}})
        put_optional(doc, "policy", lib.policy)
        put_optional(doc, "policy_reviewed", lib.policy_reviewed_on)
        put_optional(doc, "website", lib.website)
        put_optional(doc, "key_links", list(lib.key_links or []))
        if lib.route is not None:
            doc["route"] = [_route_step(s) for s in lib.route]
        put_optional(doc, "sms_number", lib.sms_number)
        put_optional(doc, "sms_keyword", lib.sms_keyword)
        libraries_out.append(doc)

    staff = (StaffProfile.objects.filter(library__in=libraries, is_active=True, user__is_active=True)
             .select_related("user", "library").prefetch_related("queues"))
    staff_out = []
    for p in sorted(staff, key=lambda p: (p.library.slug, p.user.username)):
        doc = {"username": p.user.username}
        put_optional(doc, "name", p.user.get_full_name())
        put_optional(doc, "email", p.user.email)
        doc["library"] = p.library.slug
        doc["role"] = p.role
        served = sorted((q for q in p.queues.all() if q.pk in positions), key=lambda q: positions[q.pk])
        doc["queues"] = [q.slug for q in served]
        put_optional(doc, "capacity", p.capacity)
        doc["languages"] = list(p.languages or [])
        staff_out.append(doc)

    head: Doc = {"slug": consortium.slug, "name": consortium.name, "timezone": consortium.timezone,
                 "allowed_origins": list(consortium.allowed_origins or []), "settings": settings,
                 "colors": {"accent": consortium.accent_color.lower(),
                            "accent_text": consortium.accent_text_color.lower()}}
    put_optional(head, "sms_number", consortium.sms_number)
    put_optional(head, "sms_help", consortium.sms_help)
    alerts = AlertSettings.objects.filter(consortium=consortium).first()
    if alerts is not None:
        head["alerts"] = {key: getattr(alerts, key) for key in ALERT_DEFAULTS}
    return {
        "consortium": head,
        "queues": queues_out,
        "libraries": libraries_out,
        "staff": staff_out,
    }


def _export_hours(queue: Queue) -> Doc:
    out: Doc = {}
    if queue.always_open:
        out["hours"] = "always"
    else:
        week: dict[str, list[str]] = {}
        for w in sorted(queue.weekly.all(), key=lambda w: (w.weekday, w.start_minute)):
            week.setdefault(WEEKDAYS[w.weekday], []).append(format_interval(w.start_minute, w.end_minute))
        out["hours"] = week
    closures = sorted(queue.closures.all(), key=lambda c: (c.start_date, c.end_date, c.reason))
    put_optional(out, "closures", [closure_doc(c.start_date, c.end_date, c.reason) for c in closures])
    special = []
    for s in sorted(queue.special_hours.all(), key=lambda s: s.date):
        entry: Doc = {"date": s.date, "hours": [format_interval(a, b) for a, b in s.intervals]}
        put_optional(entry, "reason", s.reason)
        special.append(entry)
    put_optional(out, "special_hours", special)
    return out


def _route_step(step: dict[str, Any]) -> dict[str, Any]:
    out = {"name": step["name"], "queues": list(step.get("queues") or [])}
    if step.get("wait") is not None:
        out["wait"] = step["wait"]
    return out

