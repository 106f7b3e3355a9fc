"""Issue 13.1: transcript mail is bounded per chat (in the database, under the chat's lock), per client
(consortium.ratelimit), and never once the chat is scrubbed; the mail says who asked and why."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from routing.models import Chat, TranscriptMail
from routing.services import chats, transcripts
from routing.tasks import mail_transcript
from tests.routing.routing_helpers import T0, world

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_address() -> str:
    # Fresh per run: with Redis the per-client counters outlive the test database.
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def ask(client: Client, chat: Chat, token: str, email: str, ip: str) -> Any:
    return client.post(f"/api/v1/chats/{chat.pk}/transcript", data=json.dumps({"email": email}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=ip)


def test_three_mails_to_two_addresses_then_429(client: Client) -> None:
    w = world()
    chat, token = chats.chat_start(consortium=w.consortium, question="Census of 1850?", library_slug="home", now=T0)
    ip = fresh_address()
    assert ask(client, chat, token, "pat@example.org", ip).status_code == 202
    assert ask(client, chat, token, "other@example.org", ip).status_code == 202
    third = ask(client, chat, token, "third@example.org", ip)
    assert third.status_code == 429 and int(third["Retry-After"]) > 0
    assert third.json()["error"]["code"] == "limit_reached" and "2 addresses" in third.json()["error"]["detail"]
    assert ask(client, chat, token, "PAT@example.org", ip).status_code == 202, "an address already mailed"
    fourth = ask(client, chat, token, "pat@example.org", ip)
    assert fourth.status_code == 429 and fourth.json()["error"]["code"] == "limit_reached"
    assert [m.to for m in mail.outbox] == [["pat@example.org"], ["other@example.org"], ["PAT@example.org"]]
    assert TranscriptMail.objects.filter(chat=chat).count() == 3


def test_the_mail_says_who_asked_and_has_no_patron_text_in_its_subject(client: Client) -> None:
    w = world()
    chat, token = chats.chat_start(consortium=w.consortium, question="Buy cheap pills at evil.example",
                                   library_slug="home", name="Free money", now=T0)
    assert ask(client, chat, token, "victim@example.org", fresh_address()).status_code == 202
    [sent] = mail.outbox
    assert sent.subject == f"{w.consortium.name}: your chat transcript"
    assert f"You asked for the transcript of your chat with {w.consortium.name}" in sent.body
    assert "If you did not ask for it, ignore this mail" in sent.body
    assert "Buy cheap pills" in sent.body, "the transcript itself is what was asked for"


def test_the_per_client_limit(client: Client, settings: Any) -> None:
    settings.TRANSCRIPT_MAIL_CLIENT_RATE = "2/h"
    w = world()
    ip = fresh_address()
    started = [chats.chat_start(consortium=w.consortium, question="q", library_slug="home", now=T0) for _ in range(3)]
    codes = [ask(client, chat, token, "pat@example.org", ip).status_code for chat, token in started]
    assert codes == [202, 202, 429]
    refused = ask(client, *started[2], "pat@example.org", ip)
    assert refused.json()["error"]["code"] == "rate_limited" and int(refused["Retry-After"]) > 0
    assert ask(client, *started[2], "pat@example.org", fresh_address()).status_code == 202, "another client"


def test_a_scrubbed_chat_is_never_mailed(client: Client) -> None:
    from routing import privacy

    w = world()
    chat, _token = chats.chat_start(consortium=w.consortium, question="q", library_slug="home", now=T0)
    chats.chat_end(chat.pk, T0, by="patron")
    Chat.objects.filter(pk=chat.pk).update(scrubbed=True)
    with pytest.raises(transcripts.TranscriptRefused) as refused:
        transcripts.transcript_mail_ask(chat_id=chat.pk, email="pat@example.org", now=T0)
    assert refused.value.reason == "scrubbed"
    Chat.objects.filter(pk=chat.pk).update(scrubbed=False)
    transcripts.transcript_mail_ask(chat_id=chat.pk, email="pat@example.org", now=T0)
    privacy.chat_forget(chat.pk, T0)
    assert list(TranscriptMail.objects.filter(chat=chat).values_list("email", flat=True)) == [""], \
        "the count stays, the address goes"
    mail.outbox.clear()
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="asked-before-the-deletion")
    assert mail.outbox == [], "a mail asked for before the chat was deleted is not sent after"


# Concurrent writers need PostgreSQL (SQLite's test database serializes the threads): the embedded suite
# leaves this out (dev.py), the PostgreSQL suite runs it.
@pytest.mark.postgres
def test_two_processes_cannot_both_pass_the_third_mail() -> None:
    """Eight threads (each its own database connection) ask at once for a chat with two mails sent:
    exactly one gets the third."""
    w = world()
    chat, _token = chats.chat_start(consortium=w.consortium, question="q", library_slug="home", now=T0)
    for _ in range(2):
        transcripts.transcript_mail_ask(chat_id=chat.pk, email="pat@example.org", now=T0)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        from django.db import connection as own

        barrier.wait()
        try:
            transcripts.transcript_mail_ask(chat_id=chat.pk, email="pat@example.org", now=T0)
            results.append("sent")
        except transcripts.TranscriptRefused as e:
            results.append(e.reason)
        finally:
            own.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("sent") == 1, results
    assert TranscriptMail.objects.filter(chat=chat).count() == 3
