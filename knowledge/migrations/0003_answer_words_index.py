"""The answers' words as written, unstemmed, for the word a patron is still typing (knowledge/search.py).

Both indexes of 0002 hold stems: "renewa" is no prefix of "renew" (the stem of "renewal"), nor
"renovaci" of "renov" (of "renovación"), so a half-typed word longer than its stem found nothing
until it was finished. This index holds the words themselves, so that word is asked as a prefix here.

PostgreSQL: the generated tsvectors `search_words` (question A, keywords B, text C, accents folded as
in 0002) and `search_head_words` (question and keywords: small, quick to rank in the first phase of a
search, as `search_head` is), each with a GIN index, in two configurations without stemming that drop the answer's language's
stop words (`knowledge_english_words`, `knowledge_spanish_words`: the simple dictionary with the
english or spanish stop list). Without them "the" or "que", half typed or not, would match nearly every
answer, and ts_rank, which does not discount common words, would rank by them.
SQLite: the FTS5 table `knowledge_answer_words` over the same three columns, unicode61 without porter,
accents folded, kept in step by triggers and filled from the answers already there.
"""

from typing import Any

from django.db import migrations

ACCENTED = "ÁÉÍÓÚÜÑáéíóúüñ"
FOLDED = "AEIOUUNaeiouun"


def _words(column: str, weight: str) -> str:
    config = ("CASE WHEN language = 'es' THEN 'knowledge_spanish_words'::regconfig "
              "ELSE 'knowledge_english_words'::regconfig END")
    return f"setweight(to_tsvector({config}, translate({column}, '{ACCENTED}', '{FOLDED}')), '{weight}')"


def _configuration(language: str) -> list[str]:
    name = f"knowledge_{language}_words"
    return [
        f"CREATE TEXT SEARCH DICTIONARY {name} (TEMPLATE = pg_catalog.simple, STOPWORDS = {language})",
        f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = pg_catalog.simple)",
        f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING REPLACE simple WITH {name}",
    ]


POSTGRES = [
    *_configuration("english"),
    *_configuration("spanish"),
    "ALTER TABLE knowledge_answer ADD COLUMN search_words tsvector GENERATED ALWAYS AS ("
    f"{_words('question', 'A')} || {_words('keywords', 'B')} || {_words('body', 'C')}) STORED",
    "ALTER TABLE knowledge_answer ADD COLUMN search_head_words tsvector GENERATED ALWAYS AS ("
    f"{_words('question', 'A')} || {_words('keywords', 'B')}) STORED",
    "CREATE INDEX knowledge_answer_search_words ON knowledge_answer USING gin (search_words)",
    "CREATE INDEX knowledge_answer_search_head_words ON knowledge_answer USING gin (search_head_words)",
]
POSTGRES_REVERSE = [
    "DROP INDEX knowledge_answer_search_head_words",
    "DROP INDEX knowledge_answer_search_words",
    "ALTER TABLE knowledge_answer DROP COLUMN search_head_words",
    "ALTER TABLE knowledge_answer DROP COLUMN search_words",
    "DROP TEXT SEARCH CONFIGURATION knowledge_spanish_words",
    "DROP TEXT SEARCH DICTIONARY knowledge_spanish_words",
    "DROP TEXT SEARCH CONFIGURATION knowledge_english_words",
    "DROP TEXT SEARCH DICTIONARY knowledge_english_words",
]

SQLITE = [
    "CREATE VIRTUAL TABLE knowledge_answer_words USING fts5(question, keywords, body, content='knowledge_answer', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO knowledge_answer_words(knowledge_answer_words) VALUES ('rebuild')",
    "CREATE TRIGGER knowledge_answer_words_ai AFTER INSERT ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_words(rowid, question, keywords, body) "
    "VALUES (new.id, new.question, new.keywords, new.body); END",
    "CREATE TRIGGER knowledge_answer_words_ad AFTER DELETE ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_words(knowledge_answer_words, rowid, question, keywords, body) "
    "VALUES ('delete', old.id, old.question, old.keywords, old.body); END",
    "CREATE TRIGGER knowledge_answer_words_au AFTER UPDATE ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_words(knowledge_answer_words, rowid, question, keywords, body) "
    "VALUES ('delete', old.id, old.question, old.keywords, old.body); "
    "INSERT INTO knowledge_answer_words(rowid, question, keywords, body) "
    "VALUES (new.id, new.question, new.keywords, new.body); END",
]
SQLITE_REVERSE = ["DROP TRIGGER knowledge_answer_words_au", "DROP TRIGGER knowledge_answer_words_ad",
                  "DROP TRIGGER knowledge_answer_words_ai", "DROP TABLE knowledge_answer_words"]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)
    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_answer_search_index")]

    operations = [
        migrations.RunPython(_run({"postgresql": POSTGRES, "sqlite": SQLITE}),
                             _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})),
    ]
