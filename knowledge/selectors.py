"""Reading the knowledge base: what a patron may see, what a librarian sees beside a chat, and the
lists of the answers pages. Searches go through knowledge.search; this module decides the scope
and loads the rows in the order the search found them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from consortium.models import Consortium
from knowledge import access
from knowledge.markdown import answer_plain, answer_snippet
from knowledge.models import Answer, AnswerState
from knowledge.search import Scope, answers_search
from libraries.models import Library, StaffProfile
from routing.models import Chat, Message

# Suggestions a patron sees while typing or waiting (issue 17: "up to three"); the API's `limit` at most.
PATRON_SUGGESTIONS = 3
PATRON_LIMIT_MAX = 10
# Answers beside a chat in the console.
CONSOLE_SUGGESTIONS = 5
# Results on the public answers page for a search.
PAGE_RESULTS = 20
# The most answers one public list shows without a search.
PAGE_LIST = 200
# The patron's lines a console search reads: the question and the latest lines say what it is about.
CONSOLE_LINES = 6


def _in_order(ids: Sequence[int], rows: QuerySet[Answer]) -> list[Answer]:
    by_id = {a.pk: a for a in rows.filter(pk__in=list(ids))}
    return [by_id[i] for i in ids if i in by_id]


def public_answers(consortium: Consortium, library: Library | None) -> QuerySet[Answer]:
    """The published answers a patron of `library` (or of the consortium at large) may read."""
    scope = Q(library__isnull=True) | (Q(library=library) if library else Q(library__isnull=False))
    return (Answer.objects.filter(consortium=consortium, state=AnswerState.PUBLISHED).filter(scope)
            .select_related("library", "consortium"))


def public_search(consortium: Consortium, library: Library | None, text: str, *, language: str,
                  limit: int, every_library: bool = False) -> list[Answer]:
    """Published answers for a patron: the consortium's and their library's, best first; on the
    consortium's own answers page (`every_library`, no library chosen) every library's too."""
    libraries: Sequence[int] | None = [library.pk] if library else None if every_library else []
    ids = answers_search(text, Scope(consortium.pk, libraries), language=language, limit=limit)
    return _in_order(ids, public_answers(consortium, library))


def public_answer(consortium: Consortium, answer_id: int) -> Answer | None:
    return public_answers(consortium, None).filter(pk=answer_id).first()


def answer_url(answer: Answer) -> str:
    return reverse("answer", args=[answer.consortium.slug, answer.pk])


def suggestion_json(answer: Answer, base: str) -> dict[str, Any]:
    """One result of GET /api/v1/<c>/answers as docs/protocol.md defines it (the shared contract): the
    published answer only, its text as plain text, its public page's address; `snippet` is added."""
    return {"id": str(answer.pk), "question": answer.question, "answer": answer_plain(answer.body),
            "url": base + answer_url(answer), "library": answer.library.slug if answer.library else None,
            "language": answer.language, "snippet": answer_snippet(answer.body)}


# --- staff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleAnswer:
    answer: Answer
    home: bool  # the chat's home library's own answer (listed first)

    def as_json(self) -> dict[str, Any]:
        a = self.answer
        return {"id": a.pk, "question": a.question, "text": answer_plain(a.body), "language": a.language,
                "state": a.state, "draft": a.state == AnswerState.DRAFT, "home": self.home,
                "scope": a.scope_name, "edit_url": reverse("staff-answer", args=[a.pk]),
                "url": answer_url(a) if a.state == AnswerState.PUBLISHED else None}


def chat_search_text(chat: Chat) -> str:
    """What a chat is about: its question and the patron's latest lines (not internal notes)."""
    lines = list(Message.objects.filter(chat=chat, sender=Message.Sender.PATRON, internal=False)
                 .order_by("-seq").values_list("body", flat=True)[:CONSOLE_LINES])
    return " ".join([chat.question, *reversed(lines)])


def console_answers(profile: StaffProfile, chat: Chat, *, limit: int = CONSOLE_SUGGESTIONS) -> list[ConsoleAnswer]:
    """The answers that match a chat's messages, for the librarian answering it: the home library's
    first, then the consortium's (each best first); drafts included (the console marks them), retired
    ones never. The caller has checked that the librarian may read the chat."""
    home = chat.home_library_id
    libraries = [home] if home else []
    ids = answers_search(chat_search_text(chat), Scope(chat.consortium_id, libraries,
                                                       states=(AnswerState.PUBLISHED, AnswerState.DRAFT)),
                         language=chat.language or "en", limit=limit)
    found = _in_order(ids, Answer.objects.filter(consortium_id=profile.library.consortium_id)
                      .select_related("library", "consortium"))
    found.sort(key=lambda a: 0 if home and a.library_id == home else 1)  # stable: best first within each
    return [ConsoleAnswer(a, bool(home) and a.library_id == home) for a in found]


def staff_answers(profile: StaffProfile, *, state: str = "", text: str = "", limit: int = PAGE_LIST) -> list[Answer]:
    """The consortium's answers for its librarians' list: a search, or the list by question."""
    rows = Answer.objects.filter(consortium_id=profile.library.consortium_id).select_related(
        "library", "consortium", "owner__user")
    states = [state] if state in AnswerState.values else list(AnswerState.values)
    if text.strip():
        ids = answers_search(text, Scope(profile.library.consortium_id, None, states=states), limit=limit)
        return _in_order(ids, rows)
    return list(rows.filter(state__in=states)[:limit])


def due_for_review(profile: StaffProfile, today: date) -> list[Answer]:
    """This librarian's answers past their review date, and those they publish (library admins, coordinators)."""
    rows = (Answer.objects.filter(consortium_id=profile.library.consortium_id, review_on__lt=today)
            .exclude(state=AnswerState.RETIRED).select_related("library", "consortium", "owner__user"))
    return [a for a in rows if a.owner_id == profile.pk or access.may_publish(profile, a)]
