"""Finding answers: one function, `answers_search`, over whichever engine the deployment runs.

PostgreSQL (production): the generated tsvector columns (english or spanish configuration by the
answer's language, accents folded, the question weighted above keywords above the text) and their
GIN indexes; the patron's words are asked for in each answer's own configuration, each word as a
prefix (`card:*`), so a half-typed "rene" already finds "renewals". Two phases, so that a word found
in thousands of answers costs little: the answers whose question or keywords match, the best
CANDIDATES of them by `search_head` alone, re-ranked by `ts_rank` over the whole answer
(`search_vector`, normalised by length); only when fewer than asked match there, the answers whose
text matches fill the rest.

SQLite (the embedded default): the FTS5 table `knowledge_answer_fts` (Porter stemming, accents
folded), each word asked for whole and as a prefix, ranked by `bm25` with the same column weights,
in the same two phases (a column filter on question and keywords first).

The word still being typed (`unfinished_word`): patrons see suggestions while they type, so the last
word is often partial, and a partial word longer than its stem ("renewa", "renovaci") is a prefix of
no stem. It is also asked, as a prefix, of the answers' unstemmed words (migration 0003:
`search_head_words` and `search_words`, the answer's language's stop words dropped; the FTS5 table
`knowledge_answer_words`, unicode61 without Porter), in the same two phases, and they only fill in:
an answer that the stemmed reading of that word already matches gains nothing more from it, so a
word is never counted twice and the words already typed keep their weight.

Both: any word may match (OR), the ranking decides; an answer in the asker's language ranks above
an equal one in the other; only the scope's answers (the consortium's own and the libraries named)
in the states named are considered. The tables are read with one statement, so a search costs one
round trip.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

# A patron's chat can be long; the first words say what it is about, and every word costs time.
MAX_WORDS = 24
# Words this short are asked for whole: as a prefix "id" would find every "idea".
MIN_PREFIX = 3
# The answers whose question or keywords match best, re-ranked with their text (PostgreSQL's first phase).
CANDIDATES = 50
# An answer in the other language ranks as if it matched this much less.
OTHER_LANGUAGE = 0.8

_WORD = re.compile(r"\w+", re.UNICODE)
_LAST_WORD = re.compile(r"(\w+)\s*$", re.UNICODE)

# Column weights, question > keywords > text: PostgreSQL's D, C, B, A order, and FTS5's bm25 arguments.
_PG_WEIGHTS = "{0.1, 0.2, 0.5, 1.0}"
_FTS_WEIGHTS = (10.0, 5.0, 1.0)


@dataclass(frozen=True)
class Scope:
    """Which answers a search may return: the consortium's own (no library) always; a library's only
    when `libraries` names it (None: every library's)."""

    consortium_id: int
    libraries: Sequence[int] | None = ()
    states: Sequence[str] = ("published",)


def fold(text: str) -> str:
    """Lower case without accents, as both indexes store words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The distinct words of `text`, folded, in order, at most MAX_WORDS; digits-only words dropped
    (a card or phone number finds nothing and should not be sent anywhere)."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(fold(text)):
        w = w.strip("_")
        if len(w) < 2 or w.isdigit():
            continue
        seen.setdefault(w, None)
        if len(seen) == MAX_WORDS:
            break
    return list(seen)


def unfinished_word(text: str) -> str | None:
    """The word the patron may still be typing: the last word of `text` when nothing but spaces follows
    it (the ask page and the API strip those, so a finished word looks the same; asking it as a prefix
    too costs nothing but a little time). None after punctuation ("renewals?" is finished), for a word
    shorter than MIN_PREFIX (as a prefix "id" would find every "idea") and for digits."""
    last = _LAST_WORD.search(fold(text))
    word = last.group(1).strip("_") if last else ""
    return word if len(word) >= MIN_PREFIX and not word.isdigit() else None


def answers_search(text: str, scope: Scope, *, language: str = "en", limit: int = 3) -> list[int]:
    """The ids of the answers that best match `text`, best first; [] when it has no words."""
    found = words(text)
    if not found or limit <= 0:
        return []
    # Beyond MAX_WORDS the words are not asked at all, the unfinished one neither.
    partial = unfinished_word(text)
    partial = partial if partial in found else None
    if connection.vendor == "postgresql":
        return _postgres(found, partial, scope, language, limit)
    return _sqlite(found, partial, scope, language, limit)


def _scope_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a scope over `knowledge_answer a`, with named parameters (both engines)."""
    values: dict[str, Any] = {"consortium": scope.consortium_id}

    def listed(name: str, items: Sequence[Any]) -> str:
        values.update({f"{name}{i}": item for i, item in enumerate(items)})
        return ", ".join(f"%({name}{i})s" for i in range(len(items)))

    sql = f"a.consortium_id = %(consortium)s AND a.state IN ({listed('state', list(scope.states))})"
    if scope.libraries is not None:
        libraries = list(scope.libraries)
        if libraries:
            sql += f" AND (a.library_id IS NULL OR a.library_id IN ({listed('library', libraries)}))"
        else:
            sql += " AND a.library_id IS NULL"
    return sql, values


def _prefer(language: str) -> tuple[str, dict[str, Any]]:
    """The factor of a rank for the answer's language: 1 for the asker's, OTHER_LANGUAGE for the other."""
    return ("CASE WHEN a.language = %(language)s THEN 1.0 ELSE %(other)s END",
            {"language": language, "other": OTHER_LANGUAGE})


# --- PostgreSQL ----------------------------------------------------------------------------------

# Each query `_postgres` asks, read in the English answers' configuration and in the Spanish ones':
# the words stemmed in the answer's language; the unfinished word stemmed (`last`, to know whether the
# stems matched it) and unstemmed (`part`, migration 0003).
_PG_CONFIGS = {"words": ("english", "spanish"), "last": ("english", "spanish"),
               "part": ("knowledge_english_words", "knowledge_spanish_words")}


def _postgres(found: list[str], partial: str | None, scope: Scope, language: str, limit: int) -> list[int]:
    # Words are \w+ only, so they cannot carry tsquery syntax (&, |, !, :, quotes).
    asked = {"words": " | ".join(f"{w}:*" if len(w) >= MIN_PREFIX else w for w in found)}
    if partial:
        asked |= {"last": f"{partial}:*", "part": f"{partial}:*"}
    ids = _postgres_phase(asked, scope, language, limit, head=True)
    if len(ids) < limit:
        # Few answers name these words in their question or keywords: their text decides the rest.
        more = _postgres_phase(asked, scope, language, limit + len(ids), head=False)
        ids += [i for i in more if i not in ids][:limit - len(ids)]
    return ids


def _pg_own(name: str) -> str:
    """Query `name` in the answer's own language's reading."""
    return f"CASE WHEN a.language = 'es' THEN asked.es_{name} ELSE asked.en_{name} END"


def _pg_matches(column: str, name: str) -> str:
    # Each answer matched in its own language's reading, as an OR of two @@ so both can use the GIN index.
    return (f"(a.language = 'es' AND a.{column} @@ asked.es_{name}) "
            f"OR (a.language <> 'es' AND a.{column} @@ asked.en_{name})")


def _pg_rank(column: str, words_column: str | None) -> str:
    """An answer's rank by its stems in `column`; with an unfinished word, plus its rank by the same
    part of the answer unstemmed (`words_column`) for that word, only when the word's stemmed reading
    did not match `column`: the unstemmed words fill in, so a word never counts twice."""
    rank = f"ts_rank('{_PG_WEIGHTS}', a.{column}, {_pg_own('words')}, 1)"
    if words_column:
        rank += (f" + CASE WHEN a.{column} @@ {_pg_own('last')} THEN 0 "
                 f"ELSE ts_rank('{_PG_WEIGHTS}', a.{words_column}, {_pg_own('part')}, 1) END")
    return f"({rank})"


def _postgres_phase(asked: dict[str, str], scope: Scope, language: str, limit: int, *, head: bool) -> list[int]:
    """One phase of a search. `head`: the answers whose question or keywords match, the best CANDIDATES by
    those (small vectors, quick to rank even when thousands match), then ranked with their text too.
    Otherwise: the answers whose text matches, ranked whole (the fallback, when few heads match).

    Each answer is matched in its own language's configuration: the Spanish reading of an English
    question ("for:*") would otherwise find English words ("form") and crowd out the right answer.
    The unfinished word is matched in the answers' unstemmed words too (`search_head_words`, the
    question and keywords, in the head phase; `search_words` otherwise)."""
    column = "search_head" if head else "search_vector"
    unfinished = "part" in asked
    words_column = ("search_head_words" if head else "search_words") if unfinished else None
    matched = _pg_matches(column, "words")
    if words_column:
        matched += " OR " + _pg_matches(words_column, "part")
    where, values = _scope_sql(scope)
    prefer, preference = _prefer(language)
    values |= preference | asked | {"candidates": CANDIDATES, "limit": limit}
    # Constants of a FROM-less subquery: the planner folds them, so each @@ can use its index.
    queries = ", ".join(f"to_tsquery('{en}', %({name})s) AS en_{name}, to_tsquery('{es}', %({name})s) AS es_{name}"
                        for name in asked for en, es in [_PG_CONFIGS[name]])
    asked_sql = f"(SELECT {queries}) AS asked"
    rank = f"{_pg_rank('search_vector', 'search_words' if unfinished else None)} * {prefer}"
    if head:
        head_rank = f"{_pg_rank('search_head', words_column)} * {prefer}"
        sql = (f"SELECT a.id FROM (SELECT a.id FROM knowledge_answer a, {asked_sql} WHERE ({matched}) AND {where} "
               f"ORDER BY {head_rank} DESC, a.id LIMIT %(candidates)s) AS c "
               f"JOIN knowledge_answer a ON a.id = c.id, {asked_sql} ORDER BY {rank} DESC, a.id LIMIT %(limit)s")
    else:
        sql = (f"SELECT a.id FROM knowledge_answer a, {asked_sql} WHERE ({matched}) AND {where} "
               f"ORDER BY {rank} DESC, a.id LIMIT %(limit)s")
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]


# --- SQLite --------------------------------------------------------------------------------------


def _sqlite(found: list[str], partial: str | None, scope: Scope, language: str, limit: int) -> list[int]:
    # Each word quoted (FTS5 syntax cannot leak in) and asked for whole or as a prefix: Porter stems
    # the whole word ("renewing" finds "renew"), the prefix finds what is still being typed.
    terms = " OR ".join(f'"{w}" OR "{w}"*' if len(w) >= MIN_PREFIX else f'"{w}"' for w in found)
    asked = {"words": terms}
    if partial:
        asked |= {"last": f'"{partial}" OR "{partial}"*', "part": f'"{partial}"*'}
    # As on PostgreSQL, two phases: the answers whose question or keywords match (a column filter:
    # far fewer rows to rank when a word is everywhere), then, only if too few, the text too.
    ids = _sqlite_phase({k: f"{{question keywords}} : ({q})" for k, q in asked.items()}, scope, language, limit)
    if len(ids) < limit:
        more = _sqlite_phase(asked, scope, language, limit + len(ids))
        ids += [i for i in more if i not in ids][:limit - len(ids)]
    return ids


def _sqlite_phase(asked: dict[str, str], scope: Scope, language: str, limit: int) -> list[int]:
    """One phase: the answers that `words` finds in the stemmed table; with an unfinished word, also
    those that `part` finds in the unstemmed one (`knowledge_answer_words`) and that `last`, the same
    word in the stemmed table, did not find: they fill in, as on PostgreSQL."""
    where, values = _scope_sql(scope)
    prefer, preference = _prefer(language)
    values |= preference | asked | {"limit": limit}
    weights = ", ".join(str(w) for w in _FTS_WEIGHTS)
    # bm25 is negative, better is lower: the other language's answers are moved up (worse) by the factor.
    if "part" not in asked:
        sql = (
            "SELECT a.id FROM knowledge_answer_fts JOIN knowledge_answer a ON a.id = knowledge_answer_fts.rowid "
            f"WHERE knowledge_answer_fts MATCH %(words)s AND {where} "
            f"ORDER BY bm25(knowledge_answer_fts, {weights}) * {prefer}, a.id LIMIT %(limit)s"
        )
    else:
        # bm25() exists only inside its own table's MATCH: each table scored apart, an answer found in
        # both has the two scores added. CROSS JOIN keeps each FTS table the outer loop: inside a
        # subquery SQLite otherwise walks every answer in scope and asks the FTS table about each
        # (seconds among 50,000 answers).
        sql = (
            f"SELECT id FROM (SELECT a.id, bm25(knowledge_answer_fts, {weights}) * {prefer} AS score "
            "FROM knowledge_answer_fts CROSS JOIN knowledge_answer a ON a.id = knowledge_answer_fts.rowid "
            f"WHERE knowledge_answer_fts MATCH %(words)s AND {where} "
            f"UNION ALL SELECT a.id, bm25(knowledge_answer_words, {weights}) * {prefer} AS score "
            "FROM knowledge_answer_words CROSS JOIN knowledge_answer a ON a.id = knowledge_answer_words.rowid "
            f"WHERE knowledge_answer_words MATCH %(part)s AND {where} AND knowledge_answer_words.rowid NOT IN "
            "(SELECT rowid FROM knowledge_answer_fts WHERE knowledge_answer_fts MATCH %(last)s)) "
            "GROUP BY id ORDER BY SUM(score), id LIMIT %(limit)s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]
