"""A staff member's language (issue 18.4): chosen once on any staff page, kept on their profile, and then
every staff and coordinator page, the board's script and socket, and their alert mail follow it; others,
and the patron pages, are not affected."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from alerts.evaluate import alerts_evaluate
from consortium.models import AlertSettings
from libraries.models import StaffProfile
from routing.ws_urls import websocket_urlpatterns
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db(transaction=True)


def world() -> dict[str, StaffProfile]:
    c = make_consortium("habla", name="Habla")
    make_shared_queue(c, "statewide")
    home = make_library(c, "home", always_open=False)
    AlertSettings.objects.create(consortium=c, queue_unstaffed_minutes=1)
    return {"lucia": make_staff(home, "lucia", role="coordinator"),
            "cora": make_staff(home, "cora", role="coordinator")}


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def board_strings(html: str) -> dict[str, str]:
    found = re.search(r'<script id="board-strings" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found[1]))


def test_a_staff_member_chooses_spanish_and_every_staff_page_follows_them_alone() -> None:
    people = world()
    lucia = signed_in("lucia")
    page = lucia.get("/coordinator/habla/")
    assert '<html lang="en">' in page.content.decode() and "Live board" in page.content.decode()

    r = lucia.post("/staff/language", {"language": "es", "next": "/coordinator/habla/"})
    assert (r.status_code, r["Location"]) == (302, "/coordinator/habla/")
    people["lucia"].refresh_from_db()
    assert people["lucia"].language == "es"
    page = lucia.get("/coordinator/habla/")
    html = page.content.decode()
    assert page["Content-Language"] == "es" and '<html lang="es">' in html
    assert "Tablero en vivo" in html and "Cerrar sesión" in html and "Live board" not in html
    assert board_strings(html)["nobody_waiting"] == "Nadie está esperando."
    rota = lucia.get("/coordinator/habla/rota/").content.decode()
    assert "Consola" in rota and "Añadir turno" in rota and "Add shift" not in rota
    assert "Cobertura" in lucia.get("/coordinator/habla/coverage/").content.decode()
    statistics = lucia.get("/coordinator/habla/statistics/").content.decode()
    assert "Chats por resultado" in statistics and "sin atender" in statistics
    assert "Seguimientos" in lucia.get("/staff/tickets/").content.decode()  # the staff pages' bar
    console = lucia.get("/staff/").content.decode()
    found = re.search(r'<script id="console-strings" type="application/json">(.*?)</script>', console, re.S)
    assert found is not None and json.loads(found[1])["Available"] == "Disponible"  # the console's script
    assert "Sus chats" in console

    cora = signed_in("cora").get("/coordinator/habla/")  # another coordinator: still English
    assert "Live board" in cora.content.decode() and cora["Content-Language"] == "en"
    ask = lucia.get("/ask/habla/", HTTP_ACCEPT_LANGUAGE="en")  # the patron's page: the patron's language
    assert '<html lang="en">' in ask.content.decode()


def test_the_choice_is_checked_and_the_way_back_stays_on_this_site() -> None:
    people = world()
    lucia = signed_in("lucia")
    r = lucia.post("/staff/language", {"language": "fr", "next": "https://evil.example/"})
    assert (r.status_code, r["Location"]) == (302, "/staff/")
    people["lucia"].refresh_from_db()
    assert people["lucia"].language == ""
    assert lucia.get("/staff/language").status_code == 405
    assert Client().post("/staff/language", {"language": "es"}).status_code == 302  # nobody signed in: nothing kept


async def test_the_board_socket_words_alerts_in_the_coordinators_language() -> None:
    people = await database_sync_to_async(world)()
    lucia = people["lucia"]
    lucia.language = "es"
    await database_sync_to_async(lucia.save)()
    now = timezone.now()
    await database_sync_to_async(alerts_evaluate)(lucia.library.consortium, now - timedelta(minutes=2))
    await database_sync_to_async(alerts_evaluate)(lucia.library.consortium, now)

    async def raised(profile: StaffProfile) -> list[str]:
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/coordinator/?consortium=habla",
                                     headers=[(b"origin", b"http://127.0.0.1:8000")])
        comm.scope["user"] = await database_sync_to_async(lambda: profile.user)()
        assert (await comm.connect())[0]
        frame = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return [a["text"] for a in frame["raised"]]

    assert await raised(lucia) == ["Statewide está abierta sin nadie disponible para atender sus chats."]
    assert await raised(people["cora"]) == ["Statewide is open with nobody available to take its chats."]
