"""The fast reads of routing.selectors give what the plain ones give.

situation_for reads librarians as columns (present_views) and hours through libraries.hours_loader
(checked in tests/libraries/test_hours_loader.py), and the services find waiting chats by a database
match on their plan (mentioning). Each is checked here against the straightforward reading it replaced.
"""

from __future__ import annotations

import pytest
from django.db import connection

from libraries.models import Library
from routing import router, selectors
from routing.models import Chat, LibrarianPresence
from routing.plan import plan_from_json, plan_to_json, transfer_plan
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


def test_waiting_for_keeps_every_chat_whose_audience_meets_the_queues() -> None:
    """The first cut of the chats a presence change routes: on PostgreSQL through the audience column,
    elsewhere the plan's text. It may keep more (callers check each audience) but never fewer; on
    PostgreSQL it keeps no chat whose audience misses them, however its later steps read."""
    consortium = make_consortium("vr")
    make_shared_queue(consortium, "statewide")
    partner = make_library(consortium, "partner")
    make_library(consortium, "home", partners=[partner])
    make_library(consortium, "home-2", partners=[partner])
    go_online(make_staff(partner, "p1"), T0)
    chats = [start(consortium, at(i), library_slug=slug) for i, slug in enumerate(["home", "partner", "home-2"])]
    last = len(chats[0].plan) - 1
    Chat.objects.filter(pk=chats[0].pk).update(step_index=last)  # moved on to its last step, the shared queue
    rows = Chat.objects.filter(consortium=consortium, state="queued")
    assert rows.count() == 3
    exact = connection.vendor == "postgresql"
    for queues in ({"home"}, {"partner"}, {"statewide"}, {"home-2"}, {"hom"}, {"home", "statewide"}):
        reached = {c.pk for c in rows if queues & set(router.audience(plan_from_json(c.plan), max(c.step_index, 0)))}
        kept = set(selectors.waiting_for(rows, queues).values_list("pk", flat=True))
        assert reached <= kept, queues
        if exact:
            assert kept == reached, queues


def test_queue_position_counts_the_earlier_chats_whose_audience_meets_this_ones() -> None:
    """On PostgreSQL the count is made by the database; it is the count of the plain reading."""
    consortium = make_consortium("vr")
    make_shared_queue(consortium, "statewide")
    partner = make_library(consortium, "partner")
    make_library(consortium, "home", partners=[partner])
    make_library(consortium, "home-2", partners=[partner])
    make_library(consortium, "lone")
    for library in ("home", "partner", "home-2", "lone"):
        go_online(make_staff(Library.objects.get(slug=library), f"{library}-1"), T0)
    chats = [start(consortium, at(i), library_slug=slug)
             for i, slug in enumerate(["home", "partner", "home-2", "lone", "home", "home-2", "partner"])]
    # Some have moved on (their audience grew), one was transferred to a shared queue, one answered.
    Chat.objects.filter(pk__in=[chats[0].pk, chats[5].pk]).update(step_index=1)
    Chat.objects.filter(pk=chats[2].pk).update(plan=plan_to_json(transfer_plan("statewide", None)), step_index=0)
    Chat.objects.filter(pk=chats[3].pk).update(state="active")
    every = list(Chat.objects.filter(consortium=consortium))
    for chat in every:
        if chat.state != "queued":
            assert selectors.queue_position(chat) == 0
            continue
        mine = set(router.audience(plan_from_json(chat.plan), chat.step_index))
        ahead = [c for c in every if c.state == "queued" and c.arrived_at < chat.arrived_at
                 and mine & set(router.audience(plan_from_json(c.plan), c.step_index))]
        assert selectors.queue_position(chat) == len(ahead) + 1, chat.question
    # The last partner chat waits behind the first home chat (moved on to partners), the first partner
    # chat and the second home-2 chat (moved on to partners); not behind the transferred or answered ones.
    assert selectors.queue_position(Chat.objects.get(pk=chats[6].pk)) == 4
    # Counted together (a batch of chats the timer moves on), each chat's place is the same.
    assert selectors.queue_positions(every) == {chat.pk: selectors.queue_position(chat) for chat in every}
    assert selectors.queue_positions([]) == {}
