"""knowledge.search on the engine the suite runs on (SQLite FTS5 embedded, PostgreSQL full-text search
with DATABASE_URL): stemming, prefixes, accents, both languages, ranking, scope and states."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.models import Answer
from knowledge.search import Scope, answers_search, words
from tests.knowledge.helpers import kb_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w() -> dict[str, Any]:
    return kb_world()


def found(w: dict[str, Any], text: str, *, libraries: Any = (), states: tuple[str, ...] = ("published",),
          language: str = "en", limit: int = 3) -> list[Answer]:
    ids = answers_search(text, Scope(w["consortium"].pk, libraries, states=states), language=language, limit=limit)
    by_id = {a.pk: a for a in Answer.objects.filter(pk__in=ids)}
    return [by_id[i] for i in ids]


def test_words_are_folded_deduplicated_and_bounded() -> None:
    assert words("Renew RENEW my Préstamo, card #12345678!") == ["renew", "my", "prestamo", "card"]
    assert len(words(" ".join(f"word{i}x" for i in range(100)))) == 24
    assert words("!!! ??") == [] and words("") == []


def test_the_best_answer_comes_first_stemmed_and_by_prefix(w: dict[str, Any]) -> None:
    assert found(w, "renewing books")[0] == w["renew"]  # stemmed: renewing ~ renew
    assert found(w, "how can I extend my due date")[0] == w["renew"]  # by its keywords, unlike its title
    assert w["renew"] in found(w, "rene")  # half typed: a prefix of the stem
    assert found(w, "register for a card")[0] == w["card"]


def test_spanish_without_accents_finds_the_spanish_answer_first(w: dict[str, Any]) -> None:
    assert found(w, "como renuevo mis libros", language="es")[0] == w["renew_es"]
    assert found(w, "prestamo vencimiento", language="es")[0] == w["renew_es"]  # préstamo typed without accent


def test_only_published_answers_of_the_consortium_and_the_libraries_in_scope(w: dict[str, Any]) -> None:
    everything = found(w, "renew renewal fax laptop books elsewhere", limit=20)
    assert w["draft"] not in everything and w["retired"] not in everything and w["far"] not in everything
    assert found(w, "parking garage", libraries=[w["alpha"].pk]) == [w["alpha_parking"]]
    assert found(w, "parking garage") == []  # no library in scope: only the consortium's answers
    assert set(found(w, "parking", libraries=None)) == {w["alpha_parking"], w["beta_parking"]}
    # Staff see drafts when they ask for them (the console), never retired answers.
    staff = found(w, "renew laptop", states=("published", "draft"))
    assert staff[0] == w["draft"] and w["retired"] not in staff


def test_nothing_to_search_finds_nothing_and_syntax_cannot_leak(w: dict[str, Any]) -> None:
    assert found(w, "") == [] and found(w, "?!") == []
    # Query syntax of either engine is only words here: quotes, operators and colons are dropped.
    assert found(w, '"renew" OR card:* & !x NEAR(') != []
    assert found(w, "renew", limit=0) == []
