"""Returning patrons: chats of one device linked, with the patron's consent, within the retention.

A patron who ticks "remember me on this device" (off by default) starts a chat marked `remembered`,
keyed by the hash of the browser's device id (`Chat.patron_device`, routing.blocks). Only such
chats are linked; a chat started without the tick links to nothing and nothing links to it.

- The librarian sees the earlier chats of that device that they may read (`earlier_chats`: their
  own, their library's patrons', a coordinator's consortium) within the retention.
- Routing offers the chat first to the librarian who last answered that device, for a short head
  start (`head_start_plan`): a first step "returning" naming that librarian, with the consortium's
  `returning_head_start` as its wait. It is an ordinary step of the route plan (docs/routing.md,
  "Head start"): skipped at once when that librarian is not present, timed out like any step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet

from consortium.models import Consortium
from libraries.models import StaffProfile
from routing.models import Chat
from routing.router import Step

STEP = "returning"


def head_start_plan(plan: tuple[Step, ...], *, last_helper: int | None, seconds: int) -> tuple[Step, ...]:
    """`plan` with the head start step first, when there is someone to give it to. A plan with no
    step (nobody could ever answer) stays empty: the chat is unstaffed, head start or not."""
    if last_helper is None or not plan or seconds <= 0:
        return plan
    return (Step(STEP, (), seconds, last_helper), *plan)


def linked_chats(consortium: Consortium, device: str, now: datetime) -> QuerySet[Chat]:
    """The remembered chats of a device within the consortium's retention, newest first."""
    since = now - timedelta(days=consortium.transcript_retention_days)
    if not device:
        return Chat.objects.none()
    return (Chat.objects.filter(consortium=consortium, patron_device=device, remembered=True, created_at__gte=since)
            .order_by("-created_at", "pk"))


def last_helper(consortium: Consortium, device: str, now: datetime) -> int | None:
    """The librarian who answered the device's latest remembered chat that was answered, still staff."""
    row = (linked_chats(consortium, device, now).filter(answered_by__isnull=False, answered_by__is_active=True,
                                                         answered_by__user__is_active=True)
           .values_list("answered_by_id", flat=True).first())
    return row


def earlier_chats(profile: StaffProfile, chat: Chat, now: datetime, *, limit: int = 10) -> list[Chat]:
    """Earlier remembered chats of this chat's device that this librarian may read (routing.staff's
    readable_chats: the one rule of who reads what), newest first."""
    from routing.staff.selectors import readable_chats  # the staff reads build on routing: imported here

    if not chat.remembered or not chat.patron_device:
        return []
    linked = linked_chats(chat.consortium, chat.patron_device, now).exclude(pk=chat.pk).filter(
        created_at__lte=chat.created_at)
    readable = readable_chats(profile, now).filter(pk__in=linked.values("pk"))
    return list(readable.select_related("answered_by__user", "home_library").order_by("-created_at", "pk")[:limit])
