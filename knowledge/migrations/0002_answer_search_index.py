"""The answers' full-text index, one per engine (knowledge/search.py reads it).

PostgreSQL: a generated tsvector column with a GIN index. The configuration follows the answer's
language (english or spanish), accents are folded (`translate`, which is immutable, unlike
`unaccent`) because patrons type "prestamo" for "préstamo", and the question weighs more than the
keywords, the keywords more than the text. SQLite: an FTS5 table over the same three columns, kept
in step with the table by triggers (FTS5 folds accents itself).
"""

from typing import Any

from django.db import migrations

ACCENTED = "ÁÉÍÓÚÜÑáéíóúüñ"
FOLDED = "AEIOUUNaeiouun"


def _vector(column: str, weight: str) -> str:
    config = "CASE WHEN language = 'es' THEN 'spanish'::regconfig ELSE 'english'::regconfig END"
    return f"setweight(to_tsvector({config}, translate({column}, '{ACCENTED}', '{FOLDED}')), '{weight}')"


# search_head (question and keywords) is small enough to rank thousands of rows quickly: the first
# phase of a search (knowledge/search.py); search_vector (with the text) ranks the few candidates.
POSTGRES = [
    "ALTER TABLE knowledge_answer ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    f"{_vector('question', 'A')} || {_vector('keywords', 'B')} || {_vector('body', 'C')}) STORED",
    "ALTER TABLE knowledge_answer ADD COLUMN search_head tsvector GENERATED ALWAYS AS ("
    f"{_vector('question', 'A')} || {_vector('keywords', 'B')}) STORED",
    "CREATE INDEX knowledge_answer_search ON knowledge_answer USING gin (search_vector)",
    "CREATE INDEX knowledge_answer_search_head ON knowledge_answer USING gin (search_head)",
]
POSTGRES_REVERSE = ["DROP INDEX knowledge_answer_search_head", "DROP INDEX knowledge_answer_search",
                    "ALTER TABLE knowledge_answer DROP COLUMN search_head",
                    "ALTER TABLE knowledge_answer DROP COLUMN search_vector"]

SQLITE = [
    "CREATE VIRTUAL TABLE knowledge_answer_fts USING fts5(question, keywords, body, content='knowledge_answer', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_answer_fts_ai AFTER INSERT ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_fts(rowid, question, keywords, body) VALUES (new.id, new.question, new.keywords, new.body); END",
    "CREATE TRIGGER knowledge_answer_fts_ad AFTER DELETE ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_fts(knowledge_answer_fts, rowid, question, keywords, body) "
    "VALUES ('delete', old.id, old.question, old.keywords, old.body); END",
    "CREATE TRIGGER knowledge_answer_fts_au AFTER UPDATE ON knowledge_answer BEGIN "
    "INSERT INTO knowledge_answer_fts(knowledge_answer_fts, rowid, question, keywords, body) "
    "VALUES ('delete', old.id, old.question, old.keywords, old.body); "
    "INSERT INTO knowledge_answer_fts(rowid, question, keywords, body) VALUES (new.id, new.question, new.keywords, new.body); END",
]
SQLITE_REVERSE = ["DROP TRIGGER knowledge_answer_fts_au", "DROP TRIGGER knowledge_answer_fts_ad",
                  "DROP TRIGGER knowledge_answer_fts_ai", "DROP TABLE knowledge_answer_fts"]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)
    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_answers")]

    operations = [
        migrations.RunPython(_run({"postgresql": POSTGRES, "sqlite": SQLITE}),
                             _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})),
    ]
