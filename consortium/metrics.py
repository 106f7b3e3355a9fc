"""Prometheus metrics at /metrics, in the text exposition format (version 0.0.4), written by hand.

Every figure is read from the database at scrape time, so every web process answers the same and a process
that restarts loses nothing: scrape any one web process (or through nginx); there is no per-process state to
sum. Gauges count rows as they are now. Counters and histograms count what happened *today* (since 00:00 UTC,
`vr_metrics_window_start_seconds`) from the chats' trace: each scrape then reads one day of rows through an
index, whatever the size of the history, and at midnight they start again from 0, which Prometheus takes as
a counter reset (as when a process restarts): rate() and increase() stay right. Use those, not raw values.

Only the addresses in METRICS_ALLOWED_IPS (addresses or networks; default 127.0.0.1 and ::1) get an answer;
everyone else gets 404, as if the page did not exist.

| metric | type | labels | meaning |
|---|---|---|---|
| vr_chats | gauge | consortium, state | chats waiting (queued) or being answered (active) now |
| vr_queue_waiting_chats | gauge | consortium, queue | queued chats whose current step includes the queue |
| vr_queue_oldest_wait_seconds | gauge | consortium, queue | how long the longest-waiting of those has waited |
| vr_queue_librarians_present | gauge | consortium, queue | librarians online and available who serve the queue |
| vr_librarians_online | gauge | consortium, status | librarians connected or in the reconnect grace, by status |
| vr_offer_latency_seconds | histogram | consortium | chat created -> its first offer to a librarian |
| vr_time_to_accept_seconds | histogram | consortium | chat created -> first accepted by a librarian |
| vr_routing_events_total | counter | consortium, kind | trace events: created, offered, escalated, accepted, ... |
| vr_metrics_window_start_seconds | gauge | | when today's counters started (Unix time, 00:00 UTC) |
| vr_sockets | gauge | kind, transport | open patron and staff connections (websocket, or HTTP long-poll) |
| vr_web_processes | gauge | state | web processes heart-beating (alive) or silent and not reaped yet (stale) |
| vr_overdue_deadlines | gauge | kind | deadlines and graces over 5 s overdue: the timer is not keeping up |
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from django.db.models import Count, F, Min, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from consortium.models import Consortium
from libraries.models import Queue, StaffProfile
from routing.models import Chat, ChatState, Connection, LibrarianPresence, ServerProcess, TraceEvent
from routing.plan import plan_from_json
from routing.services.sweeps import PROCESS_DEAD_AFTER

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. Offers normally follow creation within a second; accepts take seconds to minutes.
BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
OVERDUE_AFTER = timedelta(seconds=5)
LIVE = (ChatState.QUEUED, ChatState.ACTIVE)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: object) -> None:
        self.samples.append((self.name + suffix, tuple((k, str(v)) for k, v in labels.items()), value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for name, labels, value in family.samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


# --- the figures ---------------------------------------------------------------------------------------


def _live_chats() -> QuerySet[Chat, Chat]:
    """Chats, filtered by consortium so that the (consortium, state, arrived_at) index finds the few live ones
    among the whole history (a filter on state alone would read every chat)."""
    return Chat.objects.filter(consortium_id__in=list(Consortium.objects.values_list("pk", flat=True)))


def _chats(consortia: list[str]) -> Family:
    family = Family("vr_chats", "gauge", "Chats waiting (queued) or being answered (active) now.")
    counts = {(row["consortium__slug"], row["state"]): row["n"] for row in
              _live_chats().filter(state__in=LIVE).values("consortium__slug", "state").annotate(n=Count("pk"))}
    for slug in consortia:
        for state in LIVE:
            family.add(counts.get((slug, state), 0), consortium=slug, state=state)
    return family


def _queues(now: datetime) -> list[Family]:
    waiting = Family("vr_queue_waiting_chats", "gauge",
                     "Queued chats whose current routing step includes this queue (a chat may count in several).")
    oldest = Family("vr_queue_oldest_wait_seconds", "gauge",
                    "Seconds the longest-waiting chat in this queue has waited since it arrived (0: none waits).")
    present = Family("vr_queue_librarians_present", "gauge",
                     "Librarians online and available who serve this queue (shift rotas not applied).")
    count: dict[tuple[str, str], int] = defaultdict(int)
    since: dict[tuple[str, str], datetime] = {}
    rows = _live_chats().filter(state=ChatState.QUEUED).values_list("consortium__slug", "plan", "step_index",
                                                                    "arrived_at")
    for slug, plan, step_index, arrived_at in rows:
        steps = plan_from_json(plan or [])
        if not 0 <= step_index < len(steps):
            continue
        for queue in steps[step_index].queues:
            key = (slug, queue)
            count[key] += 1
            since[key] = min(since.get(key, arrived_at), arrived_at)
    staffed: dict[tuple[str, str], int] = defaultdict(int)
    librarians = (StaffProfile.objects.filter(is_active=True, presence__online=True,
                                              presence__status=LibrarianPresence.Status.AVAILABLE)
                  .select_related("library__consortium").prefetch_related("queues"))
    for librarian in librarians:
        slug = librarian.library.consortium.slug
        for queue in {librarian.library.slug, *(q.slug for q in librarian.queues.all())}:
            staffed[(slug, queue)] += 1
    known = set(Queue.objects.filter(is_active=True, consortium__is_active=True)
                .values_list("consortium__slug", "slug"))
    for key in sorted(known | set(count) | set(staffed)):
        slug, queue = key
        waiting.add(count.get(key, 0), consortium=slug, queue=queue)
        oldest.add(round((now - since[key]).total_seconds(), 3) if key in since else 0, consortium=slug,
                   queue=queue)
        present.add(staffed.get(key, 0), consortium=slug, queue=queue)
    return [waiting, oldest, present]


def _librarians(consortia: list[str]) -> Family:
    family = Family("vr_librarians_online", "gauge",
                    "Librarians connected or inside the reconnect grace, by status (available ones are offered chats).")
    counts = {(row["librarian__library__consortium__slug"], row["status"]): row["n"] for row in
              LibrarianPresence.objects.filter(online=True)
              .values("librarian__library__consortium__slug", "status").annotate(n=Count("pk"))}
    for slug in consortia:
        for status in LibrarianPresence.Status.values:
            family.add(counts.get((slug, status), 0), consortium=slug, status=status)
    return family


def window_start(now: datetime) -> datetime:
    """Counters and histograms cover today, from 00:00 UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _histogram(family: Family, observations: dict[str, list[float]], consortia: list[str]) -> Family:
    for slug in sorted(set(consortia) | set(observations)):
        values = observations.get(slug, [])
        for bound in BUCKETS:
            family.add(sum(1 for v in values if v <= bound), "_bucket", consortium=slug, le=_number(bound))
        family.add(len(values), "_bucket", consortium=slug, le="+Inf")
        family.add(round(sum(values), 3), "_sum", consortium=slug)
        family.add(len(values), "_count", consortium=slug)
    return family


def _latencies(consortia: list[str], since: datetime) -> list[Family]:
    """Today's observations, read through the index on the trace's time: a day of rows, not the history."""
    # Offer latency, for the chats created today: their first offer is their earliest `offered` event (a broadcast
    # offers several librarians at one instant), which is today too.
    first_offer = dict(TraceEvent.objects.filter(kind="offered", at__gte=since).values("chat_id")
                       .annotate(first=Min("at")).values_list("chat_id", "first"))
    offered: dict[str, list[float]] = defaultdict(list)
    for chat_id, created, slug in (TraceEvent.objects.filter(kind="created", at__gte=since)
                                   .values_list("chat_id", "at", "chat__consortium__slug")):
        if chat_id in first_offer:
            offered[slug].append((first_offer[chat_id] - created).total_seconds())
    # Time to accept, for the chats first accepted today (later accepts follow a re-queue or a transfer).
    accepted: dict[str, list[float]] = defaultdict(list)
    for slug, at, created in (TraceEvent.objects.filter(kind="accepted", at__gte=since, chat__first_accepted_at=F("at"))
                              .values_list("chat__consortium__slug", "at", "chat__created_at")):
        accepted[slug].append((at - created).total_seconds())
    return [
        _histogram(Family("vr_offer_latency_seconds", "histogram",
                          "Seconds from a chat's creation to its first offer to a librarian (chats created today)."),
                   offered, consortia),
        _histogram(Family("vr_time_to_accept_seconds", "histogram",
                          "Seconds from a chat's creation to the first librarian accepting it (accepted today)."),
                   accepted, consortia),
    ]


def _events(since: datetime) -> list[Family]:
    family = Family("vr_routing_events_total", "counter",
                    "Routing trace events today by kind (created, offered, escalated, accepted, unstaffed, abandoned, "
                    "ended, requeued, ...): escalations are kind=escalated.")
    rows = (TraceEvent.objects.filter(at__gte=since).values("chat__consortium__slug", "kind").annotate(n=Count("pk"))
            .order_by("chat__consortium__slug", "kind"))
    seen = set()
    for row in rows:
        seen.add((row["chat__consortium__slug"], row["kind"]))
        family.add(row["n"], consortium=row["chat__consortium__slug"], kind=row["kind"])
    # The kinds an alert is written for exist from the start, at 0, so rate() has a series to work on.
    for slug in Consortium.objects.filter(is_active=True).values_list("slug", flat=True).order_by("slug"):
        for kind in ("created", "escalated", "accepted", "unstaffed", "abandoned"):
            if (slug, kind) not in seen:
                family.add(0, consortium=slug, kind=kind)
    start = Family("vr_metrics_window_start_seconds", "gauge",
                   "Unix time since which the counters and histograms count (00:00 UTC today).")
    start.add(since.timestamp())
    return [family, start]


def _sockets() -> Family:
    family = Family("vr_sockets", "gauge", "Open connections (Connection rows), by kind and transport.")
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in Connection.objects.values("kind", "process_id").annotate(n=Count("pk")):
        transport = "poll" if str(row["process_id"]).startswith("poll.") else "websocket"
        counts[(row["kind"], transport)] += row["n"]
    for kind in Connection.Kind.values:
        for transport in ("websocket", "poll"):
            family.add(counts.get((kind, transport), 0), kind=kind, transport=transport)
    return family


def _processes(now: datetime) -> Family:
    family = Family("vr_web_processes", "gauge",
                    "Web (daphne) processes by heartbeat: alive, or stale (silent, sockets about to be reaped).")
    web = ServerProcess.objects.exclude(pk__startswith="poll.")
    alive = web.filter(heartbeat_at__gte=now - PROCESS_DEAD_AFTER).count()
    family.add(alive, state="alive")
    family.add(web.count() - alive, state="stale")
    return family


def _overdue(now: datetime) -> Family:
    family = Family("vr_overdue_deadlines", "gauge",
                    "Deadlines passed more than 5 s ago and not fired yet: if this stays above 0, no timer runs.")
    family.add(Chat.objects.filter(state__in=LIVE, deadline__lt=now - OVERDUE_AFTER).count(), kind="chat")
    family.add(LibrarianPresence.objects.filter(grace_until__lt=now - OVERDUE_AFTER).count(), kind="grace")
    return family


def collect(now: datetime) -> list[Family]:
    consortia = list(Consortium.objects.filter(is_active=True).order_by("slug").values_list("slug", flat=True))
    return [
        _chats(consortia), *_queues(now), _librarians(consortia), *_latencies(consortia, window_start(now)),
        *_events(window_start(now)),
        _sockets(), _processes(now), _overdue(now),
    ]


# --- who may read them -----------------------------------------------------------------------------------


@cache
def _allowed(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def client_allowed(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _allowed(tuple(settings.METRICS_ALLOWED_IPS)))


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not client_allowed(request.META.get("REMOTE_ADDR")):
        raise Http404("not found")
    body = render(collect(timezone.now()))
    response = HttpResponse(body, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
