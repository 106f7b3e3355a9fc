"""/metrics: Prometheus text that parses, figures that match the database, and only for allowed addresses."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routing import events, metrics
from routing.models import TraceEvent
from routing.patron import polling
from routing.services import chats, offers, sweeps
from tests.factories import make_consortium
from tests.routing.routing_helpers import Sent, at, go_online, patron_joins, staff, start, world

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+]+|\+Inf|NaN)$')
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    recorder = Sent()
    monkeypatch.setattr(events, "_send", recorder)
    return recorder


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """The exposition format, strictly: every sample line parses and belongs to a family with HELP and TYPE."""
    samples: Samples = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types and family in helped, f"{name} has no HELP/TYPE"
        pairs = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels or ""))
        key = (name, pairs)
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_the_figures_match_what_happened(sent: Sent) -> None:
    w = world()
    make_consortium("empty")  # no queue at all: its chats are unstaffed
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    first = start(w.consortium, at(0), library_slug="home")
    offers.chat_accept(lena, first.pk, at(30))
    second = start(w.consortium, at(40), library_slug="home")
    sweeps.due_sweep(at(86))  # the local step times out: the second chat escalates to the partner
    start(w.consortium.__class__.objects.get(slug="empty"), at(50))
    patron_joins(second, at(87), process="p1")
    polling.seen(first.pk, at(87))
    sweeps.process_heartbeat("p1", at(87))

    samples, types = parse(metrics.render(metrics.Figures(at(90))))
    assert types["vr_offer_latency_seconds"] == "histogram" and types["vr_routing_events_total"] == "counter"
    assert value(samples, "vr_chats", consortium="vr", state="queued") == 1
    assert value(samples, "vr_chats", consortium="vr", state="active") == 1
    assert value(samples, "vr_chats", consortium="empty", state="queued") == 0
    # The second chat now waits in the partner step, since at(40): 50 s at at(90).
    assert value(samples, "vr_queue_waiting_chats", consortium="vr", queue="partner") == 1
    assert value(samples, "vr_queue_waiting_chats", consortium="vr", queue="home") == 0
    assert value(samples, "vr_queue_oldest_wait_seconds", consortium="vr", queue="partner") == 50
    assert value(samples, "vr_queue_librarians_present", consortium="vr", queue="home") == 1
    assert value(samples, "vr_queue_librarians_present", consortium="vr", queue="statewide") == 0
    assert value(samples, "vr_librarians_online", consortium="vr", status="available") == 2
    assert value(samples, "vr_librarians_online", consortium="vr", status="away") == 0

    # Both chats were offered at once; the first was accepted after 30 s.
    assert value(samples, "vr_offer_latency_seconds_count", consortium="vr") == 2
    assert value(samples, "vr_offer_latency_seconds_bucket", consortium="vr", le="0.25") == 2
    assert value(samples, "vr_time_to_accept_seconds_count", consortium="vr") == 1
    assert value(samples, "vr_time_to_accept_seconds_sum", consortium="vr") == 30
    assert value(samples, "vr_time_to_accept_seconds_bucket", consortium="vr", le="10") == 0
    assert value(samples, "vr_time_to_accept_seconds_bucket", consortium="vr", le="30") == 1
    assert value(samples, "vr_time_to_accept_seconds_bucket", consortium="vr", le="+Inf") == 1
    assert value(samples, "vr_time_to_accept_seconds_count", consortium="empty") == 0

    # Counters are the trace, counted by kind: every process that answers says the same.
    traced = Counter((e.chat.consortium.slug, e.kind) for e in TraceEvent.objects.select_related("chat__consortium"))
    counted = {(dict(labels)["consortium"], dict(labels)["kind"]): v for (name, labels), v in samples.items()
               if name == "vr_routing_events_total" and v}
    assert counted == dict(traced)
    assert counted[("vr", "escalated")] == 1 and counted[("vr", "accepted")] == 1
    assert counted[("empty", "unstaffed")] == 1
    assert value(samples, "vr_routing_events_total", consortium="empty", kind="abandoned") == 0

    assert value(samples, "vr_sockets", kind="staff", transport="websocket") == 2
    assert value(samples, "vr_sockets", kind="patron", transport="websocket") == 1
    assert value(samples, "vr_sockets", kind="patron", transport="poll") == 1
    assert value(samples, "vr_web_processes", state="alive") == 1  # the poller's pseudo-process is not one
    assert value(samples, "vr_overdue_deadlines", kind="chat") == 0


def test_histogram_buckets_are_cumulative(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    for i, wait in enumerate((1, 4, 45, 400)):
        chat = start(w.consortium, at(i * 1000), library_slug="home")
        offers.chat_accept(lena, chat.pk, at(i * 1000 + wait))
        chats.chat_end(chat.pk, at(i * 1000 + wait + 1), by="librarian", librarian=lena)
    samples, _ = parse(metrics.render(metrics.Figures(at(5000))))
    buckets = [value(samples, "vr_time_to_accept_seconds_bucket", consortium="vr", le=metrics.le(b))
               for b in metrics.BUCKETS]
    assert buckets == sorted(buckets)
    assert buckets[-1] == value(samples, "vr_time_to_accept_seconds_count", consortium="vr") == 4
    assert value(samples, "vr_time_to_accept_seconds_sum", consortium="vr") == 450
    assert value(samples, "vr_time_to_accept_seconds_bucket", consortium="vr", le="5") == 2


def test_an_overdue_deadline_shows_that_no_timer_runs(sent: Sent) -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    start(w.consortium, at(0), library_slug="home")  # its step times out at 45 s; nobody sweeps
    samples, _ = parse(metrics.render(metrics.Figures(at(60))))
    assert value(samples, "vr_overdue_deadlines", kind="chat") == 1
    assert value(samples, "vr_web_processes", state="stale") == 1  # p1 stopped heart-beating at -60


def fresh_profile(username: str) -> Any:
    from libraries.models import StaffProfile

    return StaffProfile.objects.get(user__username=username)


class One(Collector):
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family


def test_label_values_are_escaped() -> None:
    family = GaugeMetricFamily("vr_x", "x", labels=["queue"])
    family.add_metric(['a"b\\c\nd'], 1)
    assert metrics.render(One(family)).splitlines()[-1] == 'vr_x{queue="a\\"b\\\\c\\nd"} 1.0'


# --- who may read them ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("allowed", "address", "status"), [
    (None, "127.0.0.1", 200),
    (None, "::1", 200),
    (None, "::ffff:127.0.0.1", 200),
    (None, "203.0.113.7", 404),
    (None, "10.0.0.5", 404),
    (["10.0.0.0/8", "192.0.2.10"], "10.20.30.40", 200),
    (["10.0.0.0/8", "192.0.2.10"], "192.0.2.10", 200),
    (["10.0.0.0/8", "192.0.2.10"], "192.0.2.11", 404),
    (["10.0.0.0/8", "192.0.2.10"], "127.0.0.1", 404),
    ([], "127.0.0.1", 404),
])
def test_only_allowed_addresses_get_an_answer(settings: Any, allowed: list[str] | None, address: str,
                                              status: int) -> None:
    if allowed is not None:
        settings.METRICS_ALLOWED_IPS = allowed
    r = Client(REMOTE_ADDR=address).get("/metrics")
    assert r.status_code == status
    if status == 200:
        assert r["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "# TYPE vr_chats gauge" in r.content.decode()
    else:
        assert b"vr_" not in r.content


def test_a_forwarded_for_header_does_not_open_the_door() -> None:
    # Django sees only REMOTE_ADDR; behind nginx, daphne sets it from the X-Forwarded-For that nginx *sets*.
    r = Client(REMOTE_ADDR="203.0.113.7").get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert r.status_code == 404


def test_only_get() -> None:
    assert Client(REMOTE_ADDR="127.0.0.1").post("/metrics").status_code == 405


def test_only_the_services_own_figures_are_exposed() -> None:
    # A private registry: prometheus_client's default process, platform and GC collectors stay out.
    body = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    families = {line.split()[2]: line.split()[3] for line in body.splitlines() if line.startswith("# TYPE ")}
    assert families == {
        "vr_chats": "gauge", "vr_chats_today": "gauge", "vr_queue_waiting_chats": "gauge",
        "vr_queue_oldest_wait_seconds": "gauge",
        "vr_queue_librarians_present": "gauge", "vr_librarians_online": "gauge",
        "vr_offer_latency_seconds": "histogram", "vr_time_to_accept_seconds": "histogram",
        "vr_routing_events_total": "counter", "vr_metrics_window_start_seconds": "gauge", "vr_sockets": "gauge",
        "vr_web_processes": "gauge", "vr_overdue_deadlines": "gauge",
        # issue 13.4: the chat files' disk and its budget.
        "vr_files_bytes": "gauge", "vr_files_budget_bytes": "gauge"}


def test_counters_and_histograms_cover_today_and_start_again_at_midnight(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    yesterday = start(w.consortium, at(0), library_slug="home")  # 15:00 UTC on T0's day
    offers.chat_accept(lena, yesterday.pk, at(20))
    chats.chat_end(yesterday.pk, at(30), by="librarian", librarian=lena)
    next_day = at(24 * 3600)
    samples, _ = parse(metrics.render(metrics.Figures(next_day)))
    midnight = at(0).replace(hour=0) + timedelta(days=1)
    assert value(samples, "vr_metrics_window_start_seconds") == midnight.timestamp()
    assert value(samples, "vr_routing_events_total", consortium="vr", kind="created") == 0
    assert value(samples, "vr_time_to_accept_seconds_count", consortium="vr") == 0
    # A chat of today counts; its first offer is counted once, though a broadcast offers several librarians.
    staff(w.home, "mia")
    go_online(fresh_profile("mia"), next_day)
    today = start(w.consortium, next_day + timedelta(seconds=5), library_slug="home")
    offers.chat_accept(lena, today.pk, next_day + timedelta(seconds=12))
    samples, _ = parse(metrics.render(metrics.Figures(next_day + timedelta(seconds=60))))
    assert value(samples, "vr_routing_events_total", consortium="vr", kind="created") == 1
    assert value(samples, "vr_routing_events_total", consortium="vr", kind="offered") == 2
    assert value(samples, "vr_offer_latency_seconds_count", consortium="vr") == 1
    assert value(samples, "vr_time_to_accept_seconds_sum", consortium="vr") == 7
