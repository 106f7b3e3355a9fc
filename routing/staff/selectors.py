"""What the staff console reads besides the socket: the chats a librarian may read (history), the
home library beside a chat (with its canned responses, routing.canned), who is present where, and the
library's follow-ups.

Every function takes the librarian's StaffProfile and answers only within that librarian's
consortium (nothing crosses between consortia, docs/routing.md): a row of another consortium, or of
another library where the library decides, is reported as absent, never as forbidden, so ids do not
reveal what exists elsewhere. The writes of the console are in routing.services (chats.chat_classify,
followups.ticket_*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils.safestring import SafeString

from libraries.hours import format_interval, is_open, next_change, schedule_for
from libraries.models import Library, LibraryPartner, Queue, StaffProfile
from libraries.policy import is_allowed_link, render_policy
from routing import followup_clock, returning, whispers
from routing.access import own_chats_q
from routing.canned import canned_for, patron_language
from routing.models import LIVE_STATES, Chat, ChatFile, ChatState, Message, Ticket
from routing.selectors import present_librarians, queues_served
from routing.services.handbacks import handback_state


def readable_chats(profile: StaffProfile, now: datetime) -> QuerySet[Chat]:
    """Chats this librarian took part in, or whose patron is their library's, within retention.

    Past the consortium's transcript retention a chat is scrubbed of the patron's details and
    leaves the console's history: it stays only in the coordinators' statistics.
    """
    consortium = profile.library.consortium
    since = now - timedelta(days=consortium.transcript_retention_days)
    return Chat.objects.filter(consortium=consortium, created_at__gte=since).filter(own_chats_q(profile))


def history(profile: StaffProfile, now: datetime, *, query: str = "", limit: int = 50, offset: int = 0) -> list[Chat]:
    """Past chats, newest first, optionally those whose question or any line contains `query`; `limit` of
    them from `offset` (the console's pages)."""
    rows = readable_chats(profile, now).exclude(state__in=LIVE_STATES)
    query = query.strip()
    if query:
        # A line matches only where this librarian may read it: a search finds no whisper of others'.
        lines = Message.objects.filter(whispers.visible_q(profile.pk), body__icontains=query).values("chat_id")
        rows = rows.filter(Q(question__icontains=query) | Q(pk__in=lines)
                           | Q(patron_name__icontains=query) | Q(pk=query))
    # The matching ids as a subquery (the messages join repeats a chat), then one ordered page of them:
    # every match is reachable page by page, however many there are.
    ids = rows.order_by().values("pk")
    return list(Chat.objects.filter(pk__in=ids).select_related("home_library", "answered_by__user",
                                                                "answered_by__library")
                .order_by("-arrived_at", "pk")[offset:offset + limit])


def history_chat(profile: StaffProfile, chat_id: str, now: datetime) -> Chat | None:
    return readable_chats(profile, now).select_related(
        "home_library", "answered_by__user", "answered_by__library", "librarian__user").filter(pk=chat_id).first()


def chat_info(profile: StaffProfile, chat_id: str, now: datetime) -> dict[str, Any] | None:
    """What a console needs to show a chat it holds (or held): after a reload it knows only the id."""
    chat = (readable_chats(profile, now).select_related("home_library", "consortium", "librarian__library")
            .filter(pk=chat_id).first())
    if chat is None:
        return None
    home = chat.home_library
    return {
        "chat": chat.pk,
        "state": chat.state,
        "mine": chat.librarian_id == profile.pk and chat.state == ChatState.ACTIVE,
        "home_library": {"slug": home.slug, "name": home.name} if home else None,
        "policy_url": f"/staff/libraries/{home.slug}/policy" if home else None,
        "patron": {"name": chat.patron_name or None, "present": chat.patron_left_at is None},
        "question": chat.question,
        "transfer_note": chat.transfer_note or None,
        "arrived_at": chat.arrived_at.isoformat(),
        "last_seq": chat.last_seq,
        "classification": {"read_scale": chat.read_scale, "subjects": list(chat.subjects or []),
                           "outcome": chat.outcome or None},
        "language": patron_language(chat),
        "canned": canned_for(profile, chat, now),
        # The way home, after a reload: may the holder hand this chat back to its home library now?
        "handback": (chat.librarian_id == profile.pk and handback_state(chat, now)),
        # A returning patron's earlier chats (routing.returning), only those this librarian may read.
        "earlier": [{"chat": c.pk, "arrived_at": c.arrived_at.isoformat(), "question": c.question[:200],
                     "answered_by": c.answered_by.display_name if c.answered_by else None,
                     "url": f"/staff/history/{c.pk}/"} for c in returning.earlier_chats(profile, chat, now)],
    }


@dataclass
class LibraryPanel:
    library: Library
    policy_html: SafeString
    reviewed_on: date | None
    review_limit_days: int
    stale: bool
    today: date
    hours_today: list[str]
    open_now: bool
    next_change: datetime | None
    key_links: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "library": {"slug": self.library.slug, "name": self.library.name},
            "policy_html": str(self.policy_html),
            "policy_reviewed_on": self.reviewed_on.isoformat() if self.reviewed_on else None,
            "policy_review_limit_days": self.review_limit_days,
            "policy_stale": self.stale,
            "today": self.today.isoformat(),
            "hours_today": self.hours_today,
            "open_now": self.open_now,
            "next_change": self.next_change.isoformat() if self.next_change else None,
            "key_links": self.key_links,
            "website": self.library.website or None,
        }


def policy_is_stale(reviewed_on: date | None, today: date, limit_days: int) -> bool:
    """A policy never reviewed, or reviewed longer ago than the consortium's limit, is stale."""
    return reviewed_on is None or (today - reviewed_on).days > limit_days


def _safe_links(raw: Any) -> list[dict[str, str]]:
    links = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("url"), str) and is_allowed_link(item["url"]):
            links.append({"title": str(item.get("title") or item["url"]), "url": item["url"]})
    return links


def library_panel(profile: StaffProfile, slug: str, now: datetime) -> LibraryPanel | None:
    consortium = profile.library.consortium
    library = Library.objects.filter(consortium=consortium, slug=slug).first()
    if library is None:
        return None
    today = now.astimezone(ZoneInfo(library.timezone)).date()
    queue = (Queue.objects.filter(library=library).prefetch_related("weekly", "closures", "special_hours")
             .first())
    hours: list[str] = []
    open_now = False
    change = None
    if queue is not None:
        schedule = schedule_for(queue)
        local_today = now.astimezone(schedule.zone).date()
        hours = [format_interval(start, end) for start, end in schedule.hours_on(local_today)]
        open_now = is_open(schedule, now)
        change = next_change(schedule, now)
    limit = consortium.policy_review_limit_days
    return LibraryPanel(
        library=library, policy_html=render_policy(library.policy), reviewed_on=library.policy_reviewed_on,
        review_limit_days=limit, stale=policy_is_stale(library.policy_reviewed_on, today, limit), today=today,
        hours_today=hours, open_now=open_now, next_change=change, key_links=_safe_links(library.key_links),
    )


def presence_overview(profile: StaffProfile, now: datetime) -> dict[str, Any]:
    """Every queue of the consortium with whether it is open and who is present in it; the libraries.

    Present means what the router means (docs/routing.md): a live connection and `available`.
    """
    consortium = profile.library.consortium
    present = present_librarians(consortium)
    by_queue: dict[str, list[dict[str, Any]]] = {}
    librarians = []
    served = queues_served(present)
    for other in sorted(present, key=lambda p: (p.library.name, p.display_name)):
        capacity = other.capacity if other.capacity is not None else consortium.librarian_capacity
        entry = {"username": other.user.username, "name": other.display_name, "library": other.library.slug,
                 "library_name": other.library.name, "active": getattr(other, "active_count", 0),
                 "capacity": capacity, "me": other.pk == profile.pk}
        librarians.append(entry)
        for slug in served[other.pk]:
            by_queue.setdefault(slug, []).append(entry)
    queues = []
    for queue in (Queue.objects.filter(consortium=consortium, is_active=True)
                  .prefetch_related("weekly", "closures", "special_hours").order_by("kind", "position", "name")):
        queues.append({"slug": queue.slug, "name": queue.name, "kind": queue.kind,
                       "open": is_open(schedule_for(queue), now), "present": by_queue.get(queue.slug, [])})
    libraries = [{"slug": lib.slug, "name": lib.name}
                 for lib in Library.objects.filter(consortium=consortium, is_active=True).order_by("name")]
    return {"queues": queues, "librarians": librarians, "libraries": libraries}


FOLLOWUP_FILTERS = {
    "open": (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS),
    "answered": (Ticket.Status.ANSWERED,),
    "closed": (Ticket.Status.CLOSED,),
}


def followups_for(profile: StaffProfile, *, status: str = "open", query: str = "") -> QuerySet[Ticket]:
    """The follow-ups on the librarian's list: their library's; past due, those of the libraries that
    have them as a partner; coordinators also the consortium's (no library, or moved there past due:
    routing.followup_clock). Moving on never takes a follow-up off an earlier list."""
    mine = Q(library_id=profile.library_id)
    partner_of = LibraryPartner.objects.filter(partner_id=profile.library_id).values("library_id")
    mine |= Q(stage__in=(followup_clock.PARTNERS, followup_clock.CONSORTIUM), library_id__in=partner_of)
    if profile.role == StaffProfile.Role.COORDINATOR:
        mine |= Q(library__isnull=True) | Q(stage=followup_clock.CONSORTIUM)
    rows = Ticket.objects.filter(consortium_id=profile.library.consortium_id).filter(mine)
    if status in FOLLOWUP_FILTERS:
        rows = rows.filter(status__in=FOLLOWUP_FILTERS[status])
    query = query.strip()
    if query:
        rows = rows.filter(Q(question__icontains=query) | Q(patron_email__icontains=query)
                           | Q(patron_name__icontains=query) | Q(pk=query))
    return rows.select_related("library", "claimed_by__user", "created_by__user").order_by("created_at")


def followup_get(profile: StaffProfile, ticket_id: str) -> Ticket | None:
    return followups_for(profile, status="all").filter(pk=ticket_id).first()


def followup_files(ticket: Ticket) -> QuerySet[ChatFile]:
    """The files of the follow-up's chat, for whoever answers it: pictures a patron texted when nobody
    was on duty are kept there (routing.files.keep), as are the files of a chat that was referred."""
    return ChatFile.objects.filter(chat_id=ticket.chat_id).exclude(data="").order_by("created_at", "pk")


# --- the mentor board (routing.staff.mentoring) ---------------------------------------------------


def live_board(profile: StaffProfile) -> list[Chat]:
    """Every live chat of the librarian's consortium, longest waiting first: what a mentor sees."""
    return list(Chat.objects.filter(consortium_id=profile.library.consortium_id, state__in=LIVE_STATES)
                .select_related("home_library", "librarian__user", "librarian__library",
                                "second_librarian__user")
                .order_by("arrived_at", "pk")[:500])
