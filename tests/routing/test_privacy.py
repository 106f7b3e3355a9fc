"""Privacy: what scrubbing removes and keeps (fixed texts), the nightly job with per-library retention,
and a patron deleting their chat with its token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from coordination import statistics
from routing import privacy, tasks
from routing.models import Chat, ChatState, Message, Survey, Ticket
from routing.services import chats, offers
from tests.routing.routing_helpers import T0, at, go_online, patron_joins, staff, world

# --- the text rules, on fixed texts ---------------------------------------------------------------

REMOVED = [
    ("Email me at maria.lopez@example.org please", "Email me at [email] please"),
    ("or MARIA@Mail.Example.CO.UK", "or [email]"),
    ("call (813) 555-0100 or 813.555.0100", "call [phone] or [phone]"),
    ("+1 813 555 0100, 1-800-555-0100", "[phone], [phone]"),
    ("abroad +44 20 7946 0958", "abroad [phone]"),
    ("local 555-0199", "local [phone]"),
    ("my card is 21234005678901.", "my card is [number]."),
    ("card 2 1234 00567 8901 expired", "card [number] expired"),
    ("visa 4111 1111 1111 1111 or 4111-1111-1111-1111", "visa [number] or [number]"),
    ("ssn 123-45-6789", "ssn [number]"),
    ("account 8135550100", "account [number]"),
    ("Hi Maria, this is Ana. maria lopez wrote", "Hi [name], this is Ana. [name] wrote"),
]
KEPT = [
    "ISBN 978-0-306-40615-7 and ISBN: 0306406152",
    "call number QA76.73 .P98 2019, Dewey 025.04",
    "due 2026-03-04 at 10:30, open 9:00-17:00",
    "the years 1998-2004 and 2019, 2020",
    "ZIP 33602-1234 or 33602",
    "$1,234.50 in fines, 3 books, room 101",
    "Ana answered",  # a librarian's name is not the patron's
]


@pytest.mark.parametrize(("text", "expected"), REMOVED)
def test_scrubbing_removes(text: str, expected: str) -> None:
    assert privacy.scrub_text(text, ["Maria Lopez"]) == expected


@pytest.mark.parametrize("text", KEPT)
def test_scrubbing_keeps(text: str) -> None:
    assert privacy.scrub_text(text, ["Maria Lopez"]) == text


def test_short_name_parts_are_not_scrubbed_from_ordinary_words() -> None:
    assert privacy.scrub_text("Al Li asked about alligators", ["Al Li"]) == "[name] asked about alligators"


# --- the nightly job ----------------------------------------------------------------------------------


def a_conversation(w: Any, librarian: Any, *, home: str = "home", days_ago: int = 100,
                   end: bool = True) -> Chat:
    """A chat answered, with personal data everywhere it can be, made `days_ago` days before T0 + 1 day."""
    chat, _token = chats.chat_start(consortium=w.consortium, question="My card 21234005678901 is blocked",
                                       library_slug=home, name="Maria Lopez", email="maria@example.org",
                                       ip="203.0.113.7", now=T0)
    patron_joins(chat, T0)
    offers.chat_accept(librarian, chat.pk, at(5))
    chats.message_post(chat.pk, sender="patron", body="Reach me at 813-555-0100 or maria@example.org",
                          client_id="c1", now=at(10))
    chats.message_post(chat.pk, sender="librarian", body="Thanks Maria, I renewed ISBN 0306406152",
                          client_id="l1", now=at(20), librarian=librarian)
    if end:
        chats.chat_end(chat.pk, at(30), by="librarian", librarian=librarian)
    Chat.objects.filter(pk=chat.pk).update(read_scale=2, subjects=["renewals"])
    Survey.objects.create(chat=chat, rating=4, comment="Call me on (813) 555-0100", created_at=at(40))
    Ticket.objects.create(consortium=w.consortium, library=w.home, chat=chat, question="card 21234005678901",
                          transcript="Maria: maria@example.org", patron_name="Maria Lopez",
                          patron_email="maria@example.org", source="referral", status=Ticket.Status.ANSWERED,
                          created_at=T0)
    # Age it: everything above happened `days_ago` days before the job runs.
    Chat.objects.filter(pk=chat.pk).update(created_at=T0 - timedelta(days=days_ago),
                                           arrived_at=T0 - timedelta(days=days_ago))
    Ticket.objects.filter(chat=chat).update(created_at=T0 - timedelta(days=days_ago))
    return Chat.objects.get(pk=chat.pk)


@pytest.mark.django_db(transaction=True)
def test_the_nightly_job_scrubs_old_chats_and_keeps_every_figure(quiet: None) -> None:
    w = world()
    ana = staff(w.home, "ana")
    go_online(ana, T0)
    old = a_conversation(w, ana, days_ago=100)
    recent = a_conversation(w, ana, days_ago=10)
    kept = {"state": old.state, "answered_by": old.answered_by_id, "answered_step": old.answered_step,
            "arrived_at": old.arrived_at, "first_accepted_at": old.first_accepted_at, "ended_at": old.ended_at,
            "home_library": old.home_library_id, "read_scale": 2, "subjects": ["renewals"]}

    assert privacy.chats_scrub_expired(T0 + timedelta(days=1)) == 1
    assert privacy.chats_scrub_expired(T0 + timedelta(days=2)) == 0, "once is enough"

    old.refresh_from_db()
    assert old.scrubbed and (old.patron_name, old.patron_email, old.patron_ip) == ("", "", None)
    assert old.question == "My card [number] is blocked"
    assert {k: getattr(old, k if k not in ("answered_by", "home_library") else k + "_id") for k in kept} == kept
    bodies = list(Message.objects.filter(chat=old).order_by("seq").values_list("sender", "name", "body"))
    assert ("patron", "", "Reach me at [phone] or [email]") in bodies
    assert ("librarian", "Ana", "Thanks [name], I renewed ISBN 0306406152") in bodies
    assert bodies[0] == ("patron", "", "My card [number] is blocked")
    assert Survey.objects.get(chat=old).comment == "Call me on [phone]" and Survey.objects.get(chat=old).rating == 4
    ticket = Ticket.objects.get(chat=old)
    assert (ticket.patron_email, ticket.patron_name, ticket.question) == ("", "", "card [number]")

    recent.refresh_from_db()
    assert not recent.scrubbed and recent.patron_email == "maria@example.org"
    assert Ticket.objects.get(chat=recent).patron_email == "maria@example.org"


@pytest.mark.django_db(transaction=True)
def test_a_library_may_keep_chats_for_less_time_and_live_chats_wait(quiet: None) -> None:
    w = world()
    w.partner.transcript_retention_days = 30
    w.partner.save()
    ana, pat = staff(w.home, "ana"), staff(w.partner, "pat")
    go_online(ana, T0)
    go_online(pat, T0)
    home_chat = a_conversation(w, ana, days_ago=40)  # the consortium keeps 90 days
    partner_chat = a_conversation(w, pat, home="partner", days_ago=40)
    live = a_conversation(w, pat, home="partner", days_ago=400, end=False)
    assert live.state == ChatState.ACTIVE

    assert privacy.chats_scrub_expired(T0 + timedelta(days=1)) == 1
    assert not Chat.objects.get(pk=home_chat.pk).scrubbed
    assert Chat.objects.get(pk=partner_chat.pk).scrubbed
    assert not Chat.objects.get(pk=live.pk).scrubbed, "a chat still going on is never touched"


def test_the_job_is_a_celery_task_on_beats_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["scrub-expired-chats"]
    assert entry["task"] == tasks.chats_scrub_expired.name == "routing.tasks.chats_scrub_expired"
    calls: list[Any] = []
    monkeypatch.setattr(privacy, "chats_scrub_expired", lambda now: calls.append(now) or 3)
    assert tasks.chats_scrub_expired.apply().get() == 3, "the task is a thin wrapper, with the real clock"
    assert len(calls) == 1 and calls[0].tzinfo is not None


# --- a patron deletes their chat ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_patron_deletes_their_chat_with_its_token(client: Client, quiet: None) -> None:
    w = world()
    ana = staff(w.home, "ana")
    go_online(ana, T0)
    chat, token = chats.chat_start(consortium=w.consortium, question="Is 813-555-0100 on file?",
                                      library_slug="home", name="Maria", email="maria@example.org",
                                      ip="203.0.113.7", now=T0)
    patron_joins(chat, T0)
    offers.chat_accept(ana, chat.pk, at(5))
    chats.message_post(chat.pk, sender="patron", body="thanks", client_id="c1", now=at(10))
    Survey.objects.create(chat=chat, rating=5, comment="Maria says thanks", created_at=at(11))

    assert client.delete(f"/api/v1/chats/{chat.pk}", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.delete(f"/api/v1/chats/{chat.pk}").status_code == 404
    response = client.delete(f"/api/v1/chats/{chat.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 204 and response.content == b""

    chat.refresh_from_db()
    assert chat.state == ChatState.ENDED and chat.end_reason == "patron", "a chat going on is ended first"
    assert chat.scrubbed and chat.question == privacy.DELETED
    assert (chat.patron_name, chat.patron_email, chat.patron_ip) == ("", "", None)
    assert not Message.objects.filter(chat=chat).exists()
    survey = Survey.objects.get(chat=chat)
    assert (survey.rating, survey.comment) == (5, ""), "the rating is a figure; the comment was the patron's words"
    assert chat.answered_by == ana and chat.first_accepted_at is not None, "the statistical row stays"
    period = statistics.Period(T0.date(), T0.date(), statistics.ZoneInfo("UTC"))
    assert statistics.outcomes(statistics.chats_in(w.consortium, period))[None].answered == 1
    assert [t.kind for t in chat.trace.all()][-1] == "deleted"

    again = client.delete(f"/api/v1/chats/{chat.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert again.status_code == 404, "the token opens nothing any more"
    assert client.get(f"/api/v1/chats/{chat.pk}/transcript",
                      HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_operator_deletes_a_chat_whose_patron_lost_the_token(quiet: None) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    w = world()
    chat, _token = chats.chat_start(consortium=w.consortium, question="mine", library_slug="home",
                                       email="maria@example.org", now=T0)
    out = StringIO()
    call_command("forget_chat", chat.pk, stdout=out)
    assert "deleted" in out.getvalue()
    chat.refresh_from_db()
    assert chat.scrubbed and chat.patron_email == "" and not Message.objects.filter(chat=chat).exists()
    with pytest.raises(CommandError, match="no such chat"):
        call_command("forget_chat", "nope", stdout=StringIO())


def test_a_chat_id_never_starts_like_a_command_option() -> None:
    """An operator types the id after `manage.py forget_chat`; a leading "-" would read as an option
    (with 16 random URL-safe characters, 1 id in 32 started with "-" or "_")."""
    from routing.models import new_id

    ids = [new_id() for _ in range(3000)]
    assert all(i[0].isalnum() and len(i) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
