"""Returning patrons (issue 17.7): with consent only, a device's chats are linked within the
retention; the librarian sees the earlier ones they may read; routing gives the librarian who last
helped a head start (a first step of the plan, docs/routing.md "Head start"). Injected clock.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from routing import blocks, returning
from routing.models import Chat
from routing.router import Step
from routing.services import chats, offers, route
from routing.services.presence import presence_set
from routing.staff.selectors import chat_info
from tests.routing.routing_helpers import (
    Sent,
    World,
    at,
    fresh,
    go_online,
    info,
    kinds,
    open_offers,
    patron_joins,
    staff,
    start,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)
DEVICE = "0123456789abcdef0123456789abcdef"


def test_the_head_start_is_a_first_step_naming_the_librarian_or_nothing() -> None:
    plan = (Step("local", ("home",), 45), Step("consortium", ("statewide",), None))
    assert returning.head_start_plan(plan, last_helper=None, seconds=30) == plan
    assert returning.head_start_plan((), last_helper=7, seconds=30) == ()
    assert returning.head_start_plan(plan, last_helper=7, seconds=30) == (Step("returning", (), 30, 7), *plan)


def _answered(w: World, librarian_name: str, now_s: float, *, remember: bool = True, library: str = "home") -> Chat:
    """A chat of DEVICE answered by `librarian_name` (of `library`), then ended."""
    lib = {"home": w.home, "partner": w.partner}[library]
    who = staff(lib, librarian_name) if not lib.staff.filter(user__username=librarian_name).exists() else \
        lib.staff.get(user__username=librarian_name)
    go_online(who, at(now_s - 1))
    chat = start(w.consortium, at(now_s), library_slug="home", device=DEVICE, remember=remember)
    patron_joins(chat, at(now_s + 1))
    offers.chat_accept(who, chat.pk, at(now_s + 2))
    chats.chat_end(chat.pk, at(now_s + 3), by="librarian", librarian=who)
    return fresh(chat)


def test_a_returning_patron_is_offered_first_to_the_librarian_who_last_helped_then_to_everyone(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    hugo = staff(w.home, "hugo")
    first = _answered(w, "lena", 0)
    go_online(hugo, at(90))
    chat = start(w.consortium, at(100), library_slug="home", device=DEVICE, remember=True)
    patron_joins(chat, at(100))
    assert chat.remembered and chat.plan[0] == {"name": "returning", "queues": [], "wait": 30,
                                                "librarian": lena.pk}
    assert open_offers(chat) == {lena.pk}  # hugo, present at home, waits out the head start
    route.chat_route(chat.pk, at(129))
    assert open_offers(chat) == {lena.pk}
    route.chat_route(chat.pk, at(130))
    assert open_offers(chat) == {lena.pk, hugo.pk}  # lena's offer stays: she serves the local queue
    assert "escalated" in kinds(chat)
    assert first.answered_by == lena


def test_the_head_start_is_skipped_at_once_when_that_librarian_is_not_present(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    hugo = staff(w.home, "hugo")
    _answered(w, "lena", 0)
    presence_set(lena, "away", at(50))
    go_online(hugo, at(90))
    chat = start(w.consortium, at(100), library_slug="home", device=DEVICE, remember=True)
    assert open_offers(chat) == {hugo.pk}
    assert kinds(chat)[:3] == ["created", "routing", "step_skipped"]


def test_without_consent_nothing_is_linked_and_nobody_gets_a_head_start(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    hugo = staff(w.home, "hugo")
    _answered(w, "lena", 0, remember=False)
    go_online(hugo, at(90))
    chat = start(w.consortium, at(100), library_slug="home", device=DEVICE, remember=True)
    assert [s["name"] for s in chat.plan] == ["local", "partners", "consortium"]  # the earlier one was not remembered
    assert open_offers(chat) == {lena.pk, hugo.pk}
    assert info(hugo, chat.pk, at(101))["earlier"] == []
    unremembered = start(w.consortium, at(200), library_slug="home", device=DEVICE)
    assert not unremembered.remembered and unremembered.plan[0]["name"] == "local"


def test_librarians_see_only_the_earlier_chats_they_may_read_within_the_retention(sent: Sent) -> None:
    w = world()
    first = _answered(w, "lena", 0)
    assert first.answered_by is not None
    presence_set(first.answered_by, "away", at(50))  # nobody at home: the next one goes to the partner
    second = _answered(w, "pia", 100, library="partner")  # a partner answered this one
    hugo = staff(w.home, "hugo")
    other_partner = staff(w.partner, "otto")
    chat = start(w.consortium, at(300), library_slug="home", device=DEVICE, remember=True)
    home_view = [e["chat"] for e in info(hugo, chat.pk, at(301))["earlier"]]
    assert home_view == [second.pk, first.pk]  # the home library reads its patrons' chats, newest first
    # otto (partner) reads the new chat only if he took part: he did not, so nothing at all.
    assert chat_info(other_partner, chat.pk, at(301)) is None
    pia = second.answered_by
    assert pia is not None
    offers.chat_accept(pia, chat.pk, at(302))
    assert [e["chat"] for e in info(pia, chat.pk, at(303))["earlier"]] == [second.pk]  # hers, not lena's
    later = at(300) + timedelta(days=w.consortium.transcript_retention_days, seconds=1)
    assert chat_info(hugo, chat.pk, later) is None  # past the retention: out of the console
    assert returning.linked_chats(w.consortium, blocks.device_hash(DEVICE), later).count() == 0


def test_the_api_takes_remember_only_as_a_boolean_with_a_device(client: Client) -> None:
    w = world()
    url = f"/api/v1/{w.consortium.slug}/chats"
    body = {"question": "Museum passes?", "library": "home"}
    for bad in ({"remember": "yes", "device": DEVICE}, {"remember": True}):
        r = client.post(url, json.dumps({**body, **bad}), content_type="application/json")
        assert r.status_code == 400 and "remember" in r.json()["error"]["fields"]
    r = client.post(url, json.dumps({**body, "remember": True, "device": DEVICE}), content_type="application/json")
    assert r.status_code == 201 and Chat.objects.get(pk=r.json()["id"]).remembered
