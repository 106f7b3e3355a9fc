"""What the timer fires (sweeps.due_sweep, sweeps.dead_processes_reap, presence.librarian_lost),
against the database with an injected clock: graces, idle ends, patrons gone, queues closing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libraries.models import StaffProfile
from routing.models import Chat, ChatState, Connection, LibrarianPresence, Message, Offer, ServerProcess, TraceEvent
from routing.services import chats, offers, sweeps
from routing.services.presence import patron_disconnected, staff_connected, staff_disconnected
from tests.factories import set_weekly_hours
from tests.routing.routing_helpers import (
    T0,
    Sent,
    World,
    at,
    fresh,
    go_online,
    held_by_lena,
    open_offers,
    patron_joins,
    staff,
    start,
    trace,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- librarian lost ----------------------------------------------------------------------------------


def test_librarian_lost_after_reconnect_grace_goes_offline_and_chats_return_to_their_step(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    paula = staff(w.partner, "paula")
    go_online(lena, at(-60))
    pablo_channel = go_online(pablo, at(-60))
    go_online(paula, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1))
    sweeps.due_sweep(at(45))  # on to the partners step
    offers.chat_accept(pablo, chat.pk, at(50))
    assert fresh(chat).accepted_step_index == 1
    chats.message_post(chat.pk, sender="patron", body="Are you still there?", client_id="c1", now=at(55))

    staff_disconnected(pablo_channel, at(60))
    presence = LibrarianPresence.objects.get(pk=pablo.pk)
    assert presence.online and presence.grace_until == at(90)  # reconnect_grace 30 s
    sweeps.due_sweep(at(89))
    assert fresh(chat).state == ChatState.ACTIVE and fresh(chat).librarian == pablo

    sent.clear()
    sweeps.due_sweep(at(90))
    presence = LibrarianPresence.objects.get(pk=pablo.pk)
    assert not presence.online and presence.grace_until is None
    after = fresh(chat)
    assert after.state == ChatState.QUEUED and after.librarian is None
    assert after.step_index == 1 and after.arrived_at == T0  # the step it was accepted in; arrival kept
    requeued = trace(chat, "requeued")
    assert len(requeued) == 1 and requeued[0].data == {"reason": "librarian_lost", "librarian": pablo.pk}
    bodies = list(Message.objects.filter(chat=chat).order_by("seq").values_list("sender", "body"))
    assert ("patron", "Are you still there?") in bodies  # nothing the patron typed is lost
    assert bodies[-1][0] == "system" and "disconnected" in bodies[-1][1]
    assert sent.to_chat(chat, "message")[-1]["sender"] == "system"
    assert sent.to_librarian(pablo, "unassigned")[0]["reason"] == "librarian_lost"
    # Offered again at its step to everyone in the cumulative audience who is present.
    assert open_offers(chat) == {lena.pk, paula.pk}
    assert sent.to_librarian(paula, "offer")[-1]["step"] == "partners"


def test_librarian_lost_has_their_open_offers_withdrawn(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    channel = go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1))
    assert open_offers(chat) == {lena.pk, leo.pk}
    staff_disconnected(channel, at(5))
    assert open_offers(chat) == {lena.pk, leo.pk}  # still present inside the grace
    sweeps.due_sweep(at(35))
    assert open_offers(chat) == {leo.pk}
    assert sent.to_librarian(lena, "offer_withdrawn")[-1]["chat"] == chat.pk


def test_reconnect_within_grace_keeps_presence_status_and_chats(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    channel = go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1))
    offers.chat_accept(lena, chat.pk, at(2))
    staff_disconnected(channel, at(10))
    waiting = start(w.consortium, at(20), library_slug="home")  # offered to her inside the grace
    state = staff_connected(lena, "staff-lena-2", "p1", at(30))
    assert state.presence == "available" and [c.pk for c in state.chats] == [chat.pk]
    assert [o.chat_id for o in state.offers] == [waiting.pk]  # a reconnecting console gets its offers
    sweeps.due_sweep(at(40))
    sweeps.due_sweep(at(100))
    presence = LibrarianPresence.objects.get(pk=lena.pk)
    assert presence.online and presence.status == "available" and presence.grace_until is None
    after = fresh(chat)
    assert after.state == ChatState.ACTIVE and after.librarian == lena
    assert trace(chat, "requeued") == []


def test_reconnect_after_the_grace_starts_away(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    channel = go_online(lena, at(-60))
    staff_disconnected(channel, at(0))
    sweeps.due_sweep(at(30))
    state = staff_connected(lena, "staff-lena-2", "p1", at(40))
    assert state.presence == "away"


def test_a_second_connection_keeps_the_librarian_present_when_one_closes(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    first = go_online(lena, at(-60))
    staff_connected(lena, "staff-lena-tab-2", "p1", at(-50))
    staff_disconnected(first, at(0))
    assert LibrarianPresence.objects.get(pk=lena.pk).grace_until is None
    sweeps.due_sweep(at(100))
    presence = LibrarianPresence.objects.get(pk=lena.pk)
    assert presence.online and presence.status == "available"


# --- dead processes --------------------------------------------------------------------------------------


def test_dead_process_reap_removes_its_connections_and_the_librarian_enters_grace(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(0), process="p1")
    go_online(leo, at(0), process="p2")
    sweeps.process_heartbeat("p2", at(15))
    assert sweeps.dead_processes_reap(at(20)) == 0  # p1 is 20 s quiet: not yet dead
    assert sweeps.dead_processes_reap(at(21)) == 1
    assert not ServerProcess.objects.filter(pk="p1").exists() and ServerProcess.objects.filter(pk="p2").exists()
    assert not Connection.objects.filter(librarian=lena).exists()
    assert Connection.objects.filter(librarian=leo).exists()
    presence = LibrarianPresence.objects.get(pk=lena.pk)
    assert presence.online and presence.grace_until == at(21 + 30)
    assert LibrarianPresence.objects.get(pk=leo.pk).grace_until is None
    sweeps.due_sweep(at(51))
    assert not LibrarianPresence.objects.get(pk=lena.pk).online
    assert LibrarianPresence.objects.get(pk=leo.pk).online


def test_dead_process_reap_counts_its_patrons_as_gone(sent: Sent) -> None:
    w = world()
    w.home.local_timeout = 600
    w.home.save()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60), process="p2")
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(0), process="p1")
    sweeps.process_heartbeat("p2", at(25))
    sweeps.dead_processes_reap(at(25))
    assert fresh(chat).patron_left_at == at(25)
    sweeps.due_sweep(at(85))
    assert fresh(chat).state == ChatState.ABANDONED


# --- patron lost -------------------------------------------------------------------------------------------


def _waiting_and_the_patron_gone_at_10s() -> tuple[StaffProfile, Chat]:
    """A chat waiting at home (local step 300 s, offered to lena) whose patron joined at 1 s and whose
    socket dropped at 10 s."""
    w = world()
    w.home.local_timeout = 300
    w.home.save()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    channel = patron_joins(chat, at(1))
    patron_disconnected(channel, at(10))
    return lena, chat


def test_a_waiting_chat_is_abandoned_after_patron_grace_and_offers_withdrawn(sent: Sent) -> None:
    lena, chat = _waiting_and_the_patron_gone_at_10s()
    assert fresh(chat).deadline == at(70)
    sweeps.due_sweep(at(69))
    assert fresh(chat).state == ChatState.QUEUED and open_offers(chat) == {lena.pk}
    sweeps.due_sweep(at(70))
    after = fresh(chat)
    assert after.state == ChatState.ABANDONED and after.ended_at == at(70) and after.deadline is None
    assert open_offers(chat) == set()
    assert Offer.objects.get(chat=chat, librarian=lena).reason == "abandoned"
    assert sent.to_librarian(lena, "offer_withdrawn")[-1] == {
        "type": "offer_withdrawn", "chat": chat.pk, "reason": "abandoned"}
    assert [t.kind for t in trace(chat)][-1] == "abandoned"
    assert sent.to_chat(chat, "state")[-1]["state"] == "abandoned"


def test_a_patron_back_within_grace_keeps_the_chat_waiting(sent: Sent) -> None:
    lena, chat = _waiting_and_the_patron_gone_at_10s()
    patron_joins(chat, at(40), channel="patron-back")
    sweeps.due_sweep(at(70))
    assert fresh(chat).state == ChatState.QUEUED and open_offers(chat) == {lena.pk}


# --- idle end ----------------------------------------------------------------------------------------------


def test_an_active_chat_ends_after_idle_timeout_with_a_system_message(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w)
    chats.message_post(chat.pk, sender="patron", body="thanks", client_id="c1", now=at(100))
    sweeps.due_sweep(at(100 + 1199))
    assert fresh(chat).state == ChatState.ACTIVE
    sweeps.due_sweep(at(100 + 1200))
    after = fresh(chat)
    assert after.state == ChatState.ENDED and after.end_reason == "idle" and after.ended_at == at(1300)
    last = Message.objects.filter(chat=chat).order_by("seq").last()
    assert last is not None and last.sender == "system" and "silence" in last.body
    assert trace(chat, "ended")[0].data == {"by": "system", "reason": "idle"}
    assert sent.to_librarian(lena, "unassigned")[-1]["reason"] == "ended"


# --- queues closing ----------------------------------------------------------------------------------------


def _closing_world() -> tuple[World, StaffProfile, StaffProfile]:
    w = world()
    # Home's local queue: Mondays 09:00-17:00 New York (EST, UTC-5, in early March 2026).
    set_weekly_hours(w.home.local_queue, {0: [(9 * 60, 17 * 60)]})
    lena = staff(w.home, "lena")
    sam = staff(w.hub, "sam", queues=[w.statewide])
    return w, lena, sam


CLOSING = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # Monday 17:00 EST


def test_a_queue_closing_while_a_chat_waits_moves_it_on_at_once(sent: Sent) -> None:
    w, lena, sam = _closing_world()
    go_online(lena, CLOSING - timedelta(minutes=10))
    go_online(sam, CLOSING - timedelta(minutes=10))
    chat = start(w.consortium, CLOSING - timedelta(seconds=30), library_slug="home")
    assert chat.step_index == 0 and open_offers(chat) == {lena.pk}
    assert chat.deadline == CLOSING  # before the local timeout: the queue's hours change first
    sweeps.due_sweep(CLOSING + timedelta(seconds=1))
    after = fresh(chat)
    assert after.state == ChatState.QUEUED and after.step_index == 2
    assert trace(chat, "escalated")[0].data == {"from": "local", "reason": "closed"}
    assert [(t.data["step"], t.data["reason"]) for t in trace(chat, "step_skipped")] == [("partners", "nobody")]
    assert open_offers(chat) == {sam.pk}
    assert Offer.objects.get(chat=chat, librarian=lena).status == Offer.Status.WITHDRAWN
    assert sent.to_librarian(lena, "offer_withdrawn")[-1]["chat"] == chat.pk


def test_an_accepted_chat_goes_on_when_its_queue_closes(sent: Sent) -> None:
    w, lena, sam = _closing_world()
    go_online(lena, CLOSING - timedelta(minutes=10))
    go_online(sam, CLOSING - timedelta(minutes=10))
    chat = start(w.consortium, CLOSING - timedelta(seconds=30), library_slug="home")
    patron_joins(chat, CLOSING - timedelta(seconds=29))
    offers.chat_accept(lena, chat.pk, CLOSING - timedelta(seconds=20))
    sweeps.due_sweep(CLOSING + timedelta(seconds=1))
    after = fresh(chat)
    assert after.state == ChatState.ACTIVE and after.librarian == lena


def test_a_chat_started_after_closing_skips_the_closed_local_step(sent: Sent) -> None:
    w, lena, sam = _closing_world()
    go_online(lena, CLOSING)
    go_online(sam, CLOSING)
    chat = start(w.consortium, CLOSING + timedelta(seconds=1), library_slug="home")
    assert trace(chat, "step_skipped")[0].data["reason"] == "closed"
    assert chat.step_index == 2 and open_offers(chat) == {sam.pk}


def test_a_queue_opening_offers_its_librarians_the_waiting_chats_at_once(sent: Sent) -> None:
    w, lena, sam = _closing_world()
    opening = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 EST
    go_online(lena, opening - timedelta(minutes=5))
    go_online(sam, opening - timedelta(minutes=5))
    chat = start(w.consortium, opening - timedelta(seconds=30), library_slug="home")
    patron_joins(chat, opening - timedelta(seconds=29))
    assert fresh(chat).step_index == 2 and open_offers(chat) == {sam.pk}
    assert fresh(chat).deadline == opening
    sweeps.due_sweep(opening)
    # Cumulative audience: the home queue is in it, and open now.
    assert open_offers(chat) == {lena.pk, sam.pk}
    assert sent.to_librarian(lena, "offer")[0]["queue"] == "home"


# --- max wait -----------------------------------------------------------------------------------------------


def test_after_max_wait_the_patron_is_offered_the_question_form_and_may_keep_waiting(sent: Sent) -> None:
    w = world()
    sam = staff(w.hub, "sam", queues=[w.statewide], capacity=1)
    go_online(sam, at(-60))
    busy = start(w.consortium, at(-10))
    patron_joins(busy, at(-9))
    offers.chat_accept(sam, busy.pk, at(-8))
    chat = start(w.consortium, T0)
    patron_joins(chat, at(1))
    assert fresh(chat).deadline == at(600)
    sweeps.due_sweep(at(599))
    assert not fresh(chat).max_wait_passed
    sweeps.due_sweep(at(600))
    after = fresh(chat)
    assert after.state == ChatState.QUEUED and after.max_wait_passed and after.deadline is None
    state = sent.to_chat(chat, "state")[-1]
    assert state["state"] == "queued" and state["offer_question_form"] is True
    assert trace(chat, "max_wait")[0].data == {"waited": 600}


# --- the sweep is idempotent --------------------------------------------------------------------------------


def test_due_sweep_twice_at_the_same_instant_has_no_second_effect(sent: Sent) -> None:
    w = world(home_mode="direct")
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-100))
    go_online(leo, at(-50))
    pablo_channel = go_online(pablo, at(-60))
    waiting = start(w.consortium, T0, library_slug="home")  # direct: lena's offer expires at 20 s
    other = start(w.consortium, at(1), library_slug="partner")
    patron_joins(other, at(2))
    offers.chat_accept(pablo, other.pk, at(3))
    staff_disconnected(pablo_channel, at(4))  # grace ends at 34 s

    first = sweeps.due_sweep(at(40))
    assert first > 0
    counts = (TraceEvent.objects.count(), Offer.objects.count(), Message.objects.count(), len(sent.events))
    assert sweeps.due_sweep(at(40)) == 0
    assert (TraceEvent.objects.count(), Offer.objects.count(), Message.objects.count(), len(sent.events)) == counts
    assert fresh(other).state == ChatState.QUEUED
    assert fresh(waiting).state == ChatState.QUEUED
