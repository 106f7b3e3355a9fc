#!/usr/bin/env python
"""The knowledge base's search, measured (issue 17, "Search that finds things"): recall@3 of the patron
questions in bench/answers_eval.yaml against the demo consortium's answers, and the time per query,
then the same queries among 50,000 answers.

    .venv/bin/python bench/answers_eval.py                      # PostgreSQL (a fresh database, dropped after)
    .venv/bin/python bench/answers_eval.py --engine sqlite      # the embedded default's FTS5
    .venv/bin/python bench/answers_eval.py --large 0            # the evaluation only

A query is what the ask page's suggestions do (knowledge.selectors.public_search): the search and the
rows, the patron's library (when the question names one) and the consortium in scope, three results.
recall@3: the share of questions whose expected answer is among the three; reported for all, for those
phrased like the answer's title, for those phrased unlike it and for those whose last word is still
being typed (`partial`). Times: each query run --runs times
after one warm-up round; p50, p99 and the maximum over all runs.

The 50,000 answers are generated (a third in Spanish, spread over the libraries): with --vocabulary wide
(the default) a quarter of their words come from the demo answers' own and the rest from 30,000 other
words with a Zipf-like spread, as in a knowledge base of many topics; with --vocabulary demo every word
comes from the demo answers, so every patron word matches thousands of answers (the worst case).
The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
QUESTIONS = ROOT / "bench" / "answers_eval.yaml"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def setup(engine: str, name: str) -> None:
    os.environ.pop("REDIS_URL", None)
    if engine == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["VR_DATA_DIR"] = tempfile.mkdtemp(prefix="vr-answers-eval-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "consortium.settings"
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every query in memory
    os.environ["HTTPS"] = "false"  # the demo file allows its http://127.0.0.1 origins
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + secrets.token_urlsafe(40))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("import_consortium", str(ROOT / "deploy" / "demo-consortium.yaml"), "--quiet")
    call_command("demo_answers", verbosity=0)


def evaluate(runs: int) -> dict[str, Any]:
    import yaml

    from consortium.models import Consortium
    from knowledge.demo import demo_answers
    from knowledge.models import Answer
    from knowledge.selectors import PATRON_SUGGESTIONS, public_search
    from libraries.models import Library

    consortium = Consortium.objects.get(slug="sunshine")
    libraries = {lib.slug: lib for lib in Library.objects.filter(consortium=consortium)}
    by_question = {a.question: a.pk for a in Answer.objects.filter(consortium=consortium)}
    expected_id = {d.key: by_question[d.question] for d in demo_answers()}
    cases = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    hits: dict[str, list[bool]] = {"all": [], "like": [], "unlike": [], "partial": []}
    misses = []
    times: list[float] = []
    for round_ in range(runs + 1):
        for case in cases:
            library = libraries[case["library"]] if case.get("library") else None
            # The page's language: the patrons whose answer is Spanish asked on the Spanish page.
            language = "es" if case["expect"].endswith("-es") else "en"
            started = time.perf_counter()
            found = public_search(consortium, library, case["q"], language=language, limit=PATRON_SUGGESTIONS)
            elapsed = time.perf_counter() - started
            if round_ == 0:
                continue  # the warm-up round: connections, caches, the first plan
            times.append(elapsed)
            if round_ == 1:
                hit = expected_id[case["expect"]] in [a.pk for a in found]
                hits["all"].append(hit)
                hits["partial" if case.get("partial") else "unlike" if case.get("unlike") else "like"].append(hit)
                if not hit:
                    misses.append({"q": case["q"], "expected": case["expect"], "got": [a.question for a in found]})
    ms = sorted(t * 1000 for t in times)
    return {
        "questions": len(cases),
        "unlike": len(hits["unlike"]),
        "partial": len(hits["partial"]),
        "recall_at_3": round(sum(hits["all"]) / len(hits["all"]), 3),
        "recall_at_3_like": round(sum(hits["like"]) / max(1, len(hits["like"])), 3),
        "recall_at_3_unlike": round(sum(hits["unlike"]) / max(1, len(hits["unlike"])), 3),
        "recall_at_3_partial": round(sum(hits["partial"]) / max(1, len(hits["partial"])), 3),
        "queries_timed": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
        "misses": misses,
    }


def _pseudo_words(rng: random.Random, n: int) -> list[str]:
    syllables = ["ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui", "ro", "su", "ta",
                 "ve", "xo", "yu", "za", "bre", "cla", "dro", "fli", "gra", "pla", "stri", "tro"]
    return ["".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(n)]


def grow(total: int, seed: int, vocabulary: str) -> int:
    """Add generated answers until the consortium has `total` published answers.

    vocabulary "demo": every word from the demo answers' ~800 words (the worst case: each patron word is
    in thousands of answers). "wide": a quarter of the words from there, the rest from 30,000 other
    words with a Zipf-like spread (a knowledge base of many topics, where a word is in few answers)."""
    from django.utils import timezone

    from consortium.models import Consortium
    from knowledge.demo import demo_answers
    from knowledge.models import Answer, AnswerState
    from libraries.models import Library

    rng = random.Random(seed)
    consortium = Consortium.objects.get(slug="sunshine")
    libraries = [None, *Library.objects.filter(consortium=consortium)]
    vocab: dict[str, list[str]] = {"en": [], "es": []}
    for d in demo_answers():
        vocab[d.language] += re.findall(r"[^\W\d_]{3,}", f"{d.question} {d.keywords} {d.body}")
    wide = _pseudo_words(rng, 30000)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(wide))))

    def draw(words: list[str], k: int) -> list[str]:
        if vocabulary == "demo":
            return rng.choices(words, k=k)
        return [rng.choice(words) if rng.random() < 0.25 else rng.choices(wide, cum_weights=cumulative)[0]
                for _ in range(k)]

    now = timezone.now()
    missing = total - Answer.objects.filter(consortium=consortium).count()
    batch: list[Answer] = []
    for i in range(missing):
        language = "es" if rng.random() < 0.33 else "en"
        words = vocab[language]
        batch.append(Answer(
            consortium=consortium, library=rng.choice(libraries), language=language, state=AnswerState.PUBLISHED,
            question=" ".join(draw(words, rng.randint(5, 10))).capitalize() + "?",
            keywords=", ".join(draw(words, 5)), body=" ".join(draw(words, rng.randint(40, 120))),
            review_on=now.date(), created_at=now, updated_at=now, published_at=now))
        if len(batch) == 2000 or i == missing - 1:
            Answer.objects.bulk_create(batch)
            batch = []
    if os.environ.get("DATABASE_URL"):
        from django.db import connection

        # As autovacuum leaves a table in service: statistics current and the GIN indexes' pending lists
        # (where a bulk insert lands first, scanned whole by every search) merged into the indexes.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE knowledge_answer")
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--large", type=int, default=50000, help="answers in the large run (0: none)")
    parser.add_argument("--vocabulary", choices=["demo", "wide"], default="wide",
                        help="the generated answers' words (see grow()); demo is the worst case")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds over the questions")
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    name = f"vr_bench_answers_{secrets.token_hex(3)}"
    setup(args.engine, name)
    try:
        summary: dict[str, Any] = {"engine": args.engine, "demo": evaluate(args.runs)}
        demo = summary["demo"]
        print(f"demo answers: recall@3 {demo['recall_at_3']} ({demo['questions']} questions; like the title "
              f"{demo['recall_at_3_like']}, unlike {demo['recall_at_3_unlike']}, partly typed "
              f"{demo['recall_at_3_partial']}); p50 {demo['p50_ms']} ms, "
              f"p99 {demo['p99_ms']} ms, max {demo['max_ms']} ms")
        for miss in demo["misses"]:
            print(f"  missed: {miss['q']!r} (expected {miss['expected']}; got {miss['got']})")
        if args.large:
            started = time.perf_counter()
            added = grow(args.large, seed=17, vocabulary=args.vocabulary)
            summary["large_build_s"] = round(time.perf_counter() - started, 1)
            large = evaluate(args.runs)
            large.pop("misses")
            summary["large"] = {"answers": args.large, "added": added, "vocabulary": args.vocabulary, **large}
            print(f"{args.large} answers ({args.vocabulary} vocabulary): recall@3 {large['recall_at_3']} "
                  f"(like {large['recall_at_3_like']}, unlike {large['recall_at_3_unlike']}, partly typed "
                  f"{large['recall_at_3_partial']}); "
                  f"p50 {large['p50_ms']} ms, "
                  f"p99 {large['p99_ms']} ms, max {large['max_ms']} ms")
    finally:
        if args.engine == "postgres" and not args.keep:
            from django.db import connections

            connections.close_all()
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    line = json.dumps(summary)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
