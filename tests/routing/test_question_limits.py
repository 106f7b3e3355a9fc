"""Issue 13.2: the offline question form mails a confirmation to any address typed, so it is bounded.
Per client address the question is refused (429); per address mailed and per consortium only the
confirmation mail is skipped, and the question is kept (the answer says so)."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from routing.models import Ticket
from tests.factories import make_consortium

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_address() -> str:
    # Fresh per run: with Redis the counters outlive the test database.
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def fresh_slug() -> str:
    # A consortium of its own: the per-consortium counter (in memory, or in Redis) outlives one test.
    return str(make_consortium(f"q-{uuid.uuid4().hex[:8]}").slug)


def fresh_email() -> str:
    return f"q-{uuid.uuid4().hex[:10]}@example.org"


def ask(client: Client, slug: str, email: str, ip: str, question: str = "Do you lend telescopes?") -> Any:
    return client.post(f"/api/v1/{slug}/questions", data=json.dumps({"question": question, "email": email}),
                       content_type="application/json", REMOTE_ADDR=ip)


def test_per_client_the_question_is_refused(client: Client, settings: Any) -> None:
    settings.QUESTION_CLIENT_RATE = "2/h"
    slug = fresh_slug()
    ip = fresh_address()
    assert [ask(client, slug, fresh_email(), ip).status_code for _ in range(2)] == [201, 201]
    refused = ask(client, slug, fresh_email(), ip, question="the third")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    assert not Ticket.objects.filter(question="the third").exists(), "refused: nothing stored, the patron is told"
    assert ask(client, slug, fresh_email(), fresh_address()).status_code == 201, "another client"


def test_per_address_the_question_is_kept_and_the_mail_skipped(client: Client, settings: Any) -> None:
    settings.QUESTION_MAIL_EMAIL_RATE = "1/h"
    slug = fresh_slug()
    email = fresh_email()
    first = ask(client, slug, email, fresh_address(), question="first")
    assert first.status_code == 201 and first.json()["mailed"] is True
    second = ask(client, slug, email.upper(), fresh_address(), question="second")
    assert second.status_code == 201 and second.json()["mailed"] is False
    assert "not sent" in second.json()["detail"]
    assert Ticket.objects.get(pk=second.json()["id"]).patron_email == email.upper(), "the question is kept"
    assert [m.to for m in mail.outbox] == [[email]]
    other = fresh_email()
    assert ask(client, slug, other, fresh_address()).json()["mailed"] is True
    assert [m.to for m in mail.outbox] == [[email], [other]]


def test_per_consortium_the_question_is_kept_and_the_mail_skipped(client: Client, settings: Any) -> None:
    settings.QUESTION_MAIL_CONSORTIUM_RATE = "2/h"
    slug = fresh_slug()
    answers = [ask(client, slug, fresh_email(), fresh_address()) for _ in range(3)]
    assert [(r.status_code, r.json()["mailed"]) for r in answers] == [(201, True), (201, True), (201, False)]
    assert Ticket.objects.filter(source="question_form").count() == 3
    assert len(mail.outbox) == 2


def test_the_confirmation_says_why_it_was_sent(client: Client) -> None:
    slug = fresh_slug()
    assert ask(client, slug, fresh_email(), fresh_address()).status_code == 201
    [sent] = mail.outbox
    assert sent.subject == f"{slug.title()}: we have your question"
    assert "If it was not you, ignore this mail." in sent.body
