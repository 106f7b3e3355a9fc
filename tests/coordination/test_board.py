"""The live board's snapshot, the coverage heat map's figures, and the coordinator socket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coordination import board, consumers, coverage
from libraries import rota
from routing import events
from routing.models import Chat
from routing.services import chats, offers, presence
from routing.ws_urls import websocket_urlpatterns
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import go_online, patron_joins

pytestmark = pytest.mark.django_db(transaction=True)

NY = ZoneInfo("America/New_York")
SHIFT_START = datetime(2026, 3, 9, 18, 0, tzinfo=NY)  # a Monday
NOW = (SHIFT_START + timedelta(minutes=10)).astimezone(UTC)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)


def a_world() -> dict[str, Any]:
    c = make_consortium("alpha")
    statewide = make_shared_queue(c, "statewide")
    tampa = make_library(c, "tampa", name="Tampa Library")
    orlando = make_library(c, "orlando", name="Orlando Library", always_open=False)
    w = {"consortium": c, "statewide": statewide, "tampa": tampa, "orlando": orlando,
         "ana": make_staff(tampa, "ana", queues=[statewide]), "ben": make_staff(orlando, "ben"),
         "cy": make_staff(orlando, "cy"), "dee": make_staff(orlando, "dee")}
    shift = rota.shift_create(statewide, NOW - timedelta(days=7), weekday=0, start_minute=18 * 60,
                              end_minute=22 * 60, min_librarians=3)
    for who in ("ana", "cy", "dee"):
        rota.shift_assign(shift, w[who], NOW - timedelta(days=7))
    return w


def test_the_snapshot_shows_who_is_present_what_waits_and_alerts() -> None:
    w = a_world()
    go_online(w["ana"], NOW - timedelta(minutes=20))
    go_online(w["dee"], NOW - timedelta(minutes=20))
    presence.presence_set(w["dee"], "away", NOW - timedelta(minutes=3))  # away for 3 minutes: not yet an alert
    waiting, _ = chats.chat_start(consortium=w["consortium"], question="q", library_slug="tampa", language="es",
                                     now=NOW - timedelta(seconds=90))
    patron_joins(waiting, NOW - timedelta(seconds=90))
    answered, _ = chats.chat_start(consortium=w["consortium"], question="q", library_slug="tampa",
                                      now=NOW - timedelta(seconds=60))
    patron_joins(answered, NOW - timedelta(seconds=60))
    offers.chat_accept(w["ana"], answered.pk, NOW - timedelta(seconds=50))
    Chat.objects.create(consortium=w["consortium"], question="q", token_hash="x", state="unstaffed",
                        created_at=NOW - timedelta(hours=2), arrived_at=NOW - timedelta(hours=2),
                        last_activity_at=NOW)
    Chat.objects.create(consortium=w["consortium"], question="q", token_hash="x", state="abandoned",
                        created_at=NOW - timedelta(days=1), arrived_at=NOW - timedelta(days=1),
                        last_activity_at=NOW)  # yesterday: not today's

    with CaptureQueriesContext(connection) as queries:
        snap = board.board_snapshot(w["consortium"], NOW)
    assert len(queries) <= 16, "bounded, whatever the size of the consortium"
    assert snap["present_count"] == 1
    assert [(lib["name"], [p["name"] for p in lib["present"]]) for lib in snap["libraries"]] == [
        ("Tampa Library", ["Ana"])]
    assert snap["libraries"][0]["present"][0]["active"] == 1
    assert [(c["home_library"], c["step"], c["wait_seconds"], c["language"]) for c in snap["waiting"]] == [
        ("Tampa Library", "consortium", 90, "es")]  # nobody at Tampa speaks Spanish: the last step
    assert [(c["librarian"], c["library"], c["home_library"]) for c in snap["active"]] == [
        ("Ana", "Tampa Library", "Tampa Library")]
    assert snap["today"] == {"date": "2026-03-09", "arrived": 3, "answered": 1, "abandoned": 0, "withdrawn": 0,
                             "unstaffed": 1, "open": 1, "self_served": 0}
    statewide = next(q for q in snap["queues"] if q["slug"] == "statewide")
    assert statewide["open"] and statewide["present"] == 1
    assert "orlando" not in {q["slug"] for q in snap["queues"]}, "a quiet local queue is left out"
    [shift] = snap["shifts"]
    assert (shift["min"], shift["present"], [c["name"] for c in shift["crew"]]) == (3, 1, ["Ana", "Cy", "Dee"])
    assert snap["alerts"] == [
        {"kind": "absent", "librarian": "Cy", "library": "Orlando Library", "queue": "Statewide",
         "since": SHIFT_START.astimezone(UTC).isoformat(), "minutes": 10},
        {"kind": "understaffed", "queue": "Statewide", "present": 1, "min": 3},
    ]
    later = board.board_snapshot(w["consortium"], NOW + timedelta(minutes=3))
    assert [a.get("librarian") for a in later["alerts"] if a["kind"] == "absent"] == ["Cy", "Dee"]
    assert board.without_clock(snap) != board.without_clock(later)
    assert board.without_clock(snap) == board.without_clock(board.board_snapshot(w["consortium"], NOW))


def test_coverage_counts_scheduled_librarians_against_demand_and_marks_gaps() -> None:
    w = a_world()
    now = datetime(2026, 3, 16, 9, 0, tzinfo=NY)
    plan = [{"name": "consortium", "queues": ["statewide"], "wait": None}]
    other_plan = [{"name": "local", "queues": ["tampa"], "wait": None}]
    arrivals = [((3, 9, 19, 5), plan), ((3, 2, 19, 50), plan), ((3, 9, 19, 30), plan), ((3, 10, 10, 0), plan),
                ((3, 10, 11, 0), other_plan), ((2, 20, 10, 0), plan)]  # the last: older than two weeks
    for (month, day, hour, minute), route in arrivals:
        arrived = datetime(2026, month, day, hour, minute, tzinfo=NY)
        Chat.objects.create(consortium=w["consortium"], question="q", token_hash="x", state="ended", plan=route,
                            created_at=arrived, arrived_at=arrived, last_activity_at=arrived)
    found = coverage.coverage(w["consortium"], now.astimezone(UTC), weeks=2)
    [statewide] = found.queues
    monday_7pm = statewide.cells[(0, 19)]
    assert (monday_7pm.scheduled, monday_7pm.needed, monday_7pm.demand, monday_7pm.gap) == (3, 3, 1.5, False)
    tuesday_10 = statewide.cells[(1, 10)]
    assert (tuesday_10.scheduled, tuesday_10.demand, tuesday_10.gap) == (0, 0.5, True)
    assert statewide.cells[(1, 11)].demand == 0, "that chat could not reach the statewide queue"
    assert statewide.gaps == 1 and found.peak_demand == 1.5
    assert statewide.cells[(0, 17)].scheduled == 0 and statewide.cells[(0, 21)].scheduled == 3


async def test_the_coordinator_socket_sends_the_board_and_then_its_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 0.05)
    w = await database_sync_to_async(a_world)()
    other = await database_sync_to_async(make_consortium)("beta")
    coordinator = await database_sync_to_async(make_staff)(w["tampa"], "cora", role="coordinator")
    librarian = await database_sync_to_async(make_staff)(w["tampa"], "lib")

    async def socket(user: Any, query: str) -> WebsocketCommunicator:
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/coordinator/{query}",
                                     headers=[(b"origin", b"http://127.0.0.1:8000")])
        comm.scope["user"] = await database_sync_to_async(lambda: user.user)()
        connected, _ = await comm.connect()
        assert connected
        return comm

    comm = await socket(coordinator, "?consortium=alpha")
    first = await comm.receive_json_from(timeout=5)
    assert first["type"] == "board" and first["consortium"]["slug"] == "alpha" and first["waiting"] == []
    await database_sync_to_async(chats.chat_start)(consortium=w["consortium"], question="q",
                                                      library_slug="tampa", now=timezone.now())
    await database_sync_to_async(go_online)(w["ben"], timezone.now())  # someone present: the chat waits
    while True:
        frame = await comm.receive_json_from(timeout=5)
        if frame["waiting"] or frame["today"]["arrived"]:
            break
    assert frame["today"]["arrived"] == 1
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] in ("pong", "board")
    await comm.disconnect()

    for user, query in ((librarian, "?consortium=alpha"), (coordinator, f"?consortium={other.slug}")):
        refused = await socket(user, query)
        assert (await refused.receive_json_from(timeout=5))["code"] == "forbidden"
        assert (await refused.receive_output(timeout=5))["code"] == 4403
