"""The demo consortium's published answers (knowledge/data/demo_answers.yaml): about forty, in English
and Spanish, the consortium's and several libraries', so a newcomer sees suggestions at once.

Loaded by `python3 dev.py demo` (manage.py demo_answers) on the embedded default and in production
alike, since they are answers, not invented activity; but only into a consortium that has no answers
yet, so a librarian's edits are never overwritten (`replace=True` starts again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from consortium.models import Consortium
from knowledge.models import Answer, AnswerState
from libraries.models import Library, StaffProfile

DATA = Path(__file__).resolve().parent / "data" / "demo_answers.yaml"


@dataclass(frozen=True)
class DemoAnswer:
    key: str
    question: str
    body: str
    keywords: str
    language: str
    library: str | None
    owner: str


def demo_answers() -> list[DemoAnswer]:
    rows: list[dict[str, Any]] = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return [DemoAnswer(key=r["key"], question=r["question"], body=r["body"].strip(), keywords=r.get("keywords", ""),
                       language=r.get("language", "en"), library=r.get("library"), owner=r.get("owner", ""))
            for r in rows]


def load(consortium: Consortium, now: datetime, *, replace: bool = False) -> int:
    """The demo's answers, published; 0 when the consortium already had answers (and not `replace`)."""
    with transaction.atomic():
        existing = Answer.objects.filter(consortium=consortium)
        if existing.exists():
            if not replace:
                return 0
            existing.delete()
        libraries = {lib.slug: lib for lib in Library.objects.filter(consortium=consortium)}
        staff = {p.user.username: p for p in StaffProfile.objects.filter(library__consortium=consortium)
                 .select_related("user")}
        made = 0
        for i, a in enumerate(demo_answers()):
            if a.library and a.library not in libraries:
                continue  # a consortium file without that library: its answers are left out
            # Created one by one (not bulk_create): the SQLite full-text index is kept by triggers either way,
            # and forty rows take no time.
            Answer.objects.create(
                consortium=consortium, library=libraries.get(a.library or ""), question=a.question, body=a.body,
                keywords=a.keywords, language=a.language, owner=staff.get(a.owner), state=AnswerState.PUBLISHED,
                review_on=(now + timedelta(days=90 + 7 * i)).date(), created_at=now, updated_at=now, published_at=now)
            made += 1
    return made
