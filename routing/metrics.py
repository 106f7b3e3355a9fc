"""Prometheus metrics at /metrics: a prometheus_client collector over the database, in the text format 0.0.4.

Every figure is read from the database at scrape time, so every web process answers the same and a process
that restarts loses nothing: scrape any one web process (or through nginx); there is no per-process state to
sum. Gauges count rows as they are now. Counters and histograms count what happened *today* (since 00:00 UTC,
`vr_metrics_window_start_seconds`) from the chats' trace: each scrape then reads one day of rows through an
index, whatever the size of the history, and at midnight they start again from 0, which Prometheus takes as
a counter reset (as when a process restarts): rate() and increase() stay right. Use those, not raw values.

The families are built afresh by `Figures.collect()` on each scrape and rendered by prometheus_client on a
private registry: the global one (with its process and platform collectors) is not exposed, as it never was.

Only the addresses in METRICS_ALLOWED_IPS (addresses or networks; default 127.0.0.1 and ::1) get an answer;
everyone else gets 404, as if the page did not exist.

| metric | type | labels | meaning |
|---|---|---|---|
| vr_chats | gauge | consortium, state | chats waiting (queued) or being answered (active) now |
| vr_chats_today | gauge | consortium, outcome | chats arrived today, by outcome (routing/outcomes.py); they add up |
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
| vr_files_bytes | gauge | consortium | bytes of chat files stored for the consortium's unscrubbed chats |
| vr_files_budget_bytes | gauge | consortium | their budget (CONSORTIUM_FILES_BUDGET_BYTES); uploads past it: 413 |
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from django.db.models import Count, F, Min, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from consortium.clients import request_address
from consortium.models import Consortium
from libraries.models import Queue, StaffProfile
from routing import outcomes
from routing.models import Chat, ChatFile, ChatState, Connection, LibrarianPresence, ServerProcess, TraceEvent
from routing.plan import plan_from_json
from routing.selectors import queues_served
from routing.services.sweeps import PROCESS_DEAD_AFTER

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds. Offers normally follow creation within a second; accepts take seconds to minutes.
BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
OVERDUE_AFTER = timedelta(seconds=5)
LIVE = (ChatState.QUEUED, ChatState.ACTIVE)


def le(bound: float) -> str:
    """A bucket's upper bound as its `le` label: "1", "0.25" (as dashboards and alerts name them)."""
    return str(int(bound)) if bound == int(bound) else repr(bound)


def render(collector: Collector) -> str:
    """The exposition text of one collector, on a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode("utf-8")


# --- the figures ---------------------------------------------------------------------------------------


def _live_chats() -> QuerySet[Chat, Chat]:
    """Chats, filtered by consortium so that the (consortium, state, arrived_at) index finds the few live ones
    among the whole history (a filter on state alone would read every chat)."""
    return Chat.objects.filter(consortium_id__in=list(Consortium.objects.values_list("pk", flat=True)))


def _chats(consortia: list[str]) -> Metric:
    family = GaugeMetricFamily("vr_chats", "Chats waiting (queued) or being answered (active) now.",
                               labels=["consortium", "state"])
    counts = {(row["consortium__slug"], row["state"]): row["n"] for row in
              _live_chats().filter(state__in=LIVE).values("consortium__slug", "state").annotate(n=Count("pk"))}
    for slug in consortia:
        for state in LIVE:
            family.add_metric([slug, state], counts.get((slug, state), 0))
    return family


def _chats_today(consortia: list[str], since: datetime) -> Metric:
    """Today's chats by outcome, as the statistics page and the board count them: a gauge, not a counter,
    since a chat moves from open to answered or abandoned during the day."""
    family = GaugeMetricFamily(
        "vr_chats_today", "Chats that arrived today (since 00:00 UTC) by outcome: answered, abandoned, withdrawn "
        "(after max_wait), unstaffed, open; each chat counts once.", labels=["consortium", "outcome"])
    counts = outcomes.count(_live_chats().filter(arrived_at__gte=since), by="consortium__slug")
    for slug in consortia:
        for outcome, n in counts.get(slug, outcomes.Counts()).items():
            family.add_metric([slug, outcome.value], n)
    return family


def _queues(now: datetime) -> list[Metric]:
    labels = ["consortium", "queue"]
    waiting = GaugeMetricFamily(
        "vr_queue_waiting_chats",
        "Queued chats whose current routing step includes this queue (a chat may count in several).", labels=labels)
    oldest = GaugeMetricFamily(
        "vr_queue_oldest_wait_seconds",
        "Seconds the longest-waiting chat in this queue has waited since it arrived (0: none waits).", labels=labels)
    present = GaugeMetricFamily(
        "vr_queue_librarians_present",
        "Librarians online and available who serve this queue: their library's, the shared queues they list "
        "and the rota-driven queues they have shifts on.", labels=labels)
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
    librarians = list(StaffProfile.objects.filter(is_active=True, presence__online=True,
                                                   presence__status=LibrarianPresence.Status.AVAILABLE)
                      .select_related("library__consortium"))
    served = queues_served(librarians)
    for librarian in librarians:
        for queue in served[librarian.pk]:
            staffed[(librarian.library.consortium.slug, queue)] += 1
    known = set(Queue.objects.filter(is_active=True, consortium__is_active=True)
                .values_list("consortium__slug", "slug"))
    for key in sorted(known | set(count) | set(staffed)):
        waiting.add_metric(list(key), count.get(key, 0))
        oldest.add_metric(list(key), round((now - since[key]).total_seconds(), 3) if key in since else 0)
        present.add_metric(list(key), staffed.get(key, 0))
    return [waiting, oldest, present]


def _librarians(consortia: list[str]) -> Metric:
    family = GaugeMetricFamily(
        "vr_librarians_online",
        "Librarians connected or inside the reconnect grace, by status (available ones are offered chats).",
        labels=["consortium", "status"])
    counts = {(row["librarian__library__consortium__slug"], row["status"]): row["n"] for row in
              LibrarianPresence.objects.filter(online=True)
              .values("librarian__library__consortium__slug", "status").annotate(n=Count("pk"))}
    for slug in consortia:
        for status in LibrarianPresence.Status.values:
            family.add_metric([slug, status], counts.get((slug, status), 0))
    return family


def window_start(now: datetime) -> datetime:
    """Counters and histograms cover today, from 00:00 UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _histogram(name: str, documentation: str, observations: dict[str, list[float]], consortia: list[str]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["consortium"])
    for slug in sorted(set(consortia) | set(observations)):
        values = observations.get(slug, [])
        buckets = [(le(bound), sum(1 for v in values if v <= bound)) for bound in BUCKETS]
        family.add_metric([slug], [*buckets, ("+Inf", len(values))], round(sum(values), 3))
    return family


def _latencies(consortia: list[str], since: datetime) -> list[Metric]:
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
        _histogram("vr_offer_latency_seconds",
                   "Seconds from a chat's creation to its first offer to a librarian (chats created today).",
                   offered, consortia),
        _histogram("vr_time_to_accept_seconds",
                   "Seconds from a chat's creation to the first librarian accepting it (accepted today).",
                   accepted, consortia),
    ]


def _events(since: datetime) -> list[Metric]:
    family = CounterMetricFamily(
        "vr_routing_events_total",
        "Routing trace events today by kind (created, offered, escalated, accepted, unstaffed, abandoned, "
        "ended, requeued, ...): escalations are kind=escalated.", labels=["consortium", "kind"])
    rows = (TraceEvent.objects.filter(at__gte=since).values("chat__consortium__slug", "kind").annotate(n=Count("pk"))
            .order_by("chat__consortium__slug", "kind"))
    seen = set()
    for row in rows:
        seen.add((row["chat__consortium__slug"], row["kind"]))
        family.add_metric([row["chat__consortium__slug"], row["kind"]], row["n"])
    # The kinds an alert is written for exist from the start, at 0, so rate() has a series to work on.
    for slug in Consortium.objects.filter(is_active=True).values_list("slug", flat=True).order_by("slug"):
        for kind in ("created", "escalated", "accepted", "unstaffed", "abandoned"):
            if (slug, kind) not in seen:
                family.add_metric([slug, kind], 0)
    start = GaugeMetricFamily("vr_metrics_window_start_seconds",
                              "Unix time since which the counters and histograms count (00:00 UTC today).",
                              value=since.timestamp())
    return [family, start]


def _sockets() -> Metric:
    family = GaugeMetricFamily("vr_sockets", "Open connections (Connection rows), by kind and transport.",
                               labels=["kind", "transport"])
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in Connection.objects.values("kind", "process_id").annotate(n=Count("pk")):
        transport = "poll" if str(row["process_id"]).startswith("poll.") else "websocket"
        counts[(row["kind"], transport)] += row["n"]
    for kind in Connection.Kind.values:
        for transport in ("websocket", "poll"):
            family.add_metric([kind, transport], counts.get((kind, transport), 0))
    return family


def _processes(now: datetime) -> Metric:
    family = GaugeMetricFamily(
        "vr_web_processes",
        "Web (daphne) processes by heartbeat: alive, or stale (silent, sockets about to be reaped).", labels=["state"])
    web = ServerProcess.objects.exclude(pk__startswith="poll.")
    alive = web.filter(heartbeat_at__gte=now - PROCESS_DEAD_AFTER).count()
    family.add_metric(["alive"], alive)
    family.add_metric(["stale"], web.count() - alive)
    return family


def _overdue(now: datetime) -> Metric:
    family = GaugeMetricFamily(
        "vr_overdue_deadlines",
        "Deadlines passed more than 5 s ago and not fired yet: if this stays above 0, no timer runs.", labels=["kind"])
    family.add_metric(["chat"], Chat.objects.filter(state__in=LIVE, deadline__lt=now - OVERDUE_AFTER).count())
    family.add_metric(["grace"], LibrarianPresence.objects.filter(grace_until__lt=now - OVERDUE_AFTER).count())
    return family


def _files(consortia: list[str]) -> list[Metric]:
    """The disk the consortium's chat files take, beside its budget (routing.files.room_check): alert before
    the two meet, since uploads are refused from then on."""
    stored = GaugeMetricFamily("vr_files_bytes", "Bytes of chat files stored for the consortium's unscrubbed chats.",
                               labels=["consortium"])
    budget = GaugeMetricFamily("vr_files_budget_bytes",
                               "The most the consortium's chat files may take; uploads past it are refused (413).",
                               labels=["consortium"])
    sums = dict(ChatFile.objects.filter(chat__scrubbed=False).values("chat__consortium__slug")
                .annotate(total=Sum("size")).values_list("chat__consortium__slug", "total"))
    for slug in consortia:
        stored.add_metric([slug], sums.get(slug) or 0)
        budget.add_metric([slug], settings.CONSORTIUM_FILES_BUDGET_BYTES)
    return [stored, budget]


class Figures(Collector):
    """The service's figures, read from the database when a scrape collects them (at `now`, or the time then)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        consortia = list(Consortium.objects.filter(is_active=True).order_by("slug").values_list("slug", flat=True))
        yield _chats(consortia)
        yield _chats_today(consortia, window_start(now))
        yield from _queues(now)
        yield _librarians(consortia)
        yield from _latencies(consortia, window_start(now))
        yield from _events(window_start(now))
        yield _sockets()
        yield _processes(now)
        yield _overdue(now)
        yield from _files(consortia)


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
    if not client_allowed(request_address(request)):  # the socket peer, or what a trusted proxy names
        raise Http404("not found")
    body = render(Figures())
    response = HttpResponse(body, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
