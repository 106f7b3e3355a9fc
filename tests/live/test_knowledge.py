"""The knowledge base through the production stack (daphne, the timer, PostgreSQL, Redis): PostgreSQL's
full-text search for real (English and Spanish configurations, prefixes, accents folded, ranking, scope)
behind the suggestions API a patron's page calls, and "This answered my question" ending a waiting chat
as self-served, its offer withdrawn from the librarian's console and the outcome counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, librarian, patron, start_chat, world

WORLD = world("kbl", libraries=[{"slug": "kb-a"}, {"slug": "kb-b"}],
              staff=[{"username": "kbla", "library": "kb-a"}])

ANSWERS = [
    # (library, language, state, question, keywords, body)
    (None, "en", "published", "How do I renew my library books?", "renew, renewal, extend, due date",
     "Sign in to My Account and press Renew."),
    (None, "en", "published", "How do I get a library card?", "library card, sign up, register",
     "Bring a photo ID and proof of address."),
    (None, "es", "published", "¿Cómo renuevo mis libros?", "renovar, préstamo, vencimiento",
     "Entre en Mi cuenta y pulse Renovar."),
    ("kb-a", "en", "published", "Where do I park at Library A?", "parking, garage", "The garage on Main Street."),
    ("kb-b", "en", "published", "Where do I park at Library B?", "parking, garage", "Behind the building."),
    (None, "en", "draft", "How do I renew a laptop?", "renew, laptop", "A draft."),
]


def _insert(stack: Stack) -> None:
    for library, language, state, question, keywords, body in ANSWERS:
        lib = f"(SELECT id FROM libraries_library WHERE slug = '{library}')" if library else "NULL"
        stack.sql("INSERT INTO knowledge_answer (consortium_id, library_id, question, body, language, keywords, "
                  "state, review_on, created_at, updated_at) "
                  f"SELECT id, {lib}, '{question}', '{body}', '{language}', '{keywords}', '{state}', "
                  "'2027-06-01', now(), now() FROM consortium_consortium WHERE slug = 'kbl'")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=1, timer=1, worker=0, beat=0) as s:
        _insert(s)
        yield s


def suggest(stack: Stack, q: str, **params: str) -> list[str]:
    r = httpx.get(f"{stack.base()}/api/v1/kbl/answers", params={"q": q, **params}, timeout=10)
    assert r.status_code == 200, r.text
    return [a["question"] for a in r.json()["results"]]


def test_postgresql_finds_answers_by_stem_prefix_accent_and_language(stack: Stack) -> None:
    # The column the search reads is PostgreSQL's own, generated from the answer.
    assert stack.sql("SELECT count(*) FROM knowledge_answer WHERE search_vector @@ to_tsquery('english', 'renew')") \
        == "2"
    assert suggest(stack, "renewing my books")[0] == "How do I renew my library books?"  # stemmed
    assert suggest(stack, "can I extend the due date")[0] == "How do I renew my library books?"  # keywords
    assert "How do I get a library card?" in suggest(stack, "regis")  # half typed: a prefix
    assert suggest(stack, "como renuevo mis libros", lang="es")[0] == "¿Cómo renuevo mis libros?"
    assert suggest(stack, "prestamo", lang="es") == ["¿Cómo renuevo mis libros?"]  # préstamo without its accent
    assert "How do I renew a laptop?" not in suggest(stack, "renew laptop")  # a draft is never shown to patrons
    assert suggest(stack, "parking garage", library="kb-a") == ["Where do I park at Library A?"]
    assert suggest(stack, "parking garage", library="kb-b") == ["Where do I park at Library B?"]


async def _self_served(stack: Stack) -> tuple[str, list[dict[str, Any]]]:
    base = stack.base()
    lib, _, _ = await librarian(base, "kbla", PASSWORD)
    chat = await start_chat(base, "kbl", "How do I renew my books?", library="kb-a", name="Quentin Example")
    await lib.expect("offer", chat=chat["id"], timeout=15)
    pat = await patron(base, chat)
    await pat.expect("state", state="queued", timeout=10)
    answer_id = stack.sql("SELECT id FROM knowledge_answer WHERE question = 'How do I renew my library books?'")
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"{base}/api/v1/chats/{chat['id']}/self-served", json={"answer": int(answer_id)},
                         headers={"Authorization": f"Bearer {chat['token']}", "Origin": base})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ended"
    await pat.expect("state", state="ended", timeout=10)
    await lib.expect("offer_withdrawn", chat=chat["id"], timeout=10)
    seen = list(lib.seen)
    await pat.close()
    await lib.close()
    return str(chat["id"]), seen


def test_this_answered_my_question_ends_the_waiting_chat_as_self_served(stack: Stack) -> None:
    chat_id, _ = asyncio.run(_self_served(stack))
    assert stack.sql(f"SELECT state, end_reason FROM routing_chat WHERE id = '{chat_id}'") == "ended|self_served"
    assert stack.sql(f"SELECT count(*) FROM routing_traceevent WHERE chat_id = '{chat_id}' "
                     "AND kind = 'self_served'") == "1"
    counted = stack.manage("shell", "-c", "from routing.outcomes import count; from routing.models import Chat; "
                           f"print(count(Chat.objects.filter(pk='{chat_id}'))[None].self_served)")
    assert counted.strip().splitlines()[-1] == "1"
