"""The queues a librarian serves: their library's, the shared queues they list, and rota-driven queues
they have shifts on. One answer (routing.selectors.queues_served) for the router's re-routing, the
hello frame, the console's presence overview and /metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from libraries import rota
from routing import metrics
from routing.selectors import librarian_queues, queues_served
from routing.staff import selectors as staff_selectors
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import go_online
from tests.routing.socket_helpers import staff_socket

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


def test_a_rota_only_queue_counts_in_the_presence_overview(quiet: None) -> None:
    w = world()
    now = timezone.now()
    go_online(w["ana"], now)
    overview = staff_selectors.presence_overview(w["ben"], now)
    by_queue = {q["slug"]: [p["username"] for p in q["present"]] for q in overview["queues"]}
    assert by_queue["evening"] == ["ana"]
    assert by_queue["tampa"] == ["ana"]


@pytest.mark.usefixtures("fresh_process")
async def test_a_rota_only_queue_counts_in_the_hello_frame() -> None:
    w = await database_sync_to_async(world)()
    comm = await staff_socket(w["ana"])
    hello = await comm.receive_json_from(timeout=3)
    assert hello["type"] == "hello" and hello["queues"] == ["tampa", "evening"]
    await comm.disconnect()


def test_a_rota_only_queue_counts_in_the_metrics(quiet: None) -> None:
    w = world()
    now = timezone.now()
    go_online(w["ana"], now)
    text = metrics.render(metrics.Figures(now))
    assert 'vr_queue_librarians_present{consortium="served",queue="evening"} 1.0' in text
    assert 'vr_queue_librarians_present{consortium="served",queue="first"} 0.0' in text
