"""Every word a patron reads after the page is in the patron's language (issue 18.4): the chat's system
lines (joined, transfers, a librarian lost, endings) and the mails (question received, the answer, the
transcript), for a patron who chose Spanish; an English patron's stay English. Through the HTTP API
and the services, as the patron's page and the console use them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from routing.models import Chat, Message, Ticket
from routing.patron.i18n import patron_language
from routing.services import chats, followups, offers, presence, sweeps, transfers
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "http://127.0.0.1:8000"


@pytest.fixture
def world() -> dict[str, Any]:
    consortium = make_consortium("lang", name="Pregunte")
    statewide = make_shared_queue(consortium, "statewide", name="Statewide")
    alpha = make_library(consortium, "alpha", name="Alpha Library")
    return {"consortium": consortium, "alpha": alpha,
            "ana": make_staff(alpha, "ana", queues=[statewide]), "ben": make_staff(alpha, "ben", queues=[statewide])}


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_ORIGIN=OWN)


def system_lines(chat_id: str) -> list[str]:
    return list(Message.objects.filter(chat_id=chat_id, sender="system").order_by("seq").values_list("body", flat=True))


def online(*people: Any) -> None:
    now = timezone.now()
    sweeps.process_heartbeat("p", now)
    for who in people:
        presence.staff_connected(who, f"chan-{who.pk}", "p", now)
        presence.presence_set(who, "available", now)


@pytest.mark.parametrize(("language", "expected"), [
    ("es-MX", ["Ana, Alpha Library, se unió al chat.",
               "Lo estamos transfiriendo a Ben (Alpha Library). Por favor, quédese aquí.",
               "Ben, Alpha Library, se unió al chat.",
               "El bibliotecario terminó el chat."]),
    ("", ["Ana, Alpha Library, joined the chat.",
          "You are being transferred to Ben (Alpha Library). Please stay here.",
          "Ben, Alpha Library, joined the chat.",
          "The librarian ended the chat."]),
])
def test_the_chats_system_lines_are_in_the_patrons_language(client: Client, world: dict[str, Any], language: str,
                                                             expected: list[str]) -> None:
    online(world["ana"], world["ben"])
    body = {"question": "¿Tienen pases para museos?", "library": "alpha"} | ({"language": language} if language else {})
    started = post(client, "/api/v1/lang/chats", body).json()
    now = timezone.now()
    offers.chat_accept(world["ana"], started["id"], now)
    transfers.chat_transfer(world["ana"], started["id"], now, to_librarian="ben")
    offers.chat_accept(world["ben"], started["id"], now)
    chats.chat_end(started["id"], now, by="librarian", librarian=world["ben"])
    assert system_lines(started["id"]) == expected


def test_a_lost_librarian_is_told_in_spanish(world: dict[str, Any]) -> None:
    online(world["ana"])
    now = timezone.now()
    chat, _ = chats.chat_start(consortium=world["consortium"], question="q", library_slug="alpha", language="es",
                               now=now)
    offers.chat_accept(world["ana"], chat.pk, now)
    presence.staff_disconnected(f"chan-{world['ana'].pk}", now)
    assert presence.librarian_lost(world["ana"].pk, now + timezone.timedelta(minutes=5))  # the grace ran out
    assert "Su bibliotecario se desconectó. Estamos buscándole otro bibliotecario; por favor, quédese aquí." in (
        system_lines(chat.pk))


def test_the_question_its_answer_and_the_transcript_are_mailed_in_spanish(client: Client,
                                                                         world: dict[str, Any]) -> None:
    r = post(client, "/api/v1/lang/questions", {"question": "¿Abren el domingo?", "email": "lector-es@example.org",
                                               "name": "Pat", "library": "alpha", "language": "es"})
    assert r.status_code == 201
    ticket = Ticket.objects.get(pk=r.json()["id"])
    [received] = mail.outbox
    assert received.subject == "Pregunte: recibimos su pregunta"
    assert received.body.startswith("Hola, Pat:\n\nAlpha Library recibió su pregunta y le responderá por correo")
    assert f"Su pregunta:\n¿Abren el domingo?\n\nReferencia: {ticket.pk}" in received.body
    followups.followup_answer(world["ana"], ticket.pk, "Sí, de 13 a 17.", timezone.now())
    answer = mail.outbox[1]
    assert answer.subject == "Pregunte: una respuesta a su pregunta"
    assert "Nuestra respuesta:\nSí, de 13 a 17." in answer.body

    online(world["ana"])
    started = post(client, "/api/v1/lang/chats", {"question": "q", "library": "alpha", "language": "es",
                                                  "email": "pat@example.org"}).json()
    offers.chat_accept(world["ana"], started["id"], timezone.now())
    chats.message_post(started["id"], sender="patron", body="Hola", client_id="p", now=timezone.now())
    mail.outbox.clear()
    r = client.post(f"/api/v1/chats/{started['id']}/transcript", data=json.dumps({"email": "pat@example.org"}),
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {started['token']}")
    assert r.status_code == 202
    [transcript] = mail.outbox
    assert transcript.subject == "Pregunte: la transcripción de su chat"
    assert transcript.body.startswith("Pidió la transcripción de su chat con Pregunte")
    assert "Usted: Hola" in transcript.body and "se unió al chat." in transcript.body


def test_an_english_patrons_mail_stays_english(client: Client, world: dict[str, Any]) -> None:
    post(client, "/api/v1/lang/questions",
         {"question": "Open Sunday?", "email": "reader-en@example.org", "library": "alpha"})
    assert mail.outbox[0].subject == "Pregunte: we have your question"
    assert mail.outbox[0].body.startswith("Hello,\n\nAlpha Library has your question and will answer by email.")


def test_a_patrons_language_is_one_we_have_or_english() -> None:
    assert [patron_language(c) for c in ("es", "ES-mx", "en-GB", "fr", "", None)] == [
        "es", "es", "en", "en", "en", "en"]
    assert Chat._meta.get_field("language").max_length == Ticket._meta.get_field("language").max_length
