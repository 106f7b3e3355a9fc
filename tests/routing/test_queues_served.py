"""The queues a librarian serves: their library's, the shared queues they list, and rota-driven queues
they have shifts on. One answer (routing.selectors.queues_served) for the router's re-routing, the
hello frame, the console's presence overview and /metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from libraries import rota
from routing import events, metrics, process
from routing.selectors import librarian_queues, queues_served
from routing.services import presence, sweeps
from routing.staff import selectors as staff_selectors
from routing.ws_urls import websocket_urlpatterns
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db(transaction=True)


def world() -> dict[str, Any]:
    consortium = make_consortium("served")
    second = make_shared_queue(consortium, "second", position=2)
    first = make_shared_queue(consortium, "first", position=1)
    evening = make_shared_queue(consortium, "evening", rota_driven=True, position=3)
    tampa = make_library(consortium, "tampa")
    now = timezone.now()
    shift = rota.shift_create(evening, now - timedelta(days=7), weekday=0, start_minute=18 * 60, end_minute=22 * 60)
    ana = make_staff(tampa, "ana")  # serves the evening queue on the rota only
    rota.shift_assign(shift, ana, now - timedelta(days=7))
    ben = make_staff(tampa, "ben", queues=[second, first])
    return {"consortium": consortium, "evening": evening, "ana": ana, "ben": ben}


def test_the_library_then_listed_queues_in_order_then_rota_queues() -> None:
    w = world()
    assert librarian_queues(w["ana"]) == ["tampa", "evening"]
    assert librarian_queues(w["ben"]) == ["tampa", "first", "second"]
    assert queues_served([w["ana"], w["ben"]]) == {w["ana"].pk: ["tampa", "evening"],
                                                   w["ben"].pk: ["tampa", "first", "second"]}


def test_a_rota_only_queue_counts_in_the_presence_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)
    w = world()
    now = timezone.now()
    sweeps.process_heartbeat("p1", now)
    presence.staff_connected(w["ana"], "staff-ana", "p1", now)
    presence.presence_set(w["ana"], "available", now)
    overview = staff_selectors.presence_overview(w["ben"], now)
    by_queue = {q["slug"]: [p["username"] for p in q["present"]] for q in overview["queues"]}
    assert by_queue["evening"] == ["ana"]
    assert by_queue["tampa"] == ["ana"]


async def test_a_rota_only_queue_counts_in_the_hello_frame() -> None:
    process.reset_for_tests()
    try:
        w = await database_sync_to_async(world)()
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/staff/",
                                     headers=[(b"origin", b"http://127.0.0.1:8000")])
        comm.scope["user"] = await database_sync_to_async(lambda: w["ana"].user)()
        connected, _ = await comm.connect()
        assert connected
        hello = await comm.receive_json_from(timeout=3)
        assert hello["type"] == "hello" and hello["queues"] == ["tampa", "evening"]
        await comm.disconnect()
    finally:
        process.reset_for_tests()


def test_a_rota_only_queue_counts_in_the_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)
    w = world()
    now = timezone.now()
    sweeps.process_heartbeat("p1", now)
    presence.staff_connected(w["ana"], "staff-ana", "p1", now)
    presence.presence_set(w["ana"], "available", now)
    text = metrics.render(metrics.Figures(now))
    assert 'vr_queue_librarians_present{consortium="served",queue="evening"} 1.0' in text
    assert 'vr_queue_librarians_present{consortium="served",queue="first"} 0.0' in text
