"""Coordinators see texting apart: statistics and the chats report split by channel (docs/sms.md)."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from coordination import statistics
from coordination.views.statistics import statistics_rows
from routing.models import Channel
from routing.services import chats
from tests.factories import make_staff
from tests.routing.routing_helpers import world

pytestmark = pytest.mark.django_db(transaction=True)


def test_statistics_and_the_chats_report_are_split_by_channel(client: Client) -> None:
    w = world()
    now = timezone.now()
    for _ in range(2):
        chats.chat_start(consortium=w.consortium, question="by web", library_slug="home", now=now)
    chats.chat_start(consortium=w.consortium, question="by text", library_slug="home", now=now, channel=Channel.SMS)

    today = timezone.localdate(now, timezone=statistics.ZoneInfo(w.consortium.timezone))
    found = statistics.report(w.consortium, statistics.period_ending(w.consortium, today))
    by_channel = {c: o.total for c, o, _w in found.per_channel}
    assert by_channel == {"web": 2, "sms": 1}
    assert statistics_rows(found, "channels")[0][:2] == ["channel", "chats"]
    assert [row[:2] for row in statistics_rows(found, "channels")[1:]] == [["web", 2], ["sms", 1]]

    coordinator = make_staff(w.hub, "cora", role="coordinator")
    client.force_login(coordinator.user)
    page = client.get("/coordinator/vr/statistics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "By channel" in html and "Texts (SMS)" in html
    assert client.get("/coordinator/vr/statistics/?csv=channels").content.decode().splitlines()[2].startswith("sms,1,")
    report = client.get("/api/v1/vr/reports/chats.csv")
    assert report.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert sorted(r["channel"] for r in rows) == ["sms", "web", "web"]
