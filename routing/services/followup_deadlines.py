"""Follow-ups' deadlines: the due time given when a follow-up is made, the patron's own deadline,
and the sweep (Celery beat, every few minutes) that reminds a library's list before it is due and
moves it on to the partners and the consortium past due (routing.followup_clock decides).

Lock order: one ticket at a time, by primary key; nothing else is locked meanwhile.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _

from consortium.models import Consortium
from libraries.models import Library, LibraryPartner
from routing import followup_clock
from routing.models import Ticket
from routing.services.common import Refused

# A patron's deadline is a day: today at the earliest, at most this many days on.
PATRON_DEADLINE_MAX_DAYS = 90


def patron_deadline_parse(raw: str, *, consortium: Consortium, library: Library | None, now: datetime
                          ) -> datetime | None:
    """The patron's "answer me by" day as an instant: the end of that day where the library is (or the
    consortium, without one). Refused with a clear reason for a day that is not one, past, or too far."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise Refused("invalid", _("The deadline is not a date."),
                      {"deadline": [_("Give a date as YYYY-MM-DD.")]}) from None
    zone = ZoneInfo(library.timezone if library else consortium.timezone)
    today = now.astimezone(zone).date()
    if day < today:
        raise Refused("invalid", _("The deadline has passed."),
                      {"deadline": [_("Choose today or a later day.")]})
    if day > today + timedelta(days=PATRON_DEADLINE_MAX_DAYS):
        raise Refused("invalid", _("The deadline is too far away."),
                      {"deadline": [_("Choose a day within %(days)d days.") % {"days": PATRON_DEADLINE_MAX_DAYS}]})
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _has_partners(library: Library | None) -> bool:
    return library is not None and LibraryPartner.objects.filter(library=library, partner__is_active=True).exists()


def _rules(consortium: Consortium) -> followup_clock.Rules:
    return followup_clock.Rules(reminder_hours=consortium.followup_reminder_hours,
                                partner_hours=consortium.followup_partner_hours)


def _view(ticket: Ticket, has_partners: bool) -> followup_clock.Followup:
    assert ticket.due_at is not None
    return followup_clock.Followup(
        due_at=ticket.due_at, stage=ticket.stage, reminded=ticket.reminded_at is not None,
        has_partners=has_partners,
        open=ticket.status in (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS))


def followup_due_set(ticket: Ticket, *, now: datetime, patron_deadline: datetime | None) -> None:
    """Give a follow-up being made its due time and first check (the caller saves it)."""
    consortium, library = ticket.consortium, ticket.library
    due = followup_clock.due_time(now, consortium_hours=consortium.followup_due_hours,
                                  library_hours=library.followup_due_hours if library else None,
                                  patron_deadline=patron_deadline)
    ticket.due_at = due.at
    ticket.due_from = due.source
    # A follow-up of no library is on the consortium's list from the start.
    ticket.stage = followup_clock.LIBRARY if library is not None else followup_clock.CONSORTIUM
    ticket.history = [{"at": now.isoformat(), "kind": "due", "due_at": due.at.isoformat(), "from": due.source}]
    ticket.next_check_at = followup_clock.next_check(_view(ticket, _has_partners(library)), _rules(consortium))


def followup_settled(ticket: Ticket) -> None:
    """Answered or closed: the sweep has nothing more to do with it (the caller saves next_check_at)."""
    ticket.next_check_at = None


def followups_sweep(now: datetime, *, limit: int = 200) -> int:
    """Every follow-up whose next check has come: remind or move it on, record it, mail the list.
    Returns the moves made. Safe to run in several workers at once: each ticket is taken under its
    lock and looked at again there, so a move made by another run is not made twice."""
    moved = 0
    due_ids = list(Ticket.objects.filter(next_check_at__lte=now).order_by("pk").values_list("pk", flat=True)[:limit])
    for ticket_id in due_ids:
        moved += _sweep_one(ticket_id, now)
    return moved


def _sweep_one(ticket_id: str, now: datetime) -> int:
    from routing.tasks import mail_followup_due  # tasks import services: keep the import graph one-way

    moved = 0
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("consortium", "library")
                  .filter(pk=ticket_id, next_check_at__lte=now).first())
        if ticket is None or ticket.due_at is None:
            return 0
        rules, has_partners = _rules(ticket.consortium), _has_partners(ticket.library)
        while (move := followup_clock.next_move(_view(ticket, has_partners), now, rules)) is not None:
            entry: dict[str, object] = {"at": now.isoformat(), "kind": move.kind, "reason": move.reason}
            if move.kind == "remind":
                ticket.reminded_at = now
            else:
                entry["from"], entry["to"] = ticket.stage, move.stage
                ticket.stage = move.stage
            ticket.history = [*ticket.history, entry]
            transaction.on_commit(partial(mail_followup_due.delay, ticket_id, move.kind, move.stage))
            moved += 1
        ticket.next_check_at = followup_clock.next_check(_view(ticket, has_partners), rules)
        ticket.save(update_fields=["reminded_at", "stage", "history", "next_check_at"])
    return moved
