"""Writing answers: checks, who may publish, the review flag; save as answer from a chat; self-served."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail

from knowledge import services, tasks
from knowledge.drafting import draft_from_chat
from knowledge.models import Answer, AnswerState
from knowledge.services import AnswerFields
from routing.models import Chat, ChatState, Message
from routing.outcomes import Outcome, count
from routing.services.common import Refused
from tests.knowledge.helpers import NOW, kb_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w() -> dict[str, Any]:
    return kb_world()


def fields(**changes: str) -> AnswerFields:
    base = {"question": "  How do I   renew? ", "body": "Press **Renew**.", "keywords": "Renew, extend,, renew ",
            "language": "en", "scope": "", "review_on": ""}
    return AnswerFields(**{**base, **changes})


def test_a_librarian_drafts_for_their_library_or_the_consortium(w: dict[str, Any]) -> None:
    a = services.answer_create(w["librarian"], fields(scope="alpha"), NOW)
    assert (a.state, a.library, a.owner, a.question, a.keywords) == (
        AnswerState.DRAFT, w["alpha"], w["librarian"], "How do I renew?", "renew, extend")
    assert a.review_on == NOW.date() + timedelta(days=services.DEFAULT_REVIEW_DAYS)
    assert services.answer_create(w["librarian"], fields(), NOW).library is None


def test_bad_input_is_refused_with_every_field_at_fault_and_nothing_saved(w: dict[str, Any]) -> None:
    before = Answer.objects.count()
    with pytest.raises(Refused) as e:
        services.answer_create(w["librarian"], fields(question="", body="x" * 20001, language="fr", scope="beta",
                                                      review_on="tomorrow"), NOW)
    assert set(e.value.fields) == {"question", "body", "language", "scope", "review_on"}
    with pytest.raises(Refused) as e:
        services.answer_create(w["librarian"], fields(review_on=NOW.date().isoformat()), NOW)
    assert "review_on" in e.value.fields
    assert Answer.objects.count() == before


def test_library_admins_publish_their_librarys_answers_coordinators_the_consortiums(w: dict[str, Any]) -> None:
    mine = services.answer_create(w["librarian"], fields(scope="alpha"), NOW)
    shared = services.answer_create(w["librarian"], fields(), NOW)
    for who, answer in ((w["librarian"], mine), (w["admin_b"], mine), (w["coordinator"], mine),
                        (w["admin"], shared), (w["outsider"], shared)):
        with pytest.raises(Refused):
            services.answer_set_state(who, answer.pk, AnswerState.PUBLISHED, NOW)
    assert services.answer_set_state(w["admin"], mine.pk, AnswerState.PUBLISHED, NOW).published_at == NOW
    assert services.answer_set_state(w["coordinator"], shared.pk, AnswerState.PUBLISHED, NOW).state == "published"
    assert services.answer_set_state(w["coordinator"], shared.pk, AnswerState.RETIRED, NOW).state == "retired"


def test_owners_edit_their_drafts_only_publishers_edit_published_answers(w: dict[str, Any]) -> None:
    mine = services.answer_create(w["librarian"], fields(scope="alpha"), NOW)
    services.answer_update(w["librarian"], mine.pk, fields(question="Renewing books"), NOW)
    services.answer_set_state(w["admin"], mine.pk, AnswerState.PUBLISHED, NOW)
    with pytest.raises(Refused):
        services.answer_update(w["librarian"], mine.pk, fields(question="Changed after publishing"), NOW)
    with pytest.raises(Refused):  # another consortium's staff do not even find it
        services.answer_update(w["outsider"], mine.pk, fields(), NOW)
    edited = services.answer_update(w["admin"], mine.pk, fields(question="Renewals", scope="beta"), NOW)
    assert (edited.question, edited.library) == ("Renewals", w["alpha"])  # an edit never moves its scope


def test_answers_past_their_review_date_are_flagged_to_their_owners_once(w: dict[str, Any]) -> None:
    past = w["draft"]
    Answer.objects.filter(pk=past.pk).update(review_on=date(2026, 11, 1))
    Answer.objects.filter(pk=w["retired"].pk).update(review_on=date(2026, 11, 1))
    due = services.answers_due_for_review(NOW.date())
    assert [a.pk for a in due] == [past.pk]  # owned, past, not retired
    assert services.answers_flag([a.pk for a in due], NOW.date()) == 1
    assert services.answers_due_for_review(NOW.date()) == []


def test_the_daily_job_mails_each_owner_their_answers_past_review_once(w: dict[str, Any]) -> None:
    Answer.objects.filter(pk=w["draft"].pk).update(review_on=date(2020, 1, 1))
    assert tasks.answers_review_due() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [w["librarian"].user.email]
    assert "How do I renew a laptop loan?" in mail.outbox[0].body
    assert tasks.answers_review_due() == 0 and len(mail.outbox) == 1


def _chat(w: dict[str, Any], **fields: Any) -> Chat:
    base = {"consortium": w["consortium"], "home_library": w["alpha"],
            "question": "Renew for Ana Pérez, ana@example.org", "patron_name": "Ana Pérez",
            "patron_email": "ana@example.org", "token_hash": "x", "created_at": NOW, "arrived_at": NOW,
            "last_activity_at": NOW, "state": ChatState.QUEUED, "language": "en"}
    return Chat.objects.create(**{**base, **fields})


def test_save_as_answer_prefills_from_the_chat_without_the_patron(w: dict[str, Any]) -> None:
    chat = _chat(w, state=ChatState.ENDED)
    lines = [("patron", "I'm Ana, call me at 850-555-0142", False),
             ("librarian", "Hi Ana! Sign in to My Account and press Renew.", False),
             ("librarian", "Ana Pérez seems upset, card 21234000123456", True),
             ("librarian", "Write to ana@example.org when done.", False)]
    for seq, (sender, body, internal) in enumerate(lines, 1):
        Message.objects.create(chat=chat, seq=seq, sender=sender, body=body, at=NOW, internal=internal)
    draft = draft_from_chat(w["librarian"], chat)
    text = f"{draft.question} {draft.body}"
    for secret in ("Ana", "Pérez", "ana@example.org", "850-555-0142", "21234000123456", "upset"):
        assert secret not in text
    assert "press Renew" in draft.body and "850" not in draft.body
    assert draft.scope == "alpha"  # the chat's home library is the librarian's own


def test_this_answered_my_question_ends_a_waiting_chat_as_self_served(w: dict[str, Any]) -> None:
    chat = _chat(w)
    ended = services.chat_self_serve(chat.pk, w["renew"].pk, NOW)
    assert (ended.state, ended.end_reason) == (ChatState.ENDED, "self_served")
    assert count(Chat.objects.filter(pk=chat.pk))[None].self_served == 1
    assert Outcome.SELF_SERVED in [o for o, n in count(Chat.objects.all())[None].items() if n]
    assert chat.trace.filter(kind="self_served", data__answer=w["renew"].pk).exists()


def test_self_served_only_for_a_waiting_chat_and_a_published_answer_of_its_consortium(w: dict[str, Any]) -> None:
    active, waiting = _chat(w, state=ChatState.ACTIVE), _chat(w)
    with pytest.raises(Refused) as e:
        services.chat_self_serve(active.pk, w["renew"].pk, NOW)
    assert e.value.reason == "conflict"
    for answer in ("draft", "retired", "far"):
        with pytest.raises(Refused):
            services.chat_self_serve(waiting.pk, w[answer].pk, NOW)
    waiting.refresh_from_db()
    assert waiting.state == ChatState.QUEUED  # nothing changed
