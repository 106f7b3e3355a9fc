"""Follow-ups with deadlines (issue 17.5): the due time (the patron's deadline, the library's, the
consortium's), the reminder before it, the moves past due to the partners and the consortium with
their history, who sees which follow-up, the patron told an answer is on its way, and the figures.

Time passes by calling the sweep at a later instant, as Celery beat would (routing.followup_clock).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from coordination import followthrough, statistics
from routing.followup_clock import Followup, Rules, due_time, next_check, next_move
from routing.models import Ticket
from routing.services import followups, offers
from routing.services.common import Refused
from routing.services.followup_deadlines import followups_sweep
from routing.staff.selectors import followups_for
from tests.factories import PASSWORD
from tests.routing.routing_helpers import T0, World, at, go_online, patron_joins, staff, start, world

pytestmark = pytest.mark.django_db(transaction=True)
H = timedelta(hours=1)
RULES = Rules(reminder_hours=24, partner_hours=24)


# --- the decision, pure --------------------------------------------------------------------------------


def test_the_patrons_deadline_wins_then_the_librarys_then_the_consortiums() -> None:
    assert due_time(T0, consortium_hours=72, library_hours=None, patron_deadline=None).at == T0 + 72 * H
    assert due_time(T0, consortium_hours=72, library_hours=48, patron_deadline=None).source == "library"
    by = T0 + 10 * H
    due = due_time(T0, consortium_hours=72, library_hours=48, patron_deadline=by)
    assert (due.at, due.source) == (by, "patron")


def test_a_followup_is_reminded_then_moves_to_partners_then_to_the_consortium() -> None:
    f = Followup(due_at=T0 + 72 * H, stage="library", reminded=False, has_partners=True, open=True)
    assert next_move(f, T0 + 47 * H, RULES) is None
    assert next_check(f, RULES) == T0 + 48 * H
    remind = next_move(f, T0 + 48 * H, RULES)
    assert remind is not None and (remind.kind, remind.stage) == ("remind", "library")
    f = Followup(due_at=f.due_at, stage="library", reminded=True, has_partners=True, open=True)
    assert next_move(f, T0 + 71 * H, RULES) is None and next_check(f, RULES) == T0 + 72 * H
    move = next_move(f, T0 + 72 * H, RULES)
    assert move is not None and (move.kind, move.stage) == ("escalate", "partners")
    f = Followup(due_at=f.due_at, stage="partners", reminded=True, has_partners=True, open=True)
    assert next_move(f, T0 + 95 * H, RULES) is None
    move = next_move(f, T0 + 96 * H, RULES)
    assert move is not None and move.stage == "consortium"
    f = Followup(due_at=f.due_at, stage="consortium", reminded=True, has_partners=True, open=True)
    assert next_move(f, T0 + 1000 * H, RULES) is None and next_check(f, RULES) is None


def test_without_partners_past_due_goes_to_the_consortium_and_an_answered_one_stays_put() -> None:
    f = Followup(due_at=T0, stage="library", reminded=True, has_partners=False, open=True)
    move = next_move(f, T0, RULES)
    assert move is not None and move.stage == "consortium"
    done = Followup(due_at=T0, stage="library", reminded=False, has_partners=True, open=False)
    assert next_move(done, T0 + 500 * H, RULES) is None and next_check(done, RULES) is None


# --- against the database --------------------------------------------------------------------------------


def _left(w: World, deadline: str = "") -> Ticket:
    return followups.question_leave(consortium=w.consortium, question="Can I get the 1910 census on film?",
                                    email="pat@example.org", library_slug="home", now=T0, deadline=deadline)


def test_question_form_followup_is_due_by_the_consortium_default_or_the_librarys_override() -> None:
    w = world()
    ticket = _left(w)
    assert ticket.due_at == T0 + 72 * H and ticket.due_from == "consortium" and ticket.stage == "library"
    assert ticket.next_check_at == T0 + 48 * H
    w.home.followup_due_hours = 24
    w.home.save()
    ticket = _left(w)
    assert ticket.due_at == T0 + 24 * H and ticket.due_from == "library"


def test_the_patrons_deadline_is_the_end_of_that_day_where_the_library_is() -> None:
    w = world()
    ticket = _left(w, deadline="2026-03-04")  # T0 is Monday 2 March, 10:00 in New York
    assert ticket.due_from == "patron"
    assert ticket.due_at is not None and ticket.due_at.isoformat() == "2026-03-05T05:00:00+00:00"  # midnight EST


@pytest.mark.parametrize(("raw", "problem"), [("tomorrow", "YYYY-MM-DD"), ("2026-03-01", "today or a later"),
                                              ("2026-12-31", "within 90 days")])
def test_a_bad_patron_deadline_is_refused_with_its_field_and_nothing_is_kept(raw: str, problem: str) -> None:
    w = world()
    with pytest.raises(Refused) as refused:
        _left(w, deadline=raw)
    assert problem in " ".join(refused.value.fields["deadline"])
    assert not Ticket.objects.exists()


def test_the_api_answers_a_bad_deadline_with_the_field_and_a_good_one_with_the_due_time(client: Client) -> None:
    w = world()
    url = f"/api/v1/{w.consortium.slug}/questions"
    body = {"question": "Census?", "email": "deadline-form@example.org", "library": "home"}  # its own mail limit
    r = client.post(url, json.dumps({**body, "deadline": "2001-01-01"}), content_type="application/json")
    assert r.status_code == 400 and "deadline" in r.json()["error"]["fields"]
    assert not Ticket.objects.exists()
    day = (timezone.now() + timedelta(days=3)).date().isoformat()
    r = client.post(url, json.dumps({**body, "deadline": day}), content_type="application/json")
    assert r.status_code == 201, r.content
    ticket = Ticket.objects.get()
    assert r.json()["due_at"] == ticket.due_at.isoformat() and ticket.due_from == "patron"  # type: ignore[union-attr]
    assert "will answer by email. Expect it by " in mail.outbox[-1].body  # the patron is told when


def test_the_sweep_reminds_the_librarys_list_then_moves_the_followup_on_with_its_history() -> None:
    w = world()
    home_librarian = staff(w.home, "hannah")
    partner_librarian = staff(w.partner, "pia")
    coordinator = staff(w.hub, "cora", role="coordinator")
    ticket = _left(w)
    mail.outbox.clear()
    assert followups_sweep(T0 + 47 * H) == 0
    assert followups_sweep(T0 + 48 * H) == 1
    assert [m.to for m in mail.outbox] == [[home_librarian.user.email]]
    assert "due soon" in mail.outbox[0].subject.lower()
    assert followups_sweep(T0 + 50 * H) == 0  # reminded once
    assert ticket.pk not in {t.pk for t in followups_for(partner_librarian)}

    assert followups_sweep(T0 + 72 * H) == 1
    ticket.refresh_from_db()
    assert ticket.stage == "partners"
    assert mail.outbox[-1].to == [partner_librarian.user.email]
    # On the partners' list now, and still on the home library's; not yet the coordinators'.
    assert ticket.pk in {t.pk for t in followups_for(partner_librarian)}
    assert ticket.pk in {t.pk for t in followups_for(home_librarian)}
    assert ticket.pk not in {t.pk for t in followups_for(coordinator)}

    assert followups_sweep(T0 + 96 * H) == 1
    ticket.refresh_from_db()
    assert ticket.stage == "consortium" and ticket.next_check_at is None
    assert mail.outbox[-1].to == [coordinator.user.email]
    assert ticket.pk in {t.pk for t in followups_for(coordinator)}
    assert [(h["kind"], h.get("to")) for h in ticket.history] == [
        ("due", None), ("remind", None), ("escalate", "partners"), ("escalate", "consortium")]


def test_each_person_on_the_list_is_mailed_alone_in_their_own_language() -> None:
    w = world()
    staff(w.home, "hannah")
    english = staff(w.partner, "pia")
    spanish = staff(w.partner, "pablo")
    spanish.language = "es"  # the console's and the mail's language, their own choice
    spanish.save(update_fields=["language"])
    _left(w)
    followups_sweep(T0 + 48 * H)
    mail.outbox.clear()
    assert followups_sweep(T0 + 72 * H) == 1  # to the partners' list
    by_address = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_address) == sorted([english.user.email, spanish.user.email]) and len(mail.outbox) == 2
    assert by_address[english.user.email].subject.startswith("Overdue follow-up of")
    assert "the partner libraries' follow-up list" in by_address[english.user.email].body
    assert by_address[spanish.user.email].subject.startswith("Seguimiento vencido de")
    assert "Pregunta:" in by_address[spanish.user.email].body
    assert "Can I get the 1910 census on film?" in by_address[spanish.user.email].body


def test_a_sweep_run_late_moves_a_followup_as_far_as_it_is_due_at_once() -> None:
    w = world()
    ticket = _left(w)
    assert followups_sweep(T0 + 200 * H) == 2  # straight past the reminder: partners, then consortium
    ticket.refresh_from_db()
    assert ticket.stage == "consortium" and ticket.reminded_at is None


def test_an_answered_followup_is_never_reminded_nor_moved_and_the_patron_was_told_it_was_on_its_way() -> None:
    w = world()
    hannah = staff(w.home, "hannah")
    ticket = _left(w)
    mail.outbox.clear()
    followups.followup_claim(hannah, ticket.pk, T0 + H)
    assert [m.to for m in mail.outbox] == [["pat@example.org"]]
    assert "on its way" in mail.outbox[0].subject and "Home Library" in mail.outbox[0].body
    followups.followup_claim(hannah, ticket.pk, T0 + 2 * H)
    assert len(mail.outbox) == 1  # told once
    followups.followup_answer(hannah, ticket.pk, "Yes: the microfilm room has it.", T0 + 3 * H)
    mail.outbox.clear()
    assert followups_sweep(T0 + 500 * H) == 0
    assert mail.outbox == []


def test_a_referral_carries_the_patrons_deadline_from_the_librarian() -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home", email="pat@example.org")
    patron_joins(chat, at(1))
    offers.chat_accept(lena, chat.pk, at(2))
    ticket = followups.chat_refer(lena, chat.pk, at(3), library_slug=None, deadline="2026-03-03")
    assert ticket.due_from == "patron" and ticket.due_at is not None
    assert ticket.due_at.isoformat() == "2026-03-04T05:00:00+00:00"


def test_statistics_count_time_to_answer_and_deadlines_kept_and_coordinators_see_overdue_by_library() -> None:
    w = world()
    hannah = staff(w.home, "hannah")
    coordinator = staff(w.hub, "cora", role="coordinator")
    quick, slow, late = _left(w), _left(w), _left(w)
    followups.followup_answer(hannah, quick.pk, "Answer.", T0 + 2 * H)
    followups.followup_answer(hannah, slow.pk, "Answer.", T0 + 80 * H)  # due at 72 h: late
    period = statistics.Period(T0.date() - timedelta(days=1), T0.date() + timedelta(days=1),
                               statistics.ZoneInfo("UTC"))
    figures = followthrough.followup_figures(followthrough.followups_in(w.consortium, period), T0 + 100 * H)
    assert (figures.left, figures.answered, figures.in_time, figures.overdue_open) == (3, 2, 1, 1)
    assert figures.p50_hours == pytest.approx(41.0)
    groups = followthrough.overdue_by_library(w.consortium, T0 + 100 * H)
    assert [(name, [r.ticket.pk for r in rows]) for name, rows in groups] == [("Home Library", [late.pk])]
    assert groups[0][1][0].hours_late == pytest.approx(28.0)

    client = Client()
    assert client.login(username=coordinator.user.username, password=PASSWORD)
    Ticket.objects.filter(pk=late.pk).update(due_at=timezone.now() - H)
    page = client.get(f"/coordinator/{w.consortium.slug}/follow-ups/overdue/")
    assert page.status_code == 200 and f'data-followup="{late.pk}"' in page.content.decode()
    figures_page = client.get(f"/coordinator/{w.consortium.slug}/statistics/?since=2026-03-01&until=2026-03-03")
    text = figures_page.content.decode()
    assert 'data-figure="followups-left">3<' in text and 'data-figure="followups-in-time">1<' in text
    assert 'data-figure="handbacks-offered">0<' in text
    librarian = Client()
    assert librarian.login(username=hannah.user.username, password=PASSWORD)
    assert librarian.get(f"/coordinator/{w.consortium.slug}/follow-ups/overdue/").status_code in (403, 404)

    # In Spanish: the follow-up's status (the model's choice) and its history's steps (stored codes), named.
    Ticket.objects.filter(pk=late.pk).update(history=[
        *Ticket.objects.get(pk=late.pk).history,
        {"at": "2026-03-05T06:00:00+00:00", "kind": "escalate", "reason": "overdue", "from": "library",
         "to": "partners"}])
    coordinator.language = "es"
    coordinator.save(update_fields=["language"])
    spanish = client.get(f"/coordinator/{w.consortium.slug}/follow-ups/overdue/").content.decode()
    assert "plazo fijado" in spanish and "pasó a otra lista → las bibliotecas asociadas" in spanish
    assert "<td>Nuevo</td>" in spanish and "escalate" not in spanish
