"""Alerts to coordinators (alerts/), with an injected clock: each condition, raised after its delay,
mailed to the consortium's coordinators through the Celery task (eager here; the live test runs the
real worker), throttled to one mail per condition per hour, and shown on the live board with its link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import translation

from alerts.evaluate import alerts_evaluate, raised_alerts
from alerts.models import Alert
from alerts.tasks import alerts_evaluate_all
from consortium.models import AlertSettings
from coordination import board
from libraries import rota
from routing import events
from routing.models import Chat, Ticket
from routing.services import presence
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import go_online

pytestmark = pytest.mark.django_db(transaction=True)

NY = ZoneInfo("America/New_York")
MONDAY_9 = datetime(2026, 3, 9, 9, 0, tzinfo=NY)
T0 = MONDAY_9.astimezone(UTC)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)


def a_world() -> dict[str, Any]:
    """A consortium whose only open queue is Statewide (always open), a closed library, a coordinator."""
    c = make_consortium("alpha", name="Alpha Ask")
    statewide = make_shared_queue(c, "statewide")
    tampa = make_library(c, "tampa", name="Tampa Library", always_open=False)
    return {"consortium": c, "statewide": statewide, "tampa": tampa,
            "cora": make_staff(tampa, "cora", role="coordinator"),
            "ana": make_staff(tampa, "ana", queues=[statewide])}


def kinds(consortium: Any) -> list[str]:
    return [a.key for a in raised_alerts(consortium)]


def test_a_queue_unstaffed_is_raised_after_its_minutes_mailed_once_an_hour_and_dropped_when_staffed() -> None:
    w = a_world()
    c = w["consortium"]
    assert alerts_evaluate(c, T0) == [] and kinds(c) == []  # seen, not yet raised
    alerts_evaluate(c, T0 + timedelta(minutes=9, seconds=59))
    assert kinds(c) == [] and mail.outbox == []
    alerts_evaluate(c, T0 + timedelta(minutes=10))
    assert kinds(c) == ["queue:statewide"]
    [sent] = mail.outbox
    assert sent.to == ["cora@example.org"] and sent.subject == "Alpha Ask: 1 alert(s) need a coordinator"
    assert "Statewide is open with nobody available to take its chats." in sent.body
    assert "http://127.0.0.1:8000/coordinator/alpha/hours/statewide/" in sent.body  # where to fix it
    for minute in (11, 30, 69):  # still unstaffed: one mail per condition per hour
        alerts_evaluate(c, T0 + timedelta(minutes=minute))
    assert len(mail.outbox) == 1
    alerts_evaluate(c, T0 + timedelta(minutes=70))
    assert len(mail.outbox) == 2

    go_online(w["ana"], T0 + timedelta(minutes=71))  # someone available: the alert ends
    alerts_evaluate(c, T0 + timedelta(minutes=72))
    assert kinds(c) == [] and board.board_snapshot(c, T0 + timedelta(minutes=72))["raised"] == []
    presence.presence_set(w["ana"], "away", T0 + timedelta(minutes=80))
    alerts_evaluate(c, T0 + timedelta(minutes=80))
    alerts_evaluate(c, T0 + timedelta(minutes=89))
    assert kinds(c) == [], "counted afresh when it comes back"
    alerts_evaluate(c, T0 + timedelta(minutes=90))
    assert kinds(c) == ["queue:statewide"]
    assert len(mail.outbox) == 2, "mailed 20 minutes ago: not again within the hour"


def test_the_board_shows_raised_alerts_with_their_link_and_mail_can_be_switched_off() -> None:
    w = a_world()
    c = w["consortium"]
    AlertSettings.objects.create(consortium=c, mail=False, queue_unstaffed_minutes=1)
    alerts_evaluate(c, T0)
    alerts_evaluate(c, T0 + timedelta(minutes=1))
    snap = board.board_snapshot(c, T0 + timedelta(minutes=1))
    assert snap["raised"] == [{"kind": "queue_unstaffed", "key": "queue:statewide",
                               "text": "Statewide is open with nobody available to take its chats.",
                               "link": "/coordinator/alpha/hours/statewide/",
                               "fix": "Staff the queue or change its hours",
                               "since": (T0 + timedelta(minutes=1)).isoformat()}]
    assert mail.outbox == []
    with translation.override("es"):  # the board's words follow the reader's language
        [raised] = board.board_snapshot(c, T0 + timedelta(minutes=1))["raised"]
    assert raised["text"] == "Statewide está abierta sin nadie disponible para atender sus chats."


def test_a_rota_queue_with_nobody_on_shift_links_to_the_rota() -> None:
    w = a_world()
    c = w["consortium"]
    w["statewide"].rota_driven = True
    w["statewide"].save()
    go_online(w["ana"], T0)  # present, but not on shift: a rota-driven queue does not offer her its chats
    alerts_evaluate(c, T0)
    alerts_evaluate(c, T0 + timedelta(minutes=10))
    [alert] = raised_alerts(c)
    assert (alert.key, alert.link) == ("queue:statewide", "/coordinator/alpha/rota/")


def ended_chat(consortium: Any, state: str, ended_at: datetime) -> None:
    Chat.objects.create(consortium=consortium, question="q", token_hash="x", state=state, created_at=ended_at,
                        arrived_at=ended_at, ended_at=ended_at, last_activity_at=ended_at)


def test_chats_ending_unstaffed_above_the_rate() -> None:
    w = a_world()
    c = w["consortium"]
    go_online(w["ana"], T0 - timedelta(hours=2))  # Statewide is staffed: only the rate is in question
    for minutes in (10, 20):
        ended_chat(c, "unstaffed", T0 - timedelta(minutes=minutes))
    ended_chat(c, "ended", T0 - timedelta(minutes=30))
    ended_chat(c, "unstaffed", T0 - timedelta(minutes=90))  # outside the last hour
    alerts_evaluate(c, T0)
    assert kinds(c) == [], "2 of 3: above 25%, but fewer than the 3 chats that make a trend"
    ended_chat(c, "unstaffed", T0 - timedelta(minutes=5))
    alerts_evaluate(c, T0)
    [alert] = raised_alerts(c)
    assert alert.detail == {"unstaffed": 3, "total": 4, "percent": 75}
    assert alert.link == "/coordinator/alpha/coverage/"
    assert "3 of the 4 chats that ended in the last hour (75%) ended unstaffed" in mail.outbox[0].body
    AlertSettings.objects.create(consortium=c, unstaffed_percent=80)
    alerts_evaluate(c, T0 + timedelta(minutes=1))
    assert kinds(c) == []


def test_a_shift_librarian_not_signed_in_ten_minutes_after_the_start() -> None:
    w = a_world()
    c = w["consortium"]
    go_online(w["ana"], T0 - timedelta(hours=1))
    dee = make_staff(w["tampa"], "dee")
    shift = rota.shift_create(w["statewide"], T0 - timedelta(days=7), weekday=0, start_minute=9 * 60,
                              end_minute=13 * 60)
    for who in (w["ana"], dee):
        rota.shift_assign(shift, who, T0 - timedelta(days=7))
    alerts_evaluate(c, T0 + timedelta(minutes=9))
    assert kinds(c) == []
    alerts_evaluate(c, T0 + timedelta(minutes=10))
    [alert] = raised_alerts(c)
    assert alert.key == f"shift:{shift.pk}:2026-03-09:{dee.pk}" and alert.link == "/coordinator/alpha/rota/"
    assert "Dee (Tampa Library) has not signed in for the Statewide shift that started at 09:00." in mail.outbox[0].body
    go_online(dee, T0 + timedelta(minutes=12))
    alerts_evaluate(c, T0 + timedelta(minutes=12))
    assert kinds(c) == []


def test_a_policy_page_past_its_review_date() -> None:
    w = a_world()
    c = w["consortium"]
    go_online(w["ana"], T0)
    tampa = w["tampa"]
    tampa.policy, tampa.policy_reviewed_on = "# Cards\n\nFree.", date(2025, 3, 8)
    tampa.save()
    make_library(c, "fresh", policy="# Fresh", policy_reviewed_on=date(2026, 1, 1), always_open=False)
    make_library(c, "nopolicy", always_open=False)  # no policy page: nothing to review
    alerts_evaluate(c, T0)
    [alert] = raised_alerts(c)
    assert alert.key == f"policy:{tampa.pk}" and alert.link == f"/admin/libraries/library/{tampa.pk}/change/"
    assert "The policy page of Tampa Library is past its review date (last reviewed 2025-03-08)." in mail.outbox[0].body
    c.policy_review_limit_days = 400
    c.save()
    alerts_evaluate(c, T0 + timedelta(minutes=1))
    assert kinds(c) == []


def test_follow_ups_overdue() -> None:
    w = a_world()
    c = w["consortium"]
    go_online(w["ana"], T0)

    def ticket(hours: int, status: str = "new") -> Ticket:
        return Ticket.objects.create(consortium=c, library=w["tampa"], question="q", patron_email="p@example.net",
                                     source="question_form", status=status, created_at=T0 - timedelta(hours=hours))

    ticket(47)
    ticket(60, status="answered")
    alerts_evaluate(c, T0)
    assert kinds(c) == []
    late = ticket(49, status="in_progress")
    alerts_evaluate_all(at=T0.isoformat())  # the beat task, with the instant injected
    [alert] = raised_alerts(c)
    assert (alert.detail, alert.link) == ({"count": 1, "hours": 48}, "/staff/tickets/")
    assert "1 follow-up has been open longer than 48 hours." in mail.outbox[0].body
    late.status = "answered"
    late.save()
    alerts_evaluate(c, T0 + timedelta(minutes=1))
    assert kinds(c) == []


def test_each_coordinator_reads_the_mail_in_their_language_and_other_consortia_hear_nothing() -> None:
    w = a_world()
    c = w["consortium"]
    lucia = make_staff(w["tampa"], "lucia", role="coordinator")
    lucia.language = "es"
    lucia.save()
    other = make_consortium("beta")
    make_staff(make_library(other, "miami"), "olga", role="coordinator")
    AlertSettings.objects.create(consortium=c, queue_unstaffed_minutes=1)
    alerts_evaluate(c, T0)
    alerts_evaluate(c, T0 + timedelta(minutes=1))
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {"cora@example.org", "lucia@example.org"}
    spanish = by_address["lucia@example.org"]
    assert spanish.subject == "Alpha Ask: 1 alerta(s) necesitan a un coordinador"
    assert "Statewide está abierta sin nadie disponible para atender sus chats." in spanish.body
    assert Alert.objects.filter(consortium=other).count() == 0


async def test_the_embedded_default_evaluates_every_minute_in_its_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """No beat in the embedded default: manage.py serve runs alerts.embedded.evaluate_forever in its loop."""
    import asyncio

    from channels.db import database_sync_to_async

    from alerts import embedded

    w = await database_sync_to_async(a_world)()
    await database_sync_to_async(AlertSettings.objects.create)(consortium=w["consortium"], queue_unstaffed_minutes=0)
    monkeypatch.setattr(embedded, "INTERVAL_SECONDS", 0.05)
    loop = asyncio.create_task(embedded.evaluate_forever())
    try:
        for _ in range(100):
            if await database_sync_to_async(kinds)(w["consortium"]):
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    assert await database_sync_to_async(kinds)(w["consortium"]) == ["queue:statewide"]
    assert [m.to for m in mail.outbox] == [["cora@example.org"]]  # mailed at once, as in-process tasks run
