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


def answers_search(text: str, scope: Scope, *, language: str = "en", limit: int = 3) -> list[int]:
    """The ids of the answers that best match `text`, best first; [] when it has no words."""
    found = words(text)
    if not found or limit <= 0:
        return []
    if connection.vendor == "postgresql":
        return _postgres(found, scope, language, limit)
    return _sqlite(found, scope, language, limit)


def _scope_sql(scope: Scope, placeholder: str) -> tuple[str, list[Any]]:
    states = list(scope.states)
    sql = f"a.consortium_id = {placeholder} AND a.state IN ({', '.join([placeholder] * len(states))})"
    params: list[Any] = [scope.consortium_id, *states]
    if scope.libraries is not None:
        libraries = list(scope.libraries)
        if libraries:
            sql += f" AND (a.library_id IS NULL OR a.library_id IN ({', '.join([placeholder] * len(libraries))}))"
            params += libraries
        else:
            sql += " AND a.library_id IS NULL"
    return sql, params


def _postgres(found: list[str], scope: Scope, language: str, limit: int) -> list[int]:
    # Words are \w+ only, so they cannot carry tsquery syntax (&, |, !, :, quotes).
    query = " | ".join(f"{w}:*" if len(w) >= MIN_PREFIX else w for w in found)
    where, params = _scope_sql(scope, "%s")
    ids = _postgres_phase(query, where, params, language, limit, head=True)
    if len(ids) < limit:
        # Few answers name these words in their question or keywords: their text decides the rest.
        more = _postgres_phase(query, where, params, language, limit + len(ids), head=False)
        ids += [i for i in more if i not in ids][:limit - len(ids)]
    return ids


def _postgres_phase(query: str, where: str, params: list[Any], language: str, limit: int, *,
                    head: bool) -> list[int]:
    """One phase of a search. `head`: the answers whose question or keywords match, the best CANDIDATES by
    those (small vectors, quick to rank even when thousands match), then ranked with their text too.
    Otherwise: the answers whose text matches, ranked whole (the fallback, when few heads match).

    Each answer is matched in its own language's configuration: the Spanish reading of an English
    question ("for:*") would otherwise find English words ("form") and crowd out the right answer.
    Written as an OR of two @@ so both can use the GIN index."""
    column = "search_head" if head else "search_vector"
    matched = (f"((a.language = 'es' AND a.{column} @@ asked.es) "
               f"OR (a.language <> 'es' AND a.{column} @@ asked.en)) AND {where}")
    asked = "(SELECT to_tsquery('english', %s) AS en, to_tsquery('spanish', %s) AS es) AS asked"
    own_query = "CASE WHEN a.language = 'es' THEN asked.es ELSE asked.en END"
    preference = "CASE WHEN a.language = %s THEN 1.0 ELSE %s END"
    rank = f"ts_rank('{_PG_WEIGHTS}', a.search_vector, {own_query}, 1) * {preference}"
    if head:
        head_rank = f"ts_rank('{_PG_WEIGHTS}', a.search_head, {own_query}, 1) * {preference}"
        sql = (f"SELECT a.id FROM (SELECT a.id FROM knowledge_answer a, {asked} WHERE {matched} "
               f"ORDER BY {head_rank} DESC, a.id LIMIT %s) AS c JOIN knowledge_answer a ON a.id = c.id, {asked} "
               f"ORDER BY {rank} DESC, a.id LIMIT %s")
        args = [query, query, *params, language, OTHER_LANGUAGE, CANDIDATES,
                query, query, language, OTHER_LANGUAGE, limit]
    else:
        sql = f"SELECT a.id FROM knowledge_answer a, {asked} WHERE {matched} ORDER BY {rank} DESC, a.id LIMIT %s"
        args = [query, query, *params, language, OTHER_LANGUAGE, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return [row[0] for row in cursor.fetchall()]


def _sqlite(found: list[str], scope: Scope, language: str, limit: int) -> list[int]:
    # Each word quoted (FTS5 syntax cannot leak in) and asked for whole or as a prefix: Porter stems
    # the whole word ("renewing" finds "renew"), the prefix finds what is still being typed.
    terms = " OR ".join(f'"{w}" OR "{w}"*' if len(w) >= MIN_PREFIX else f'"{w}"' for w in found)
    # As on PostgreSQL, two phases: the answers whose question or keywords match (a column filter:
    # far fewer rows to rank when a word is everywhere), then, only if too few, the text too.
    ids = _sqlite_phase(f"{{question keywords}} : ({terms})", scope, language, limit)
    if len(ids) < limit:
        more = _sqlite_phase(terms, scope, language, limit + len(ids))
        ids += [i for i in more if i not in ids][:limit - len(ids)]
    return ids


def _sqlite_phase(match: str, scope: Scope, language: str, limit: int) -> list[int]:
    where, params = _scope_sql(scope, "%s")
    weights = ", ".join(str(w) for w in _FTS_WEIGHTS)
    # bm25 is negative, better is lower: the other language's answers are moved up (worse) by the factor.
    sql = (
        "SELECT a.id FROM knowledge_answer_fts JOIN knowledge_answer a ON a.id = knowledge_answer_fts.rowid "
        f"WHERE knowledge_answer_fts MATCH %s AND {where} "
        f"ORDER BY bm25(knowledge_answer_fts, {weights}) * CASE WHEN a.language = %s THEN 1.0 ELSE %s END, "
        "a.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, *params, language, OTHER_LANGUAGE, limit])
        return [row[0] for row in cursor.fetchall()]
