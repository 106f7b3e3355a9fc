"""The fast reads of routing.selectors give what the plain ones give.

situation_for reads librarians as columns (present_views) and hours through libraries.hours_loader
(checked in tests/libraries/test_hours_loader.py), and the services find waiting chats by a database
match on their plan (mentioning). Each is checked here against the straightforward reading it replaced.
"""

from __future__ import annotations

import pytest

from routing import selectors
from routing.models import Chat, LibrarianPresence
from routing.plan import plan_to_json, transfer_plan
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import T0, at, go_online, start

pytestmark = pytest.mark.django_db(transaction=True)


def test_present_views_are_the_librarian_views_of_present_librarians() -> None:
    consortium = make_consortium("vr", librarian_capacity=4)
    statewide = make_shared_queue(consortium, "statewide")
    spanish = make_shared_queue(consortium, "spanish")
    home = make_library(consortium, "home")
    other = make_library(consortium, "other")
    people = [
        make_staff(home, "h1"),
        make_staff(home, "h2", queues=[statewide], capacity=2, languages=["en", "es"]),
        make_staff(other, "o1", queues=[statewide, spanish]),
        make_staff(other, "o2"),
        make_staff(other, "away"),
        make_staff(other, "gone"),
    ]
    for profile in people:
        go_online(profile, T0)
    LibrarianPresence.objects.filter(librarian__user__username="away").update(status="away")
    gone = people[-1]
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    chat = start(consortium, at(1), library_slug="home")
    go_online(make_staff(make_library(make_consortium("elsewhere"), "far"), "far1"), T0)
    assert chat.state == "queued"

    for queues in (None, {"home"}, {"statewide"}, {"other", "spanish"}, {"nothing"}):
        expected = {selectors.librarian_view(p, consortium.librarian_capacity, T0)
                    for p in selectors.present_librarians(consortium, queues)}
        assert set(selectors.present_views(consortium, T0, queues)) == expected, queues
    assert {v.id for v in selectors.present_views(consortium, T0)} == {p.pk for p in people[:4]}


def test_mentioning_keeps_exactly_the_chats_whose_plan_names_a_queue() -> None:
    consortium = make_consortium("vr")
    make_shared_queue(consortium, "statewide")
    partner = make_library(consortium, "partner")
    make_library(consortium, "home", partners=[partner])
    make_library(consortium, "home-2")  # a slug that is the start of another's is not a match for it
    go_online(make_staff(partner, "p1"), T0)
    chats = [start(consortium, at(i), library_slug=slug) for i, slug in enumerate(["home", "partner", "home-2"])]
    Chat.objects.filter(pk=chats[2].pk).update(plan=plan_to_json(transfer_plan("statewide", None)))
    rows = Chat.objects.filter(consortium=consortium)
    for queues in ({"home"}, {"partner"}, {"statewide"}, {"home-2"}, {"hom"}, {"home", "home-2"}, set()):
        expected = {c.pk for c in rows if not queues or queues & {q for s in c.plan for q in s["queues"]}}
        assert set(selectors.mentioning(rows, queues).values_list("pk", flat=True)) == expected, queues
