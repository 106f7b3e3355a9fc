"""routing.structure: the kept picture of a consortium's structure is the database's, whoever wrote it.

The router reads libraries, partners, queues, hours, staff and the rota from a per-process picture
that is kept while the stamp changed by database triggers stays the same. Each test changes the
structure the way some writer would (a model save, a bulk update the ORM sends no signal for, raw
SQL, a rolled-back transaction) and checks that the next decision sees exactly what is committed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from consortium.models import Consortium
from libraries.models import Library, LibraryPartner, Queue, StaffProfile, WeeklyInterval
from routing import structure
from routing.models import Chat, ChatState, LibrarianPresence
from routing.plan import default_plan
from routing.selectors import present_views, situation_for
from routing.services import offers, route
from routing.services.common import ServiceError
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import T0, at, go_online, start

pytestmark = pytest.mark.django_db(transaction=True)


def _world() -> tuple[Any, ...]:
    consortium = make_consortium("vr")
    statewide = make_shared_queue(consortium, "statewide")
    partner = make_library(consortium, "partner")
    home = make_library(consortium, "home", partners=[partner])
    lena = make_staff(home, "lena")
    pablo = make_staff(partner, "pablo")
    for profile in (lena, pablo):
        go_online(profile, T0)
    return consortium, statewide, partner, home, lena, pablo


def test_an_unchanged_structure_is_read_once_and_then_kept() -> None:
    consortium, *_ = _world()
    first = structure.structure_of(consortium)
    LibrarianPresence.objects.update(idle_since=T0)  # presence is not structure: the picture holds
    assert structure.structure_of(consortium) is first


def test_the_consortiums_settings_are_part_of_the_picture_and_a_change_is_seen_at_once() -> None:
    consortium, *_ = _world()
    first = structure.structure_of(consortium)
    assert structure.structure_of(consortium.pk) is first
    assert first.consortium.pk == consortium.pk and first.consortium.idle_timeout == consortium.idle_timeout
    # A queryset update (no model signal), as a coordinator's settings page or psql would write it.
    Consortium.objects.filter(pk=consortium.pk).update(idle_timeout=consortium.idle_timeout + 600)
    assert structure.structure_of(consortium.pk).consortium.idle_timeout == consortium.idle_timeout + 600


def test_a_chat_routed_alone_goes_by_the_consortium_settings_just_written() -> None:
    """A deadline routes its chat with the consortium from the kept picture: a changed idle timeout
    counts from the next deadline, not from the next restart."""
    consortium, _statewide, _partner, _home, lena, _pablo = _world()
    chat = start(consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(1))
    route.chat_route(chat.pk, at(2))  # the picture is kept now, with the old idle timeout
    assert Chat.objects.get(pk=chat.pk).deadline == at(1) + timedelta(seconds=consortium.idle_timeout)

    Consortium.objects.filter(pk=consortium.pk).update(idle_timeout=60)
    route.chat_route(chat.pk, at(62))
    assert Chat.objects.get(pk=chat.pk).state == ChatState.ENDED


def test_every_kind_of_write_to_the_structure_is_seen_by_the_next_decision() -> None:
    consortium, statewide, partner, home, lena, pablo = _world()
    assert {v.id for v in present_views(consortium, T0, {"statewide"})} == set()

    # A bulk update (no model signal) gives lena the shared queue's m2m row through the ORM, and a
    # queryset update changes her capacity: both are seen.
    lena.queues.add(statewide)
    StaffProfile.objects.filter(pk=lena.pk).update(capacity=7)
    views = {v.id: v for v in present_views(consortium, T0, {"statewide"})}
    assert set(views) == {lena.pk} and views[lena.pk].capacity == 7

    # Raw SQL, as an operator's psql session would: pablo leaves the service.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {StaffProfile._meta.db_table} SET is_active = %s WHERE id = %s", [False, pablo.pk])
    assert {v.id for v in present_views(consortium, T0, {"partner", "home"})} == {lena.pk}

    # Partners and libraries: the plan of a new chat follows them.
    picture = structure.structure_of(consortium)
    assert [s.queues for s in picture.plan_for(home, consortium)] == [("home",), ("partner",), ("statewide",)]
    LibraryPartner.objects.filter(library=home).delete()
    picture = structure.structure_of(consortium)
    assert [s.queues for s in picture.plan_for(home, consortium)] == [("home",), ("statewide",)]
    assert picture.plan_for(home, consortium) == default_plan(Library.objects.get(pk=home.pk), consortium)
    Library.objects.filter(pk=partner.pk).update(is_active=False)
    assert "partner" not in structure.structure_of(consortium).libraries

    # Hours: the home queue closes (always_open off, no weekly intervals) and is closed at once.
    assert "home" in situation_for(consortium, T0).open_queues
    Queue.objects.filter(library=home).update(always_open=False)
    assert "home" not in situation_for(consortium, T0).open_queues
    queue = Queue.objects.get(library=home)
    WeeklyInterval.objects.create(queue=queue, weekday=T0.weekday(), start_minute=0, end_minute=24 * 60 - 1)
    assert "home" in situation_for(consortium, T0).open_queues


def test_a_picture_read_inside_a_rolled_back_transaction_is_never_used_after_it() -> None:
    consortium, *_, pablo = _world()
    before = structure.structure_of(consortium)
    seen_inside: list[int | None] = []

    def change_then_fail() -> None:
        with transaction.atomic():
            StaffProfile.objects.filter(pk=pablo.pk).update(capacity=1)
            seen_inside.append(structure.structure_of(consortium).staff[pablo.pk].capacity)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert seen_inside == [1]
    after = structure.structure_of(consortium)
    assert after.staff[pablo.pk].capacity is None
    assert after.stamp == before.stamp


def test_a_chat_started_on_a_kept_picture_that_has_changed_is_started_on_the_new_one() -> None:
    """A new chat decides on the picture its process keeps and checks the stamp with its first read:
    a library, a partner or a librarian added since is there for it, and nothing decided on the old
    picture is kept."""
    consortium, _statewide, partner, home, _lena, _pablo = _world()
    structure.structure_of(consortium)  # kept, before the changes below

    annex = make_library(consortium, "annex")
    ada = make_staff(annex, "ada")
    go_online(ada, T0)
    chat = start(consortium, T0, library_slug="annex")  # not "no library annex": the kept one has none
    assert chat.home_library_id == annex.pk
    assert set(chat.offers.filter(status="open").values_list("librarian_id", flat=True)) == {ada.pk}
    assert Chat.objects.filter(home_library=annex).count() == 1  # started once, not once per picture

    # The home library's partner list changes under a kept picture: the next chat's plan has it.
    structure.structure_of(consortium)
    LibraryPartner.objects.create(library=home, partner=annex, position=5)
    planned = start(consortium, T0, library_slug="home")
    assert any("annex" in step["queues"] for step in planned.plan), planned.plan
    assert structure.structure_of(consortium).partners[home.pk] == [partner.slug, annex.slug]


def test_a_library_that_is_not_there_is_refused_whatever_picture_was_kept() -> None:
    consortium, *_ = _world()
    structure.structure_of(consortium)
    with pytest.raises(ServiceError) as refused:
        start(consortium, T0, library_slug="nowhere")
    assert refused.value.reason == "not_found"
    Library.objects.filter(slug="home").update(is_active=False)  # gone since the picture was kept
    with pytest.raises(ServiceError):
        start(consortium, T0, library_slug="home")
    assert not Chat.objects.exists()
