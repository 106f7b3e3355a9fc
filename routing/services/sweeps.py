"""The timer's work: deadlines that passed (graces, step timeouts, offer expiries, idle ends, shift
ends) and the sockets of web processes that died without saying goodbye."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Q

from consortium.models import Consortium
from routing.models import Chat, ChatState, Connection, LibrarianPresence, ServerProcess
from routing.services.presence import librarian_lost, patron_disconnected, reroutes_overdue, staff_disconnected
from routing.services.route import RouteHint, SharedSituation, chat_route, chats_route, queues_of_plans
from routing.services.shifts import librarian_shift_due

# A web process that has not heart-beaten for this long is dead: its sockets count as closed.
PROCESS_DEAD_AFTER = timedelta(seconds=20)


def process_heartbeat(process_id: str, now: datetime) -> None:
    updated = ServerProcess.objects.filter(pk=process_id).update(heartbeat_at=now)
    if not updated:
        ServerProcess.objects.get_or_create(pk=process_id, defaults={"started_at": now, "heartbeat_at": now})


def dead_processes_reap(now: datetime) -> int:
    """Sockets of a process that died without saying goodbye count as closed."""
    dead = list(ServerProcess.objects.filter(heartbeat_at__lt=now - PROCESS_DEAD_AFTER).values_list("pk", flat=True))
    for process_id in dead:
        for channel_name, kind in Connection.objects.filter(process_id=process_id).values_list("channel_name", "kind"):
            if kind == Connection.Kind.STAFF:
                staff_disconnected(channel_name, now)
            else:
                patron_disconnected(channel_name, now)
        ServerProcess.objects.filter(pk=process_id, heartbeat_at__lt=now - PROCESS_DEAD_AFTER).delete()
    return len(dead)


def due_sweep(now: datetime, limit: int = 200) -> int:
    """Fire every deadline that has passed: graces, step timeouts, offer expiries, idle ends.

    Safe to run in any number of processes at once: each row is taken with SKIP LOCKED, and a
    decision made from the stored state is the same however often it is made.
    """
    done = 0
    for librarian_id in LibrarianPresence.objects.filter(grace_until__lte=now).values_list("pk", flat=True)[:limit]:
        done += librarian_lost(librarian_id, now)
    due = Chat.objects.filter(deadline__lte=now).filter(Q(state=ChatState.QUEUED) | Q(state=ChatState.ACTIVE))
    rows = list(due.order_by("deadline").values_list("pk", "consortium_id", "state", "plan", "step_index",
                                                     "step_entered_at")[:limit])
    # Waiting chats whose deadlines passed together (a burst of arrivals a step's wait ago) are routed
    # together, per consortium, on one situation and in batches (route.chats_route): a burst of 200
    # costs a few statements per 50 chats, not a transaction of its own each.
    waiting: dict[int, list[tuple[str, RouteHint]]] = defaultdict(list)
    for chat_id, consortium_id, state, plan, step_index, step_entered_at in rows:
        if state == ChatState.QUEUED:
            waiting[consortium_id].append((chat_id, RouteHint(consortium_id, plan, step_index, step_entered_at)))
        else:
            chat_route(chat_id, now, skip_locked=True)
    for consortium_id, chats in waiting.items():
        if len(chats) == 1:
            # A deadline alone (the usual case): chat_route asks BEGIN, the lock, the chat's offers and
            # (from what this listing read of it) the presence and load its decision reads in one
            # round trip, its writes, COMMIT and the patron's place in another; a batch of one took six.
            chat_id, hint = chats[0]
            chat_route(chat_id, now, skip_locked=True, hint=hint)
            continue
        shared = SharedSituation(Consortium.objects.get(pk=consortium_id), now,
                                 queues_of_plans(hint.plan for _, hint in chats))
        chats_route([chat_id for chat_id, _ in chats], now, shared=shared, skip_locked=True)
    done += len(rows)
    done += reroutes_overdue(now)
    # After the chats: at an instant where a queue closes and its librarian's shift ends, the chats
    # move on for the queue's reason (closed), as they did before shifts ended.
    for librarian_id in (LibrarianPresence.objects.filter(shift_due__lte=now).order_by("shift_due")
                         .values_list("pk", flat=True)[:limit]):
        done += librarian_shift_due(librarian_id, now)
    return done
