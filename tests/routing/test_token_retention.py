"""Issue 13.12: a patron's token dies with the chat's retention. The nightly scrub clears the token's
hash, and every path a token opens (the HTTP API, the fallback transport, files, the question form)
then answers as for a wrong token: 404 (the question form, which names the chat in its body: 403)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from routing import privacy
from routing.models import Chat
from routing.services import chats
from tests.routing.routing_helpers import T0, world

pytestmark = pytest.mark.django_db(transaction=True)


def test_past_retention_every_use_of_the_token_is_a_404(client: Client, quiet: None) -> None:
    w = world()
    chat, token = chats.chat_start(consortium=w.consortium, question="Census of 1850?", library_slug="home",
                                   email="pat@example.org", now=T0)
    chats.chat_end(chat.pk, T0 + timedelta(minutes=5), by="patron")
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = f"/api/v1/chats/{chat.pk}"
    assert client.get(f"{url}/transcript", **auth).status_code == 200, "within the retention the link works"

    assert privacy.chats_scrub_expired(T0 + timedelta(days=w.consortium.transcript_retention_days + 1)) == 1
    assert Chat.objects.get(pk=chat.pk).token_hash == ""

    def post(path: str, body: object) -> int:
        return client.post(path, data=json.dumps(body), content_type="application/json", **auth).status_code

    answers = {
        "transcript": client.get(f"{url}/transcript", **auth).status_code,
        "transcript mail": post(f"{url}/transcript", {"email": "pat@example.org"}),
        "events": client.get(f"{url}/events?after=0", **auth).status_code,
        "message": post(f"{url}/messages", {"body": "hello?", "client_id": "c1"}),
        "typing": post(f"{url}/typing", {}),
        "end": post(f"{url}/end", {}),
        "survey": post(f"{url}/survey", {"rating": 5}),
        "file": client.get(f"{url}/files/1", **auth).status_code,
        "delete": client.delete(url, **auth).status_code,
    }
    assert answers == dict.fromkeys(answers, 404)
    for what in ("transcript", "events"):
        r = client.get(f"{url}/{what}", **auth)
        assert r.json()["error"] == {"code": "not_found", "detail": "no such chat"}, "a clear 404, as documented"
    question = client.post(f"/api/v1/{w.consortium.slug}/questions", content_type="application/json",
                           data=json.dumps({"question": "x", "email": "pat@example.org", "chat": chat.pk,
                                            "token": token}))
    assert question.status_code == 403, "as for a wrong token"


def test_chats_scrubbed_before_the_change_lose_their_token_too() -> None:
    """The data migration: a chat scrubbed while scrubbing still kept the hash."""
    import importlib

    from django.apps import apps

    w = world()
    chat, _token = chats.chat_start(consortium=w.consortium, question="old", library_slug="home", now=T0)
    live, _ = chats.chat_start(consortium=w.consortium, question="new", library_slug="home", now=T0)
    Chat.objects.filter(pk=chat.pk).update(scrubbed=True)
    migration = importlib.import_module("routing.migrations.0007_scrubbed_chats_lose_their_token")
    migration.forget_tokens(apps, None)
    assert Chat.objects.get(pk=chat.pk).token_hash == ""
    assert Chat.objects.get(pk=live.pk).token_hash != "", "a chat not scrubbed keeps its token"
