"""The knowledge base over HTTP: the public answers pages, the suggestions API and self-served, the staff
pages (save as answer, publish) and the console's answers beside a chat."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.test import Client

from knowledge.models import Answer, AnswerState
from routing.models import Chat
from routing.outcomes import count
from tests.factories import PASSWORD
from tests.knowledge.helpers import kb_world

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "http://testserver"
SITE = "https://www.alpha-library.org"


@pytest.fixture
def w() -> dict[str, Any]:
    return kb_world()


def signed_in(username: str) -> Client:
    c = Client()
    assert c.login(username=username, password=PASSWORD)
    return c


def test_public_page_lists_and_searches_published_answers_in_both_languages(client: Client,
                                                                           w: dict[str, Any]) -> None:
    page = client.get("/answers/kb/").content.decode()
    assert "How do I renew my library books?" in page and "How do I get a library card?" in page
    assert "¿Cómo renuevo" not in page  # the English page lists the English answers
    for hidden in ("laptop", "by fax", "elsewhere"):
        assert hidden not in page
    # The consortium's page shows every library's answers, each under its library's name.
    assert "Where do I park at Beta Library?" in page and '<p class="kb-scope">Beta Library</p>' in page
    spanish = client.get("/answers/kb/?lang=es").content.decode()
    assert "¿Cómo renuevo mis libros?" in spanish and "Respuestas a preguntas frecuentes" in spanish
    found = client.get("/answers/kb/?q=extend+due+date").content.decode()
    assert "How do I renew my library books?" in found and "library card" not in found
    library = client.get("/answers/kb/alpha/?q=parking").content.decode()
    assert "Alpha Library?" in library and "Beta Library?" not in library
    assert client.get("/answers/kb/nowhere/").status_code == 404


def test_an_answer_has_its_own_address_with_sanitised_markdown(client: Client, w: dict[str, Any]) -> None:
    Answer.objects.filter(pk=w["card"].pk).update(body='<script>alert(1)</script> [x](javascript:alert(1)) **ID**')
    page = client.get(f"/answers/kb/a/{w['card'].pk}/").content.decode()
    assert "<strong>ID</strong>" in page and "<script>alert" not in page and 'href="javascript' not in page
    renew = client.get(f"/answers/kb/a/{w['renew'].pk}/").content.decode()
    assert 'href="https://lib.example.org/renew" rel="noopener noreferrer"' in renew
    for hidden in ("draft", "retired", "far"):
        assert client.get(f"/answers/kb/a/{w[hidden].pk}/").status_code == 404


def test_suggestions_are_three_published_answers_for_allowed_sites(client: Client, w: dict[str, Any]) -> None:
    r = client.get("/api/v1/kb/answers", {"q": "renew my books", "lang": "en"}, HTTP_ORIGIN=SITE)
    assert r.status_code == 200 and r["Access-Control-Allow-Origin"] == SITE
    answers = r.json()["results"]
    assert answers[0] == {
        "id": str(w["renew"].pk), "question": "How do I renew my library books?", "language": "en", "library": None,
        "answer": "Sign in to My Account and press Renew. See renewals (https://lib.example.org/renew).",
        "snippet": "Sign in to My Account and press Renew. See renewals (https://lib.example.org/renew).",
        "url": f"http://testserver/answers/kb/a/{w['renew'].pk}/"}
    assert len(answers) <= 3 and "patron" not in json.dumps(answers).lower()
    assert {a["id"] for a in answers}.isdisjoint({str(w[k].pk) for k in ("draft", "retired", "far")})
    one = client.get("/api/v1/kb/answers", {"q": "renew books card", "limit": "1"}).json()["results"]
    assert len(one) == 1
    # The consortium's and the library's own answers only: another library's never.
    parking = client.get("/api/v1/kb/answers", {"q": "parking", "library": "alpha"}).json()["results"]
    assert [(a["question"], a["library"]) for a in parking] == [("Where do I park at Alpha Library?", "alpha")]
    assert client.get("/api/v1/kb/answers", {"q": "parking"}).json()["results"] == []
    assert client.get("/api/v1/kb/answers", {"q": "renew"}, HTTP_ORIGIN="https://evil.example").status_code == 403
    bad = client.get("/api/v1/kb/answers", {"q": "x" * 501, "lang": "fr", "limit": "0"})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"q", "lang", "limit"}
    assert client.get("/api/v1/kb/answers", {"q": "parking", "library": "nowhere"}).status_code == 404
    assert client.get("/api/v1/kb/answers", {"q": ""}).json() == {"results": []}


def test_searches_are_limited_per_client_address(client: Client, w: dict[str, Any], settings: Any) -> None:
    settings.ANSWERS_SEARCH_RATE = "3/m"
    # Fresh addresses each run: in CI the counters live in Redis, shared by every process.
    first, second = (f"10.{random.randrange(256)}.{random.randrange(256)}.{n}" for n in (1, 2))
    statuses = [client.get("/api/v1/kb/answers", {"q": "renew"}, REMOTE_ADDR=first).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/api/v1/kb/answers", {"q": "renew"}, REMOTE_ADDR=second).status_code == 200


def test_this_answered_my_question_over_http_counts_as_self_served(client: Client, w: dict[str, Any]) -> None:
    make = w["consortium"]
    r = client.post("/api/v1/kb/chats", {"question": "Can I renew online?", "library": "alpha"},
                    content_type="application/json", HTTP_ORIGIN=OWN)
    assert r.status_code == 201, r.content
    chat_id, token = r.json()["id"], r.json()["token"]
    Chat.objects.filter(pk=chat_id).update(state="queued")  # waiting, as when a librarian is present
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", "content_type": "application/json"}
    assert client.post(f"/api/v1/chats/{chat_id}/self-served", {"answer": w["draft"].pk}, **auth).status_code == 400
    assert client.post(f"/api/v1/chats/{chat_id}/self-served", {"answer": "x"}, **auth).status_code == 400
    assert client.post(f"/api/v1/chats/{chat_id}/self-served", {"answer": w["renew"].pk},
                       HTTP_AUTHORIZATION="Bearer wrong", content_type="application/json").status_code == 404
    r = client.post(f"/api/v1/chats/{chat_id}/self-served", {"answer": str(w["renew"].pk)}, **auth)
    assert r.status_code == 200 and r.json()["state"] == "ended"
    assert count(Chat.objects.filter(consortium=make))[None].self_served == 1
    again = client.post(f"/api/v1/chats/{chat_id}/self-served", {"answer": w["renew"].pk}, **auth)
    assert again.status_code == 409


def test_save_as_answer_from_a_chat_then_the_library_admin_publishes(w: dict[str, Any]) -> None:
    chat = Chat.objects.create(consortium=w["consortium"], home_library=w["alpha"], token_hash="x",
                               question="Hi, I'm Zed Quill (zed@example.net): how do I renew?", patron_name="Zed Quill",
                               patron_email="zed@example.net", state="ended", answered_by=w["librarian"],
                               librarian=w["librarian"], created_at="2026-12-01T15:00:00Z",
                               arrived_at="2026-12-01T15:00:00Z", last_activity_at="2026-12-01T15:00:00Z")
    lib = signed_in("lib-a")
    form = lib.get(f"/staff/answers/new?chat={chat.pk}").content.decode()
    assert "how do I renew?" in form and "Zed" not in form and "zed@example.net" not in form
    assert signed_in("outsider").get(f"/staff/answers/new?chat={chat.pk}").status_code == 404
    r = lib.post("/staff/answers/new", {"question": "How do I renew?", "body": "Press Renew.", "language": "en",
                                        "keywords": "renew", "scope": "alpha", "review_on": ""})
    assert r.status_code == 302
    saved = Answer.objects.get(question="How do I renew?")
    assert (saved.state, saved.library, saved.owner) == ("draft", w["alpha"], w["librarian"])
    refused = lib.post("/staff/answers/new", {"question": "", "body": "", "language": "en", "scope": "beta"})
    assert refused.status_code == 400 and b"aria-invalid" in refused.content
    assert lib.post(f"/staff/answers/{saved.pk}/", {"action": "published"}).status_code == 400  # not theirs to publish
    admin = signed_in("admin-a")
    assert admin.post(f"/staff/answers/{saved.pk}/", {"action": "published"}).status_code == 302
    saved.refresh_from_db()
    assert saved.state == AnswerState.PUBLISHED
    listing = admin.get("/staff/answers/?q=renew").content.decode()
    assert "How do I renew?" in listing


def test_the_console_gets_the_chats_answers_home_library_first_drafts_marked(w: dict[str, Any]) -> None:
    chat = Chat.objects.create(consortium=w["consortium"], home_library=w["alpha"], token_hash="x",
                               question="renew a laptop, and where is the parking garage?", state="active",
                               librarian=w["librarian"], answered_by=w["librarian"], created_at="2026-12-01T15:00:00Z",
                               arrived_at="2026-12-01T15:00:00Z", last_activity_at="2026-12-01T15:00:00Z")
    r = signed_in("lib-a").get(f"/staff/api/chats/{chat.pk}/answers")
    assert r.status_code == 200
    answers = r.json()["answers"]
    assert answers[0]["question"] == "Where do I park at Alpha Library?" and answers[0]["home"]
    draft = next(a for a in answers if a["question"] == "How do I renew a laptop loan?")
    assert draft["draft"] and draft["url"] is None
    assert all(a["question"] != "Where do I park at Beta Library?" for a in answers)
    assert all(a["state"] != "retired" for a in answers)
    renew = next(a for a in answers if a["question"] == "How do I renew my library books?")
    assert "renewals (https://lib.example.org/renew)" in renew["text"] and "**" not in renew["text"]
    assert signed_in("outsider").get(f"/staff/api/chats/{chat.pk}/answers").status_code == 404


def test_a_spanish_librarian_reads_the_states_and_the_refusals_in_spanish(w: dict[str, Any]) -> None:
    """The answers' states (the model's choices) and an answer's field errors follow the librarian's language."""
    w["librarian"].language = "es"
    w["librarian"].save(update_fields=["language"])
    lib = signed_in("lib-a")
    listing = lib.get("/staff/answers/").content.decode()
    assert "Publicada" in listing and ">Published<" not in listing
    refused = lib.post("/staff/answers/new", {"question": "", "body": "", "language": "xx", "scope": "beta",
                                              "review_on": "tomorrow"})
    assert refused.status_code == 400
    page = refused.content.decode()
    for spanish in ("Escriba la pregunta como la haría un usuario.", "Escriba la respuesta.",
                    "Elija inglés o español.", "Use una fecha como 2027-06-30."):
        assert spanish in page
    assert "Write the answer." not in page
    # An English colleague reads the same refusal in English.
    english = signed_in("admin-a").post("/staff/answers/new", {"question": "", "body": "x", "language": "en"})
    assert "Write the question as a patron would ask it." in english.content.decode()
