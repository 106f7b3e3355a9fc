"""GET /api/v1/<c>/availability (routing/availability.py): what the launcher says before the patron types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from django.core.signals import request_started
from django.test import Client
from django.utils import timezone

from libraries.models import Queue
from routing import availability as availability_of
from routing.availability import availability
from tests.asgi_requests import request
from tests.factories import set_weekly_hours
from tests.routing.routing_helpers import T0, World, at, go_online, held_by_lena, staff, world

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def nothing_kept() -> Iterator[None]:
    availability_of.forget()
    yield
    availability_of.forget()


@pytest.fixture
def w(quiet: None) -> World:
    return world(allowed_origins=["https://library.example.org"])


def test_available_when_a_librarian_has_room(w: World) -> None:
    go_online(staff(w.home, "lena"), at(-60))
    found = availability(w.consortium, "home", T0)
    assert (found.state, found.local, found.opens_at, found.wait_seconds) == ("available", True, None, 0)
    assert found.message("en") == "A librarian is available."
    assert found.message("es") == "Hay un bibliotecario disponible."
    # Another library's patron: nobody of theirs, nobody on the statewide queue; then someone there.
    assert availability(w.consortium, "partner", T0).state == "closed"
    go_online(staff(w.hub, "hal", queues=[w.statewide]), at(-30))
    elsewhere = availability(w.consortium, "partner", T0)
    assert (elsewhere.state, elsewhere.local) == ("available", False)


def test_busy_when_everyone_who_could_answer_is_at_capacity(w: World) -> None:
    lena, _chat = held_by_lena(w)
    lena.capacity = 1
    lena.save(update_fields=["capacity"])
    found = availability(w.consortium, "home", at(10))
    assert (found.state, found.local) == ("busy", True)
    # One slot, nobody waiting before this patron, a chat takes 10 minutes when there is no history.
    assert found.wait_seconds == 600
    assert found.message("en") == "Busy: about 10 minutes."
    assert found.message("es") == "Ocupado: unos 10 minutos."


def test_closed_says_when_the_plan_next_opens(w: World) -> None:
    tuesday_nine = datetime(2026, 3, 3, 9, 0, tzinfo=NY)
    for queue in Queue.objects.filter(consortium=w.consortium):
        set_weekly_hours(queue, {1: [(9 * 60, 17 * 60)]})  # Tuesdays 9 to 5 only
    go_online(staff(w.hub, "hal"), at(-60))  # present, but every queue is closed on Monday
    found = availability(w.consortium, "home", T0)
    assert (found.state, found.local, found.wait_seconds) == ("closed", False, None)
    assert found.opens_at == tuesday_nine
    assert found.message("en") == "Closed, opens Tuesday 9:00."
    assert found.message("es") == "Cerrado, abre martes 9:00."
    # A plan that never opens again has no time to give.
    Queue.objects.filter(consortium=w.consortium).update(always_open=False)
    for queue in Queue.objects.filter(consortium=w.consortium):
        queue.weekly.all().delete()
    never = availability(w.consortium, "home", T0)
    assert (never.state, never.opens_at) == ("closed", None)
    assert "Leave your question" in never.message("en")


def test_the_endpoint_answers_the_contract_and_keeps_the_answer(w: World, client: Client,
                                                                django_assert_num_queries: object) -> None:
    # A Spanish chat goes to a librarian who speaks Spanish (but for the last step): lena does.
    go_online(staff(w.home, "lena", languages=["en", "es"]), timezone.now() - timedelta(seconds=5))
    url = "/api/v1/vr/availability?library=home&lang=es"
    r = client.get(url, HTTP_ORIGIN="https://library.example.org")
    assert r.status_code == 200
    assert r.json() == {"state": "available", "local": True, "opens_at": None, "wait_seconds": 0,
                        "message": "Hay un bibliotecario disponible."}
    assert r["Access-Control-Allow-Origin"] == "https://library.example.org"
    assert "max-age=5" in r["Cache-Control"]
    with django_assert_num_queries(0):  # type: ignore[operator]
        again = client.get(url, HTTP_ORIGIN="https://library.example.org")
    assert again.json() == r.json() and again["Access-Control-Allow-Origin"] == "https://library.example.org"
    # A site the consortium has not allowed is refused, whether the answer is kept or not.
    assert client.get(url, HTTP_ORIGIN="https://evil.example.com").status_code == 403
    assert client.get("/api/v1/vr/availability", HTTP_ORIGIN="https://evil.example.com").status_code == 403


def test_bad_input_gets_a_clear_error(w: World, client: Client) -> None:
    r = client.get("/api/v1/vr/availability?lang=fr")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"lang": ["one of en, es"]}
    assert client.get("/api/v1/vr/availability?library=%00x").status_code == 400
    assert client.get("/api/v1/vr/availability?library=nowhere").json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/nobody/availability").status_code == 404
    assert client.post("/api/v1/vr/availability").status_code == 405
    # No library: the consortium's own plan (its first shared queue), nobody there.
    r = client.get("/api/v1/vr/availability")
    assert r.status_code == 200 and r.json()["state"] == "closed" and r.json()["local"] is False


def test_names_no_staff(w: World, client: Client) -> None:
    go_online(staff(w.home, "lena"), datetime.now(UTC) - timedelta(seconds=5))
    body = client.get("/api/v1/vr/availability?library=home").content.decode()
    assert "lena" not in body.lower()



async def _get(path: str, origin: str) -> tuple[int, dict[bytes, bytes], bytes]:
    from consortium.asgi import application

    return await request(application, "GET", path, headers=[(b"origin", origin.encode()), (b"host", b"testserver")])


def test_a_kept_answer_is_served_before_django_exactly_as_django_serves_it(w: World, client: Client) -> None:
    path = "/api/v1/vr/availability?library=home&lang=en"
    by_django = client.get(path, HTTP_ORIGIN="https://library.example.org")
    assert by_django.status_code == 200 and availability_of.cached("vr", "home", "en") is not None
    started: list[object] = []

    def count(**_: object) -> None:
        started.append(1)

    request_started.connect(count)
    try:
        status, headers, body = async_to_sync(_get)(path, "https://library.example.org")
    finally:
        request_started.disconnect(count)
    assert not started, "Django never saw the request"
    assert (status, body) == (200, by_django.content)
    assert headers == {k.lower().encode(): v.encode() for k, v in by_django.headers.items()}, \
        "the very headers the view gives (names are case-blind)"
