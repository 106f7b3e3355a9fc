"""The demo's SMS simulator (texting/simulator.py): a phone in a page, through the real webhook code and
the real sending code, against the simulator's own stand-in for Twilio's Messages resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from routing.models import Chat
from routing.services import chats, offers
from tests.factories import make_staff
from tests.live.stack import free_port
from tests.routing.routing_helpers import go_online
from tests.texting.test_texting import HOME_NUMBER, texting_world
from texting import simulator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def simulated(settings: Any) -> Iterator[None]:
    settings.SMS_SIMULATOR = True
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "simulator-test"
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{free_port()}"
    server = simulator.start_outbox()
    yield
    server.shutdown()
    server.server_close()


def test_the_simulator_is_off_unless_switched_on(client: Client, settings: Any) -> None:
    settings.SMS_SIMULATOR = False
    assert client.get("/sms/simulator/").status_code == 404
    assert client.post("/sms/simulator/send", {"phone": "+15555550123", "to": HOME_NUMBER, "body": "hi"}) \
        .status_code == 404


def test_a_simulated_phone_texts_a_librarian_and_gets_the_reply(client: Client, simulated: None) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    page = client.get("/sms/simulator/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Simulator." in html and "No real text is sent" in html and HOME_NUMBER in html

    sent = client.post("/sms/simulator/send", {"phone": "+15555550123", "to": HOME_NUMBER, "body": "Hello?"})
    assert sent.status_code == 200 and sent.json() == {"status": 200}
    chat = Chat.objects.get()
    assert chat.channel == "sms" and chat.home_library == w.home
    offers.chat_accept(lena, chat.pk, timezone.now())
    chats.message_post(chat.pk, sender="librarian", body="Hi! How can I help?", client_id="c1", now=timezone.now(),
                       librarian=lena)
    texts = client.get("/sms/simulator/texts", {"phone": "+15555550123"}).json()["texts"]
    assert [(t["direction"], t["body"]) for t in texts][-2:] == [("in", "Hello?"), ("out", "Hi! How can I help?")]
    assert texts[-1]["from_"] == HOME_NUMBER

    refused = client.post("/sms/simulator/send", {"phone": "5550123", "to": HOME_NUMBER, "body": "x"})
    assert refused.status_code == 400
