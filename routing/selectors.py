"""Reads for routing: the situation of a consortium at an instant, and a chat as the router sees it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Count, Q

from consortium.models import Consortium
from libraries import rota
from libraries.hours import is_open, next_change, schedule_for
from libraries.models import Queue, StaffProfile
from routing import router
from routing.models import Chat, ChatState, LibrarianPresence, Offer
from routing.plan import plan_from_json

# A patron who never opens the socket (nor polls) is taken as gone this long after the chat starts;
# then patron_grace runs as for a patron who left.
NEVER_JOINED_AFTER = timedelta(seconds=60)


def present_librarians(consortium: Consortium, queues: set[str] | None = None,
                       also: Iterable[int] = ()) -> list[StaffProfile]:
    """Present librarians of the consortium; only those serving one of `queues` (or in `also`), when given."""
    presences = LibrarianPresence.objects.filter(
        status=LibrarianPresence.Status.AVAILABLE, online=True,
        librarian__library__consortium=consortium, librarian__is_active=True,
    )
    if queues is not None:
        presences = presences.filter(Q(librarian__library__slug__in=queues) | Q(librarian__queues__slug__in=queues)
                                     | Q(librarian_id__in=list(also)))
    ids = set(presences.values_list("librarian_id", flat=True))
    return list(
        StaffProfile.objects.filter(pk__in=ids)
        .select_related("library", "presence", "user")
        .prefetch_related("queues")
        .annotate(active_count=Count("chats", filter=Q(chats__state=ChatState.ACTIVE)))
    )


def librarian_view(profile: StaffProfile, default_capacity: int, now: datetime,
                   on_shift: frozenset[str] = frozenset()) -> router.Librarian:
    # On a rota-driven queue, being on shift is serving it, whether or not the profile lists it.
    queues = frozenset([profile.library.slug, *(q.slug for q in profile.queues.all()), *on_shift])
    presence = getattr(profile, "presence", None)
    idle = (presence.idle_since if presence else None) or now
    return router.Librarian(
        id=profile.pk,
        queues=queues,
        capacity=profile.capacity if profile.capacity is not None else default_capacity,
        active=getattr(profile, "active_count", 0),
        languages=frozenset(profile.languages or []),
        idle_since=idle,
        on_shift=on_shift,
    )


def situation_for(consortium: Consortium, now: datetime, queues: set[str] | None = None) -> router.Situation:
    """The situation at `now`: every queue of the consortium, or only `queues` (a chat's plan) when given."""
    rows = Queue.objects.filter(consortium=consortium, is_active=True)
    if queues is not None:
        rows = rows.filter(slug__in=queues)
    queue_rows = list(rows.prefetch_related("weekly", "closures", "special_hours"))
    open_queues: set[str] = set()
    changes: dict[str, datetime | None] = {}
    modes: dict[str, str] = {}
    rota_driven: set[str] = set()
    for queue in queue_rows:
        schedule = schedule_for(queue)
        if is_open(schedule, now):
            open_queues.add(queue.slug)
        changes[queue.slug] = next_change(schedule, now)
        modes[queue.slug] = queue.mode
        if queue.rota_driven:
            rota_driven.add(queue.slug)
    # The rota: who is on shift now on rota-driven queues, and when a shift starts or ends (a chat
    # waiting for such a queue is looked at again then, so the next shift is offered it at once).
    shifts = rota.shifts_of(q for q in queue_rows if q.rota_driven)
    for slug, change in rota.next_shift_change(shifts, now).items():
        hours_change = changes.get(slug)
        changes[slug] = change if hours_change is None else min(hours_change, change)
    shift_of = rota.on_shift(None, (), now, shifts=shifts) if shifts else {}
    present: dict[str, list[router.Librarian]] = defaultdict(list)
    for profile in present_librarians(consortium, queues, also=shift_of):
        view = librarian_view(profile, consortium.librarian_capacity, now, shift_of.get(profile.pk, frozenset()))
        for slug in view.queues:
            if queues is None or slug in queues:
                present[slug].append(view)
    return router.Situation(
        now=now,
        open_queues=frozenset(open_queues),
        present={slug: tuple(libs) for slug, libs in present.items()},
        queue_mode=modes,
        rota_driven=frozenset(rota_driven),
        next_change=changes,
        offer_timeout=consortium.offer_timeout,
        max_wait=consortium.max_wait,
        patron_grace=consortium.patron_grace,
    )


def waiting_chat_view(chat: Chat) -> router.WaitingChat:
    offers = list(Offer.objects.filter(chat=chat, step_serial=chat.step_serial))
    gone: datetime | None = chat.patron_left_at
    if not chat.patron_joined:
        gone = chat.created_at + NEVER_JOINED_AFTER
    return router.WaitingChat(
        id=chat.pk,
        plan=plan_from_json(chat.plan),
        step_index=chat.step_index,
        step_entered_at=chat.step_entered_at,
        arrived_at=chat.arrived_at,
        created_at=chat.created_at,
        language=chat.language,
        offers=tuple(router.OpenOffer(o.librarian_id, o.mode, o.expires_at) for o in offers
                     if o.status == Offer.Status.OPEN),
        offered=frozenset(o.librarian_id for o in offers),
        declined=frozenset(o.librarian_id for o in offers
                           if o.status in (Offer.Status.DECLINED, Offer.Status.EXPIRED)),
        max_wait_passed=chat.max_wait_passed,
        patron_gone_since=gone if chat.state == ChatState.QUEUED else None,
    )


def queue_position(chat: Chat) -> int:
    """1 + the queued chats that arrived earlier and wait for any queue of this chat's audience."""
    if chat.state != ChatState.QUEUED or chat.step_index < 0:
        return 0
    mine = set(router.audience(plan_from_json(chat.plan), chat.step_index))
    ahead = 0
    for plan, step_index in Chat.objects.filter(
        consortium_id=chat.consortium_id, state=ChatState.QUEUED, arrived_at__lt=chat.arrived_at, step_index__gte=0
    ).values_list("plan", "step_index"):
        if mine & set(router.audience(plan_from_json(plan), step_index)):
            ahead += 1
    return ahead + 1


def typical_wait_seconds(consortium: Consortium) -> int:
    """Median time to accept over the consortium's last 50 answered chats (60 s when there are none)."""
    rows = list(
        Chat.objects.filter(consortium=consortium, first_accepted_at__isnull=False)
        .order_by("-first_accepted_at")
        .values_list("arrived_at", "first_accepted_at")[:50]
    )
    if not rows:
        return 60
    waits = sorted((accepted - arrived).total_seconds() for arrived, accepted in rows if accepted is not None)
    return max(5, int(waits[len(waits) // 2]))


def plan_queues(chat: Chat) -> set[str] | None:
    """Every queue a chat's plan names: all that routing it can depend on (None: it needs everyone,
    as a transfer to a named librarian does, who may serve no queue of the plan)."""
    plan = plan_from_json(chat.plan)
    if any(step.librarian is not None for step in plan):
        return None
    return {queue for step in plan for queue in step.queues}
