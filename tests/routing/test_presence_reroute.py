"""A presence change is answered first and its chats routed after; many chats are routed in batches.

routing.services.presence.presence_change commits the change and leaves `reroute_due` for the
timer; presence_reroute (run right after by the web process) routes the chats it concerns and
clears it. A web process that dies in between leaves the work to the timer. route.chats_route
routes the chats of a presence change or of a burst of deadlines BATCH per transaction.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from libraries.models import StaffProfile
from routing.models import Chat, LibrarianPresence, Offer
from routing.services import presence, route, sweeps
from tests.routing.routing_helpers import T0, at, fresh, go_online, open_offers, staff, start, trace, world
from tests.routing.socket_helpers import expect, socket_world, staff_socket, start_chat

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_for_pablo_while_lena_is_away() -> tuple[StaffProfile, StaffProfile, Chat]:
    """A home chat whose home librarian, lena, is away: the home step is skipped, pablo (partner) has it."""
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    for profile in (lena, pablo):
        go_online(profile, at(-60))
    presence.presence_set(lena, "away", at(-30))
    return lena, pablo, start(w.consortium, T0, library_slug="home")


def test_a_web_process_that_dies_after_answering_leaves_the_routing_to_the_timer() -> None:
    lena, pablo, chat = _waiting_for_pablo_while_lena_is_away()
    assert open_offers(chat) == {pablo.pk}

    # Lena says available; her console is answered; the process dies before routing anything.
    status, changed = presence.presence_change(lena, "available", at(1))
    assert (status, changed) == ("available", True)
    row = LibrarianPresence.objects.get(pk=lena.pk)
    assert row.reroute_due == at(1) + presence.REROUTE_FALLBACK
    assert open_offers(fresh(chat)) == {pablo.pk}

    sweeps.due_sweep(at(5))  # not due yet
    assert open_offers(fresh(chat)) == {pablo.pk}
    sweeps.due_sweep(at(6))
    assert open_offers(fresh(chat)) == {pablo.pk, lena.pk}
    assert LibrarianPresence.objects.get(pk=lena.pk).reroute_due is None
    sweeps.due_sweep(at(12))  # done once: nothing left for a second timer
    assert Offer.objects.filter(chat=chat, librarian=lena).count() == 1


def test_the_web_process_routing_right_after_clears_the_timers_fallback() -> None:
    lena, pablo, chat = _waiting_for_pablo_while_lena_is_away()
    presence.presence_change(lena, "available", at(1))
    presence.presence_reroute(lena.pk, at(1))
    assert open_offers(fresh(chat)) == {pablo.pk, lena.pk}
    assert LibrarianPresence.objects.get(pk=lena.pk).reroute_due is None


def test_a_later_change_keeps_its_own_fallback_when_an_earlier_reroute_finishes() -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    presence.presence_change(lena, "away", at(1))
    presence.presence_change(lena, "available", at(2))
    presence.presence_reroute(lena.pk, at(1))  # the first change's routing ends after the second change
    assert LibrarianPresence.objects.get(pk=lena.pk).reroute_due == at(2) + presence.REROUTE_FALLBACK


def test_a_librarian_available_for_more_chats_than_a_batch_is_offered_every_one_once() -> None:
    w = world()
    sam = staff(w.hub, "sam", queues=[w.statewide], capacity=1)
    go_online(sam, at(-60))
    presence.presence_set(sam, "away", at(-30))
    # No one anywhere: each chat ends unstaffed at once, unless the statewide queue is staffed. So a
    # statewide librarian, away, keeps them waiting: one is present but not available.
    keeper = staff(w.hub, "keeper", queues=[w.statewide])
    go_online(keeper, at(-60))
    waiting = [start(w.consortium, at(i * 0.01), library_slug="hub") for i in range(route.BATCH * 2 + 7)]
    assert all(fresh(c).state == "queued" for c in waiting)
    presence.presence_set(sam, "available", at(10))
    for chat in waiting:
        assert sam.pk in open_offers(fresh(chat)), chat.pk
        assert [e.data["librarian"] for e in trace(chat, "offered") if e.data["librarian"] == sam.pk] == [sam.pk]
    # Each chat's version moved once for this change, and its offer is for its current step.
    assert {o.step_serial == fresh(o.chat).step_serial for o in Offer.objects.filter(librarian=sam)} == {True}


def test_a_burst_of_deadlines_is_fired_in_one_tick() -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    for profile in (lena, pablo):
        go_online(profile, at(-60))
    chats = [start(w.consortium, at(i / 200), library_slug="home") for i in range(200)]
    deadlines = [fresh(c).deadline for c in chats]
    assert None not in deadlines
    deadline = max(d for d in deadlines if d is not None)
    assert sweeps.due_sweep(deadline) >= 200
    moved = Chat.objects.filter(pk__in=[c.pk for c in chats], step_index=1).count()
    assert moved == 200
    for chat in chats[:: 37]:
        assert open_offers(fresh(chat)) == {lena.pk, pablo.pk}
        assert [e.data["from"] for e in trace(chat, "escalated")] == ["local"]


@pytest.mark.usefixtures("fresh_process")
async def test_the_console_is_answered_before_the_chats_its_change_concerns_are_offered() -> None:
    w = await database_sync_to_async(socket_world)()
    b1 = await staff_socket(w["b1"])
    await expect(b1, "hello")
    await b1.send_json_to({"type": "presence", "status": "available"})
    await expect(b1, "presence", status="available")
    a1 = await staff_socket(w["a1"])
    await expect(a1, "hello")
    chat, _token = await start_chat(w, name="Pat")  # a1 away: offered to b1 on the shared queue
    await expect(b1, "offer", chat=chat.pk)
    await a1.send_json_to({"type": "presence", "status": "available"})
    kinds = []
    while "offer" not in kinds:
        kinds.append(json.loads((await a1.receive_output(3))["text"])["type"])
    assert kinds.index("presence") < kinds.index("offer")
    assert await database_sync_to_async(lambda: fresh(chat).offers.filter(status="open").count())() == 2
    await a1.disconnect()
    await b1.disconnect()
