"""The HTTP API: chat creation, the question form, transcripts, survey, trace, report, errors."""

from __future__ import annotations

import csv
import io
import json
import random
import time
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium import ratelimit
from routing.models import Chat, Message, Ticket
from routing.services import chats, offers, presence, sweeps
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "http://127.0.0.1:8000"


@pytest.fixture
def world() -> dict[str, Any]:
    consortium = make_consortium("api", allowed_origins=["https://www.alpha-library.org"])
    make_shared_queue(consortium, "statewide")
    alpha = make_library(consortium, "alpha", zip_codes=["10001"])
    beta = make_library(consortium, "beta")
    other = make_consortium("elsewhere")
    far = make_library(other, "far")
    return {
        "consortium": consortium, "alpha": alpha, "beta": beta,
        "a1": make_staff(alpha, "a1"), "b1": make_staff(beta, "b1"),
        "coord": make_staff(beta, "coord", role="coordinator"),
        "outsider": make_staff(far, "outsider", role="coordinator"),
    }


def post(client: Client, path: str, body: Any, origin: str = OWN, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_ORIGIN=origin,
                       **{f"HTTP_{k.upper()}": v for k, v in headers.items()})


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_start_a_chat_by_library_and_by_zip(client: Client, world: dict[str, Any]) -> None:
    r = post(client, "/api/v1/api/chats", {"question": "Hours on Sunday?", "library": "beta", "name": "Pat"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["home_library"] == {"slug": "beta", "name": "Beta Library"}
    assert body["state"] == "unstaffed" and body["ws"] == "/ws/patron/" and body["token"]
    chat = Chat.objects.get(pk=body["id"])
    assert chat.token_hash != body["token"], "only a hash of the token is stored"
    assert Message.objects.get(chat=chat, seq=1).body == "Hours on Sunday?"
    r = post(client, "/api/v1/api/chats", {"question": "Card?", "zip": "10001"})
    assert r.json()["home_library"]["slug"] == "alpha"
    r = post(client, "/api/v1/api/chats", {"question": "Card?", "zip": "99999"})
    assert r.json()["home_library"] is None


def test_field_errors_are_all_reported_as_json(client: Client, world: dict[str, Any]) -> None:
    r = post(client, "/api/v1/api/chats", {"question": "", "email": "not-an-email", "name": "x" * 101})
    assert r.status_code == 400
    fields = r.json()["error"]["fields"]
    assert set(fields) == {"question", "email", "name"}
    r = post(client, "/api/v1/api/chats", {"question": "q" * 2001})
    assert r.status_code == 400 and "question" in r.json()["error"]["fields"]
    r = client.post("/api/v1/api/chats", data=b"{nope", content_type="application/json", HTTP_ORIGIN=OWN)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    r = post(client, "/api/v1/api/chats", ["a", "list"])
    assert r.status_code == 400


def test_unknown_consortium_or_library_is_404(client: Client, world: dict[str, Any]) -> None:
    assert post(client, "/api/v1/nope/chats", {"question": "hi"}).status_code == 404
    r = post(client, "/api/v1/api/chats", {"question": "hi", "library": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/api/v1/does/not/exist")
    assert r.status_code == 404 and r["Content-Type"].startswith("application/json")


def test_origins_the_consortium_allows_get_cors_others_403(client: Client, world: dict[str, Any]) -> None:
    r = post(client, "/api/v1/api/chats", {"question": "hi"}, origin="https://evil.example.com")
    assert r.status_code == 403
    assert Chat.objects.count() == 0
    r = post(client, "/api/v1/api/chats", {"question": "hi"}, origin="https://www.alpha-library.org")
    assert r.status_code == 201
    assert r["Access-Control-Allow-Origin"] == "https://www.alpha-library.org"
    pre = client.options("/api/v1/api/chats", HTTP_ORIGIN="https://www.alpha-library.org",
                         HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert pre.status_code == 204 and "POST" in pre["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Origin" not in post(client, "/api/v1/api/chats", {"question": "hi"})


def test_chat_starts_are_rate_limited_per_address(client: Client, world: dict[str, Any], settings: Any) -> None:
    settings.CHAT_START_RATE = "2/h"
    # Fresh addresses each run: in CI the counters live in Redis, shared by every process.
    first, second = (f"10.{random.randrange(256)}.{random.randrange(256)}.{n}" for n in (1, 2))

    def start(address: str) -> Any:
        return client.post("/api/v1/api/chats", data=json.dumps({"question": "hi"}), content_type="application/json",
                           HTTP_ORIGIN=OWN, REMOTE_ADDR=address)

    assert [start(first).status_code for _ in range(2)] == [201, 201]
    refused = start(first)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    assert start(second).status_code == 201


def test_question_form_makes_a_ticket_and_mails_the_patron(client: Client, world: dict[str, Any]) -> None:
    started = post(client, "/api/v1/api/chats", {"question": "Anyone?", "library": "alpha"}).json()
    r = post(client, "/api/v1/api/questions", {"question": "Anyone?", "email": "pat@example.org",
                                                "chat": started["id"], "token": started["token"]})
    assert r.status_code == 201
    ticket = Ticket.objects.get(pk=r.json()["id"])
    assert ticket.library == world["alpha"] and ticket.source == "question_form"
    assert [m.to for m in mail.outbox] == [["pat@example.org"]]
    r = post(client, "/api/v1/api/questions", {"question": "x", "email": "pat@example.org",
                                                "chat": started["id"], "token": "wrong"})
    assert r.status_code == 403
    r = post(client, "/api/v1/api/questions", {"question": "x"})
    assert r.status_code == 400 and "email" in r.json()["error"]["fields"]


def _chat_with_conversation(world: dict[str, Any]) -> tuple[Chat, str]:
    now = timezone.now()
    sweeps.process_heartbeat("p", now)
    presence.staff_connected(world["a1"], "chan-a1", "p", now)
    presence.presence_set(world["a1"], "available", now)
    chat, token = chats.chat_start(consortium=world["consortium"], question="Q?", library_slug="alpha",
                                      email="pat@example.org", now=now)
    offers.chat_accept(world["a1"], chat.pk, now)
    chats.message_post(chat.pk, sender="librarian", body="A note", client_id="n", now=now,
                          librarian=world["a1"], internal=True)
    chats.message_post(chat.pk, sender="librarian", body="Answer", client_id="a", now=now,
                          librarian=world["a1"])
    return chat, token


def test_transcript_by_token_hides_internal_notes_and_mails(client: Client, world: dict[str, Any]) -> None:
    chat, token = _chat_with_conversation(world)
    r = client.get(f"/api/v1/chats/{chat.pk}/transcript", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 200
    bodies = [m["body"] for m in r.json()["messages"]]
    assert "Answer" in bodies and "A note" not in bodies
    assert client.get(f"/api/v1/chats/{chat.pk}/transcript", HTTP_AUTHORIZATION="Bearer nope").status_code == 404
    mail.outbox.clear()
    r = client.post(f"/api/v1/chats/{chat.pk}/transcript", data=json.dumps({"email": "pat@example.org"}),
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 202
    assert "Answer" in mail.outbox[0].body and "A note" not in mail.outbox[0].body


def test_transcript_and_trace_access_by_role(world: dict[str, Any]) -> None:
    chat, _ = _chat_with_conversation(world)
    staff = {name: signed_in(name) for name in ("a1", "b1", "coord", "outsider")}
    assert staff["a1"].get(f"/api/v1/chats/{chat.pk}/trace").status_code == 200
    assert staff["coord"].get(f"/api/v1/chats/{chat.pk}/trace").status_code == 200
    assert staff["b1"].get(f"/api/v1/chats/{chat.pk}/trace").status_code == 404
    assert staff["outsider"].get(f"/api/v1/chats/{chat.pk}/trace").status_code == 404
    assert Client().get(f"/api/v1/chats/{chat.pk}/trace").status_code == 404
    assert staff["outsider"].get(f"/api/v1/chats/{chat.pk}/transcript").status_code == 404
    transcript = staff["coord"].get(f"/api/v1/chats/{chat.pk}/transcript").json()
    assert "A note" in [m["body"] for m in transcript["messages"]], "staff see internal notes"
    kinds = [e["kind"] for e in staff["coord"].get(f"/api/v1/chats/{chat.pk}/trace").json()["events"]]
    assert kinds[0] == "created" and "step_entered" in kinds and "offered" in kinds and "accepted" in kinds


def test_survey_once_per_chat(client: Client, world: dict[str, Any]) -> None:
    chat, token = _chat_with_conversation(world)
    path = f"/api/v1/chats/{chat.pk}/survey"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    bad = client.post(path, data=json.dumps({"rating": 9}), content_type="application/json", **auth)
    assert bad.status_code == 400 and "rating" in bad.json()["error"]["fields"]
    ok = client.post(path, data=json.dumps({"rating": 5, "comment": "Great"}), content_type="application/json", **auth)
    assert ok.status_code == 201
    again = client.post(path, data=json.dumps({"rating": 4}), content_type="application/json", **auth)
    assert again.status_code == 409


def test_report_csv_for_coordinators_only(world: dict[str, Any]) -> None:
    chat, _ = _chat_with_conversation(world)
    r = signed_in("coord").get("/api/v1/api/reports/chats.csv?since=2000-01-01")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert [(row["chat"], row["home_library"], row["answering_library"], row["step_answered"]) for row in rows] == [
        (chat.pk, "alpha", "alpha", "local")]
    assert signed_in("a1").get("/api/v1/api/reports/chats.csv").status_code == 403
    assert signed_in("outsider").get("/api/v1/api/reports/chats.csv").status_code == 403
    assert signed_in("coord").get("/api/v1/api/reports/chats.csv?since=yesterday").status_code == 400


def test_healthz_answers_when_database_and_layer_answer(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"database": True, "channel_layer": True}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=12,
)
FIELDS = st.dictionaries(st.sampled_from(["question", "library", "zip", "name", "email", "language", "chat",
                                          "token", "rating", "comment"]), JSONISH, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSONISH, path=st.sampled_from(["/api/v1/api/chats", "/api/v1/api/questions",
                                                   "/api/v1/xx/chats", "/api/v1/chats/nope/survey",
                                                   "/api/v1/chats/nope/transcript"]))
def test_fuzzed_bodies_never_get_a_500_nor_html(client: Client, world: dict[str, Any], settings: Any,
                                                 body: Any, path: str) -> None:
    settings.CHAT_START_RATE = "100000/m"
    r = client.post(path, data=json.dumps(body), content_type="application/json", HTTP_ORIGIN=OWN)
    assert r.status_code < 500
    assert r["Content-Type"].startswith("application/json")


def test_past_the_chats_message_rate_the_http_fallback_answers_429_and_stores_nothing(
        client: Client, world: dict[str, Any]) -> None:
    chat, token = _chat_with_conversation(world)
    limit, window = ratelimit.parse_rate(ratelimit.CHAT_MESSAGE.rate)
    if time.time() % window > window - 10:  # counted in fixed windows: not across one's end
        time.sleep(window + 1 - time.time() % window)
    url = f"/api/v1/chats/{chat.pk}/messages"
    for i in range(limit):
        r = post(client, url, {"body": f"line {i}", "client_id": f"p{i}"}, AUTHORIZATION=f"Bearer {token}")
        assert r.status_code == 201, r.content
    refused = post(client, url, {"body": "one too many", "client_id": "late"}, AUTHORIZATION=f"Bearer {token}")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= window
    assert not Message.objects.filter(chat=chat, client_id="late").exists()
    # A line sent again is answered with the stored one, not refused (it is not a new line)...
    again = post(client, url, {"body": "line 0", "client_id": "p0"}, AUTHORIZATION=f"Bearer {token}")
    assert again.status_code == 200 and again.json()["seq"] == Message.objects.get(chat=chat, client_id="p0").seq
    # ...and the librarian is never counted.
    _message, created = chats.message_post(chat.pk, sender="librarian", body="Still here", client_id="l9",
                                           now=timezone.now(), librarian=world["a1"])
    assert created


def test_a_texting_patrons_lines_are_never_refused_for_rate(world: dict[str, Any]) -> None:
    chat, _token = _chat_with_conversation(world)
    limit, _window = ratelimit.parse_rate(ratelimit.CHAT_MESSAGE.rate)
    now = timezone.now()
    for i in range(limit + 5):  # as routing's texting path stores them: not counted (a text refused is lost)
        _message, created = chats.message_post(chat.pk, sender="patron", body=f"text {i}", client_id=f"t{i}",
                                               now=now)
        assert created
