"""knowledge.search on the engine the suite runs on (SQLite FTS5 embedded, PostgreSQL full-text search
with DATABASE_URL): stemming, prefixes, accents, both languages, ranking, scope and states."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.models import Answer
from knowledge.search import Scope, answers_search, unfinished_word, words
from tests.knowledge.helpers import answer, kb_world

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


# --- the word still being typed (suggestions are asked as the patron types) ---------------------


@pytest.fixture
def typing(w: dict[str, Any]) -> dict[str, Any]:
    """kb_world and answers whose words are longer than their stems, in both languages."""
    c = w["consortium"]
    w["ill"] = answer(c, "Can I borrow a book from another library?",
                      "Ask for an interlibrary loan: we borrow it from a library that has it.",
                      keywords="interlibrary loan, ILL")
    w["pin_es"] = answer(c, "Olvidé mi contraseña", "Pulse «¿Olvidó su contraseña?» en **Mi cuenta**.",
                         language="es", keywords="contraseña, PIN, iniciar sesión")
    w["phone_es"] = answer(c, "¿Puedo pedir renovaciones por teléfono?",
                           "Sí: el servicio está disponible en cualquier sucursal en su horario.", language="es",
                           keywords="renovaciones, teléfono, llamar")
    return w


def test_the_unfinished_word_is_the_last_one_with_nothing_after_it() -> None:
    assert unfinished_word("how do I get an Interlib") == "interlib"
    assert unfinished_word("olvidé mi contraseñ  ") == "contrasen"  # folded; the API strips spaces anyway
    assert unfinished_word("how do I renew?") is None  # punctuation: finished
    assert unfinished_word("my card is 12345") is None and unfinished_word("renew my id") is None
    assert unfinished_word("") is None


@pytest.mark.parametrize("typed", ["renewa", "how do I renewa", "book renewa"])
def test_an_english_word_typed_past_its_stem_already_finds_its_answer(typing: dict[str, Any], typed: str) -> None:
    # "renewal" has the stem "renew", of which "renewa" is no prefix.
    assert found(typing, typed)[0] == typing["renew"]


def test_a_half_typed_word_finds_its_answer_among_the_words_already_typed(typing: dict[str, Any]) -> None:
    assert found(typing, "can I get a book by interlib")[0] == typing["ill"]
    assert found(typing, "can I get a book by interlibrary lo")[0] == typing["ill"]


@pytest.mark.parametrize(("typed", "expected"), [
    ("renovaci", "phone_es"),  # "renovaciones": PostgreSQL's Spanish stem "renov"
    ("renovació", "phone_es"),  # typed with its accent
    ("disponib", "phone_es"),  # "disponible": SQLite's Porter stem "dispon"
    ("olvide mi contrase", "pin_es"),
    ("olvidé mi contraseñ", "pin_es"),
])
def test_a_spanish_word_typed_past_its_stem_finds_its_answer_accents_or_not(typing: dict[str, Any], typed: str,
                                                                           expected: str) -> None:
    assert found(typing, typed, language="es")[0] == typing[expected]


def test_the_unfinished_word_does_not_outweigh_the_words_already_typed(typing: dict[str, Any]) -> None:
    # "library card" names the card; the unfinished "re" is too short to matter, "rene" finds renewals
    # but the two words typed before it keep the card first.
    assert found(typing, "get a library card rene")[0] == typing["card"]
    # A stop word at the end finds no more than the words before it did.
    assert found(typing, "renew my books in the") == found(typing, "renew my books in")


def test_an_edited_answer_is_found_by_its_new_words_half_typed(typing: dict[str, Any]) -> None:
    card = typing["card"]
    assert typing["card"] not in found(typing, "registrati")
    card.keywords = "library card, sign up, register, registration"
    card.save(update_fields=["keywords"])
    assert found(typing, "registrati")[0] == card
    card.delete()
    assert found(typing, "registrati") == []
