"""Every write to the knowledge base, and the patron's "This answered my question".

Checks live here, not in the pages: the consortium and owner come from the librarian's profile,
the scope is checked against what they may write (knowledge.access), and bad input is refused with
the fields at fault (routing.services.common.Refused) and nothing changed. The words of a refusal are
in the librarian's language (the request's: consortium.language), as the answers pages are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils.translation import gettext as _

from knowledge import access
from knowledge.models import Answer, AnswerLanguage, AnswerState
from libraries.models import StaffProfile
from routing.models import Chat, ChatState
from routing.outcomes import SELF_SERVED_REASON
from routing.services.common import Refused, ServiceError, chat_end_locked, chat_lock, trace

MAX_QUESTION = 300
MAX_BODY = 20000
MAX_KEYWORDS = 500
# A new answer is due for review after this long unless its author says otherwise.
DEFAULT_REVIEW_DAYS = 365
CONSORTIUM_SCOPE = ""  # the form's value for "the whole consortium"


@dataclass(frozen=True)
class AnswerFields:
    """What a librarian types: all text, as it came from the form."""

    question: str
    body: str
    language: str = AnswerLanguage.EN
    keywords: str = ""
    scope: str = CONSORTIUM_SCOPE  # a library's slug, or "" for the consortium
    review_on: str = ""  # YYYY-MM-DD, or "" for the default


@dataclass(frozen=True)
class _Checked:
    question: str
    body: str
    language: str
    keywords: str
    library_id: int | None
    review_on: date


def _keywords(raw: str) -> str:
    seen: dict[str, None] = {}
    for part in raw.split(","):
        word = " ".join(part.split()).lower()
        if word:
            seen.setdefault(word, None)
    return ", ".join(seen)


def _too_long(most: int, has: int) -> str:
    return _("At most %(most)d characters (this one has %(has)d).") % {"most": most, "has": has}


def _checked(profile: StaffProfile, fields: AnswerFields, today: date) -> _Checked:
    errors: dict[str, list[str]] = {}
    question = " ".join((fields.question or "").split())
    body = (fields.body or "").strip()
    keywords = _keywords(fields.keywords or "")
    if not question:
        errors["question"] = [_("Write the question as a patron would ask it.")]
    elif len(question) > MAX_QUESTION:
        errors["question"] = [_too_long(MAX_QUESTION, len(question))]
    if not body:
        errors["body"] = [_("Write the answer.")]
    elif len(body) > MAX_BODY:
        errors["body"] = [_too_long(MAX_BODY, len(body))]
    if len(keywords) > MAX_KEYWORDS:
        errors["keywords"] = [_("At most %(most)d characters of keywords.") % {"most": MAX_KEYWORDS}]
    if fields.language not in AnswerLanguage.values:
        errors["language"] = [_("Choose English or Spanish.")]
    library_id: int | None = None
    if fields.scope:
        allowed = {lib.slug: lib.pk for lib in access.writable_libraries(profile)}
        if fields.scope not in allowed:
            errors["scope"] = [_("You may write answers for your own library or for the whole consortium.")]
        else:
            library_id = allowed[fields.scope]
    review_on = today + timedelta(days=DEFAULT_REVIEW_DAYS)
    if fields.review_on:
        try:
            review_on = date.fromisoformat(fields.review_on)
        except ValueError:
            errors["review_on"] = [_("Use a date like 2027-06-30.")]
        else:
            if review_on <= today:
                errors["review_on"] = [_("Choose a date after today.")]
    if errors:
        raise Refused("invalid", _("the answer was not saved"), errors)
    return _Checked(question, body, fields.language, keywords, library_id, review_on)


def answer_create(profile: StaffProfile, fields: AnswerFields, now: datetime) -> Answer:
    """A new draft, owned by its author."""
    checked = _checked(profile, fields, now.date())
    return Answer.objects.create(
        consortium_id=profile.library.consortium_id, library_id=checked.library_id, question=checked.question,
        body=checked.body, language=checked.language, keywords=checked.keywords, owner=profile,
        review_on=checked.review_on, state=AnswerState.DRAFT, created_at=now, updated_at=now)


def _locked(profile: StaffProfile, answer_id: int) -> Answer:
    answer = (Answer.objects.select_for_update().filter(pk=answer_id, consortium_id=profile.library.consortium_id)
              .first())
    if answer is None:
        raise Refused("not_found", _("no such answer"))
    return answer


def answer_update(profile: StaffProfile, answer_id: int, fields: AnswerFields, now: datetime) -> Answer:
    """Change an answer's text, language, keywords and review date. Its scope stays (a library's
    answer is not moved to the consortium by an edit: retire it and write a new one)."""
    with transaction.atomic():
        answer = _locked(profile, answer_id)
        if not access.may_edit(profile, answer):
            raise Refused("forbidden", _("you may not edit this answer"))
        checked = _checked(profile, AnswerFields(
            question=fields.question, body=fields.body, language=fields.language, keywords=fields.keywords,
            scope=CONSORTIUM_SCOPE, review_on=fields.review_on), now.date())
        answer.question, answer.body, answer.language = checked.question, checked.body, checked.language
        answer.keywords, answer.review_on, answer.updated_at = checked.keywords, checked.review_on, now
        if answer.review_flagged_on and checked.review_on > now.date():
            answer.review_flagged_on = None
        answer.save(update_fields=["question", "body", "language", "keywords", "review_on", "updated_at",
                                   "review_flagged_on"])
    return answer


def answer_set_state(profile: StaffProfile, answer_id: int, state: str, now: datetime) -> Answer:
    """Publish, retire or take back to draft: only who may publish the answer (knowledge.access)."""
    if state not in AnswerState.values:
        raise Refused("invalid", _("no such state"), {"state": [_("Choose draft, published or retired.")]})
    with transaction.atomic():
        answer = _locked(profile, answer_id)
        if not access.may_publish(profile, answer):
            raise Refused("forbidden", _("only a library admin publishes their library's answers, "
                                         "a coordinator the consortium's"))
        answer.state = state
        answer.updated_at = now
        if state == AnswerState.PUBLISHED:
            answer.published_at = now
        answer.save(update_fields=["state", "updated_at", "published_at"])
    return answer


def chat_self_serve(chat_id: str, answer_id: int, now: datetime) -> Chat:
    """The patron read a published answer while waiting and it answered their question: the chat ends,
    its offers are withdrawn, and it counts as `self_served` (routing.outcomes). Only a chat still
    waiting: once a librarian has accepted it, the patron ends it as any other."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None:
            raise ServiceError("not_found", "no such chat")
        answer = Answer.objects.filter(pk=answer_id, consortium_id=chat.consortium_id,
                                       state=AnswerState.PUBLISHED).first()
        if answer is None:
            raise Refused("invalid", "no such answer", {"answer": ["not a published answer of this service"]})
        if chat.state != ChatState.QUEUED:
            raise Refused("conflict", "a librarian is answering this chat" if chat.state == ChatState.ACTIVE
                          else "this chat is over")
        trace(chat, "self_served", now, answer=answer.pk)
        chat_end_locked(chat, now, by="patron", reason=SELF_SERVED_REASON)
    return chat


def answers_due_for_review(today: date) -> list[Answer]:
    """Answers past their review date whose owner has not been told yet (the daily job tells them)."""
    return list(Answer.objects.filter(review_on__lt=today, owner__isnull=False, review_flagged_on__isnull=True)
                .exclude(state=AnswerState.RETIRED).select_related("owner__user", "consortium").order_by("pk"))


def answers_flag(answer_ids: list[int], today: date) -> int:
    return Answer.objects.filter(pk__in=answer_ids, review_flagged_on__isnull=True).update(review_flagged_on=today)
