"""Follow-through figures (issue 17): follow-ups' time to answer and deadlines kept, overdue
follow-ups by library, and the way home (hand-backs offered and taken).

A follow-up belongs to a period by when it was left (`Ticket.created_at`), as a chat does by its
arrival; to a library by its home library (`Ticket.library`, none: the consortium's). Hand-backs
are counted from the chats' trace (routing.services.handbacks writes "handback_offered" once per
hold, the transfer "handed_back"), per chat of the period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from consortium.models import Consortium
from coordination.statistics import Period, percentile
from libraries.models import Library
from routing.models import Chat, Ticket, TraceEvent

OPEN = (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS)


@dataclass(frozen=True)
class FollowupFigures:
    left: int
    answered: int
    in_time: int  # answered by the due time
    overdue_open: int  # still open and past due now
    p50_hours: float | None  # time to answer, over answered ones
    p90_hours: float | None


def followups_in(consortium: Consortium, period: Period, library: Library | None = None) -> QuerySet[Ticket]:
    rows = Ticket.objects.filter(consortium=consortium, created_at__gte=period.start, created_at__lt=period.end)
    return rows.filter(library=library) if library is not None else rows


def followup_figures(tickets: QuerySet[Ticket], now: datetime) -> FollowupFigures:
    answered: list[tuple[datetime, datetime, datetime | None]] = [
        (made, done, due) for made, done, due in tickets.filter(status=Ticket.Status.ANSWERED)
        .values_list("created_at", "answered_at", "due_at") if done is not None]
    hours = sorted((done - made).total_seconds() / 3600 for made, done, _ in answered)
    return FollowupFigures(
        left=tickets.count(), answered=len(answered),
        in_time=len([1 for _, done, due in answered if due is None or done <= due]),
        overdue_open=tickets.filter(status__in=OPEN, due_at__lt=now).count(),
        p50_hours=percentile(hours, 0.5), p90_hours=percentile(hours, 0.9))


@dataclass(frozen=True)
class OverdueRow:
    ticket: Ticket
    hours_late: float


def overdue_by_library(consortium: Consortium, now: datetime) -> list[tuple[str, list[OverdueRow]]]:
    """Open follow-ups past due, grouped by home library (the consortium's own last), latest first within."""
    grouped: dict[str, list[OverdueRow]] = defaultdict(list)
    rows = (Ticket.objects.filter(consortium=consortium, status__in=OPEN, due_at__lt=now)
            .select_related("library", "claimed_by__user").order_by("due_at"))
    for ticket in rows:
        assert ticket.due_at is not None
        name = ticket.library.name if ticket.library else f"{consortium.name} (no library)"
        grouped[name].append(OverdueRow(ticket, (now - ticket.due_at).total_seconds() / 3600))
    return sorted(grouped.items(), key=lambda item: (item[0].endswith("(no library)"), item[0]))


@dataclass(frozen=True)
class Handbacks:
    offered: int  # chats whose holder was offered a hand-back
    taken: int  # chats handed back


def handbacks(chats: QuerySet[Chat]) -> Handbacks:
    counted = TraceEvent.objects.filter(chat__in=chats.values("pk"))
    return Handbacks(
        offered=counted.filter(kind="handback_offered").values("chat_id").distinct().count(),
        taken=counted.filter(kind="handed_back").values("chat_id").distinct().count())
