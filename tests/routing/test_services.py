"""The routing services against the database, with an injected clock (docs/routing.md, docs/protocol.md).

Every call takes a fixed `now`; time passes by calling sweeps.due_sweep at a later instant, as the
timer would. Frames are observed at routing.events._send, after commit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from libraries.models import StaffProfile
from routing import frames
from routing.models import Chat, ChatState, LibrarianPresence, Message, Offer, Ticket
from routing.services import chats, followups, offers, route, sweeps, transfers
from routing.services.common import ServiceError
from routing.services.presence import patron_disconnected, presence_set, staff_connected
from tests.factories import make_shared_queue
from tests.routing.routing_helpers import (
    T0,
    Sent,
    at,
    fresh,
    go_online,
    held_by_lena,
    kinds,
    open_offers,
    patron_joins,
    staff,
    start,
    trace,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- the home library -------------------------------------------------------------------------------


def test_home_library_is_the_library_named_by_slug_before_any_zip(sent: Sent) -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="partner", zip_code="12345")
    assert chat.home_library == w.partner and chat.home_found_by == "library"
    created = trace(chat, "created")[0]
    assert created.data["home_library"] == "partner" and created.data["found_by"] == "library"


def test_unknown_library_slug_is_refused(sent: Sent) -> None:
    w = world()
    with pytest.raises(ServiceError) as err:
        start(w.consortium, T0, library_slug="nowhere")
    assert err.value.reason == "not_found"
    assert not Chat.objects.exists()


def test_home_library_found_by_zip_when_no_library_is_named(sent: Sent) -> None:
    w = world()
    chat = start(w.consortium, T0, zip_code="12345-6789")
    assert chat.home_library == w.home and chat.home_found_by == "zip"
    assert trace(chat, "created")[0].data == {"home_library": "home", "found_by": "zip", "language": None}


def test_no_home_library_starts_at_the_consortium_step(sent: Sent) -> None:
    w = world()
    sam = staff(w.hub, "sam", queues=[w.statewide])
    lena = staff(w.home, "lena")
    go_online(sam, at(-60))
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, zip_code="99999")
    assert chat.home_library is None and chat.home_found_by == "none"
    assert [step["name"] for step in chat.plan] == ["consortium"]
    assert chat.state == ChatState.QUEUED and chat.step_index == 0
    assert trace(chat, "step_entered")[0].data["step"] == "consortium"
    assert open_offers(chat) == {sam.pk}
    offer = sent.to_librarian(sam, "offer")[0]
    assert offer["step"] == "consortium" and offer["queue"] == "statewide" and offer["home_library"] is None
    assert sent.to_librarian(lena, "offer") == []


def test_chat_start_stores_the_question_as_message_seq_1_and_traces_created(sent: Sent) -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home", question="Where is the 1890 census?", name="Pat")
    messages = list(Message.objects.filter(chat=chat))
    assert [(m.seq, m.sender, m.body, m.name) for m in messages] == [
        (1, "patron", "Where is the 1890 census?", "Pat")]
    assert chat.last_seq == 1 and chat.arrived_at == T0 and chat.created_at == T0
    assert kinds(chat)[0] == "created"
    assert trace(chat, "created")[0].at == T0


# --- escalation ----------------------------------------------------------------------------------------


def test_local_librarian_is_offered_first_and_partner_only_after_local_timeout(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    assert open_offers(chat) == {lena.pk}
    assert sent.to_librarian(lena, "offer")[0]["step"] == "local"
    assert sent.to_librarian(pablo, "offer") == []
    assert chat.deadline == at(45)  # the consortium's local_timeout

    sweeps.due_sweep(at(44))
    assert open_offers(chat) == {lena.pk} and fresh(chat).step_index == 0

    sweeps.due_sweep(at(45))
    chat = fresh(chat)
    assert chat.step_index == 1 and chat.step_entered_at == at(45)
    # Cumulative audience: the home librarian keeps her offer; the partner's librarian joins.
    assert open_offers(chat) == {lena.pk, pablo.pk}
    offer = sent.to_librarian(pablo, "offer")[0]
    assert offer["step"] == "partners" and offer["queue"] == "partner" and offer["waiting_since"] == T0.isoformat()
    assert len(sent.to_librarian(lena, "offer")) == 1  # no churn for the librarian who already sees it


def test_library_local_timeout_overrides_the_consortium_default(sent: Sent) -> None:
    w = world()
    w.home.local_timeout = 10
    w.home.save()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    assert chat.deadline == at(10)


def test_escalations_are_traced_with_step_entered_and_timeout_reason(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    sam = staff(w.hub, "sam", queues=[w.statewide])
    for profile in (lena, pablo, sam):
        go_online(profile, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    sweeps.due_sweep(at(45))
    sweeps.due_sweep(at(105))
    chat = fresh(chat)
    assert chat.step_index == 2 and open_offers(chat) == {lena.pk, pablo.pk, sam.pk}
    escalated = trace(chat, "escalated")
    assert [(e.at, e.data) for e in escalated] == [
        (at(45), {"from": "local", "reason": "timeout"}),
        (at(105), {"from": "partners", "reason": "timeout"}),
    ]
    entered = trace(chat, "step_entered")
    assert [(e.at, e.data["step"]) for e in entered] == [(T0, "local"), (at(45), "partners"), (at(105), "consortium")]
    # The last step has no timeout: nothing more is due until max_wait.
    assert chat.deadline == at(120)  # the never-joined patron's grace (60 s + patron_grace)
    patron_joins(chat, at(106))
    assert fresh(chat).deadline == at(600)
    # The patron saw each step change. Not the first step: nobody is in a chat's group before the
    # start's answer gives its id, and a patron's socket or poll is sent its state when it joins.
    assert [f["step"] for f in sent.to_chat(chat, "state")] == ["partners", "consortium"]


def test_closed_home_library_is_skipped_at_once_with_a_step_skipped_trace(sent: Sent) -> None:
    w = world(home_open=False)
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    skipped = trace(chat, "step_skipped")
    assert [(s.at, s.data["step"], s.data["reason"]) for s in skipped] == [(T0, "local", "closed")]
    assert chat.step_index == 1 and chat.step_entered_at == T0
    assert open_offers(chat) == {pablo.pk}  # the closed queue's librarian is not offered its chat
    assert chat.deadline == at(60)  # the partners step waits partner_timeout from now


def test_nobody_present_anywhere_makes_the_chat_unstaffed_at_once(sent: Sent) -> None:
    w = world()
    staff(w.home, "lena")  # exists, but is not signed in
    chat = start(w.consortium, T0, library_slug="home")
    assert chat.state == ChatState.UNSTAFFED and chat.deadline is None
    assert [(s.data["step"], s.data["reason"]) for s in trace(chat, "step_skipped")] == [
        ("local", "nobody"), ("partners", "nobody"), ("consortium", "nobody")]
    assert kinds(chat)[-1] == "unstaffed"
    assert not Offer.objects.exists()
    # Nobody can be in the chat's group yet (its id is in the start's answer, with its state): the
    # patron's socket or poll is sent the state when it joins, with the question form offered.
    assert sent.to_chat(chat, "state") == []
    state = frames.patron_state_frame(fresh(chat))
    assert state["state"] == "unstaffed" and state["offer_question_form"] is True
    # Nothing is left for the timer to do with it.
    assert sweeps.due_sweep(at(3600)) == 0


def test_a_librarian_who_is_away_does_not_count_as_present(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    sweeps.process_heartbeat("p1", at(-60))
    state = staff_connected(lena, "staff-lena", "p1", at(-60))
    assert state.presence == "away"  # a first connection starts away
    chat = start(w.consortium, T0, library_slug="home")
    assert chat.state == ChatState.UNSTAFFED


def test_librarian_becoming_available_is_offered_waiting_chats_at_once(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    assert open_offers(chat) == {lena.pk}

    sweeps.process_heartbeat("p1", at(5))
    staff_connected(leo, "staff-leo", "p1", at(5))
    assert sent.to_librarian(leo, "offer") == []  # connected but away
    presence_set(leo, "available", at(6))
    offer = sent.to_librarian(leo, "offer")
    assert len(offer) == 1 and offer[0]["chat"] == chat.pk and offer[0]["step"] == "local"
    assert Offer.objects.get(chat=chat, librarian=leo).created_at == at(6)
    # A partner librarian coming online is not offered a chat still in its local step.
    go_online(pablo, at(7))
    assert sent.to_librarian(pablo, "offer") == []
    assert open_offers(chat) == {lena.pk, leo.pk}


def test_a_step_whose_librarians_are_all_busy_is_waited_on_not_skipped(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena", capacity=1)
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    busy = start(w.consortium, at(-5), library_slug="home")
    patron_joins(busy, at(-4))
    offers.chat_accept(lena, busy.pk, at(-3))
    chat = start(w.consortium, T0, library_slug="home")
    assert chat.state == ChatState.QUEUED and chat.step_index == 0 and chat.deadline == at(45)
    assert trace(chat, "step_skipped") == [] and open_offers(chat) == set()
    chats.chat_end(busy.pk, at(20), by="patron")  # freeing capacity offers her the chat at once
    assert open_offers(chat) == {lena.pk} and fresh(chat).step_index == 0


def test_a_chat_with_a_language_goes_only_to_librarians_who_speak_it_before_the_last_step(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    luis = staff(w.home, "luis", languages=["en", "es"])
    sam = staff(w.hub, "sam", queues=[w.statewide])
    for profile in (lena, luis, sam):
        go_online(profile, at(-60))
    chat = start(w.consortium, T0, library_slug="home", language="es")
    assert open_offers(chat) == {luis.pk}
    presence_set(luis, "away", at(5))
    # Nobody left who speaks Spanish: the steps before the last cannot answer; the last offers it to all.
    chat = fresh(chat)
    assert chat.step_index == 2
    assert trace(chat, "escalated")[0].data == {"from": "local", "reason": "nobody"}
    assert open_offers(chat) == {lena.pk, sam.pk}


# --- accept --------------------------------------------------------------------------------------------


def test_accept_has_exactly_one_winner_and_a_second_accept_is_taken(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    assert open_offers(chat) == {lena.pk, leo.pk}

    offers.chat_accept(lena, chat.pk, at(8))
    with pytest.raises(ServiceError) as err:
        offers.chat_accept(leo, chat.pk, at(8))
    assert err.value.reason == "taken"
    chat = fresh(chat)
    assert chat.state == ChatState.ACTIVE and chat.librarian == lena and chat.answered_by == lena
    assert chat.accepted_at == at(8) and chat.answered_step == "local" and chat.accepted_step_index == 0
    assert Offer.objects.get(chat=chat, librarian=lena).status == Offer.Status.ACCEPTED
    assert sent.to_librarian(lena, "assigned")[0]["chat"] == chat.pk
    assert sent.to_librarian(leo, "assigned") == []
    state = sent.to_chat(chat, "state")[-1]
    assert state["state"] == "active" and state["librarian"]["name"] == "Lena"
    accepted = trace(chat, "accepted")
    assert len(accepted) == 1 and accepted[0].data["username"] == "lena" and accepted[0].data["waited"] == 8


def test_accept_withdraws_every_other_offer_with_reason_accepted(sent: Sent) -> None:
    w = world()
    lena, leo, lou = (staff(w.home, name) for name in ("lena", "leo", "lou"))
    for profile in (lena, leo, lou):
        go_online(profile, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(leo, chat.pk, at(3))
    for loser in (lena, lou):
        assert sent.to_librarian(loser, "offer_withdrawn") == [
            {"type": "offer_withdrawn", "chat": chat.pk, "reason": "accepted"}]
    assert sent.to_librarian(leo, "offer_withdrawn") == []
    assert open_offers(chat) == set()
    assert set(Offer.objects.filter(chat=chat, status=Offer.Status.WITHDRAWN, reason="accepted")
               .values_list("librarian_id", flat=True)) == {lena.pk, lou.pk}


def test_accept_without_an_offer_is_not_offered(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")  # local step: pablo has no offer
    with pytest.raises(ServiceError) as err:
        offers.chat_accept(pablo, chat.pk, at(2))
    assert err.value.reason == "not_offered"
    assert fresh(chat).state == ChatState.QUEUED and open_offers(chat) == {lena.pk}


def test_accept_past_capacity_fails_with_at_capacity(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena", capacity=2)
    go_online(lena, at(-60))
    first = start(w.consortium, T0, library_slug="home")
    second = start(w.consortium, at(1), library_slug="home")
    assert open_offers(second) == {lena.pk}
    offers.chat_accept(lena, first.pk, at(2))
    # Her capacity is lowered while the second offer is still open (as a concurrent accept would do).
    StaffProfile.objects.filter(pk=lena.pk).update(capacity=1)
    lena.refresh_from_db()
    with pytest.raises(ServiceError) as err:
        offers.chat_accept(lena, second.pk, at(3))
    assert err.value.reason == "at_capacity"
    assert fresh(second).state == ChatState.QUEUED and fresh(second).librarian is None


def test_accept_of_an_ended_chat_fails_with_ended(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    chats.chat_end(chat.pk, at(4), by="patron")
    assert sent.to_librarian(lena, "offer_withdrawn")[-1]["reason"] == "ended"
    with pytest.raises(ServiceError) as err:
        offers.chat_accept(lena, chat.pk, at(5))
    assert err.value.reason == "ended"
    assert fresh(chat).state == ChatState.ENDED


def test_a_librarian_who_fills_up_loses_other_offers_and_gets_them_back_when_freed(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena", capacity=1)
    go_online(lena, at(-60))
    first = start(w.consortium, T0, library_slug="home")
    second = start(w.consortium, at(1), library_slug="home")
    offers.chat_accept(lena, first.pk, at(2))
    assert open_offers(second) == set()  # full: her offer of the second chat is withdrawn
    assert sent.to_librarian(lena, "offer_withdrawn")[-1]["chat"] == second.pk
    chats.chat_end(first.pk, at(3), by="librarian", librarian=lena)
    # Freed capacity makes her eligible again in the same step: she is offered the chat again.
    assert open_offers(second) == {lena.pk}
    assert [f["chat"] for f in sent.to_librarian(lena, "offer")] == [first.pk, second.pk, second.pk]
    offers.chat_accept(lena, second.pk, at(4))
    assert fresh(second).librarian == lena


def test_a_librarian_back_from_away_is_offered_the_waiting_chat_again(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    presence_set(lena, "away", at(5))
    assert open_offers(chat) == {leo.pk}
    presence_set(lena, "available", at(10))
    assert open_offers(chat) == {lena.pk, leo.pk}
    assert len(sent.to_librarian(lena, "offer")) == 2


# --- decline ---------------------------------------------------------------------------------------------


def test_decline_withdraws_the_offer_with_reason_declined_and_is_not_reoffered_in_the_same_step(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_decline(lena, chat.pk, at(5))
    assert sent.to_librarian(lena, "offer_withdrawn") == [
        {"type": "offer_withdrawn", "chat": chat.pk, "reason": "declined"}]
    assert open_offers(chat) == {leo.pk}
    assert trace(chat, "declined")[0].data["username"] == "lena"
    # Going away and back, or anything else that re-routes the chat, does not bring it back in this step.
    presence_set(lena, "away", at(6))
    presence_set(lena, "available", at(7))
    route.chat_route(chat.pk, at(8))
    assert open_offers(chat) == {leo.pk}
    assert len(sent.to_librarian(lena, "offer")) == 1
    with pytest.raises(ServiceError) as err:
        offers.chat_decline(lena, chat.pk, at(9))
    assert err.value.reason == "not_offered"


def test_a_declined_chat_is_offered_again_in_the_next_step(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_decline(lena, chat.pk, at(5))
    sweeps.due_sweep(at(45))
    assert open_offers(chat) == {lena.pk, pablo.pk}
    assert sent.to_librarian(lena, "offer")[-1]["step"] == "partners"


# --- direct mode ---------------------------------------------------------------------------------------


def test_direct_offer_goes_to_one_librarian_longest_idle_first(sent: Sent) -> None:
    w = world(home_mode="direct")
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(leo, at(-50))
    go_online(lena, at(-100))  # idle longer
    chat = start(w.consortium, T0, library_slug="home")
    assert open_offers(chat) == {lena.pk}
    offer = sent.to_librarian(lena, "offer")[0]
    assert offer["mode"] == "direct" and offer["expires_at"] == at(20).isoformat()
    assert chat.deadline == at(20)


def test_direct_offer_expires_sets_the_librarian_away_and_offers_the_next(sent: Sent) -> None:
    w = world(home_mode="direct")
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-100))
    go_online(leo, at(-50))
    chat = start(w.consortium, T0, library_slug="home")
    sweeps.due_sweep(at(19))
    assert open_offers(chat) == {lena.pk}

    sweeps.due_sweep(at(20))
    assert Offer.objects.get(chat=chat, librarian=lena).status == Offer.Status.EXPIRED
    assert {"type": "offer_withdrawn", "chat": chat.pk, "reason": "expired"} in sent.to_librarian(lena)
    assert sent.to_librarian(lena, "presence") == [{"type": "presence", "status": "away", "reason": "offer_expired"}]
    presence = LibrarianPresence.objects.get(pk=lena.pk)
    assert presence.status == "away" and presence.away_reason == "offer_expired"
    assert open_offers(chat) == {leo.pk}
    offer = sent.to_librarian(leo, "offer")[0]
    assert offer["mode"] == "direct" and offer["expires_at"] == at(40).isoformat()
    assert trace(chat, "offer_expired")[0].data == {"librarian": lena.pk}
    # The step's own deadline still counts from when the chat entered it.
    assert fresh(chat).deadline == at(40) and fresh(chat).step_entered_at == T0


def test_direct_decline_moves_the_offer_to_the_next_librarian(sent: Sent) -> None:
    w = world(home_mode="direct")
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-100))
    go_online(leo, at(-50))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_decline(lena, chat.pk, at(3))
    assert open_offers(chat) == {leo.pk}
    assert LibrarianPresence.objects.get(pk=lena.pk).status == "available"  # a decline is not a timeout
    offers.chat_decline(leo, chat.pk, at(4))
    assert open_offers(chat) == set()  # nobody is offered the same chat twice in one step


# --- messages ------------------------------------------------------------------------------------------


def test_message_post_allocates_sequence_numbers_after_the_question(sent: Sent) -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    first, created1 = chats.message_post(chat.pk, sender="patron", body="Hello?", client_id="c1", now=at(1))
    second, created2 = chats.message_post(chat.pk, sender="patron", body="Anyone?", client_id="c2", now=at(2))
    assert (first.seq, second.seq, created1, created2) == (2, 3, True, True)
    assert fresh(chat).last_seq == 3
    assert [(f["seq"], f["body"]) for f in sent.to_chat(chat, "message")] == [(2, "Hello?"), (3, "Anyone?")]


def test_a_message_resent_with_the_same_client_id_is_stored_once(sent: Sent) -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    first, created = chats.message_post(chat.pk, sender="patron", body="Hello?", client_id="same", now=at(1))
    again, created_again = chats.message_post(chat.pk, sender="patron", body="Hello?", client_id="same",
                                                 now=at(2))
    assert created and not created_again and again.pk == first.pk and again.seq == 2
    assert Message.objects.filter(chat=chat).count() == 2 and fresh(chat).last_seq == 2


def test_only_the_chats_librarian_may_post_as_librarian(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(1))
    for intruder in (leo, None):
        with pytest.raises(ServiceError) as err:
            chats.message_post(chat.pk, sender="librarian", body="Hi", client_id=None, now=at(2),
                                  librarian=intruder)
        assert err.value.reason == "forbidden"
    message, _ = chats.message_post(chat.pk, sender="librarian", body="Hi, I can help.", client_id="l1",
                                       now=at(3), librarian=lena)
    assert message.seq == 3 and message.name == "Lena"  # seq 2 is the "joined" system message
    assert fresh(chat).last_activity_at == at(3)


def test_a_chat_ends_idle_an_idle_period_after_its_last_message_not_after_its_accept(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(1))
    idle = timedelta(seconds=w.consortium.idle_timeout)
    chats.message_post(chat.pk, sender="patron", body="still there?", client_id="p1", now=at(30))
    # The deadline set at the accept comes: the chat is not idle (a message came since), so it stays
    # and its deadline moves to an idle period after that message.
    sweeps.due_sweep(at(1) + idle)
    assert fresh(chat).state == ChatState.ACTIVE and fresh(chat).deadline == at(30) + idle
    sweeps.due_sweep(at(29) + idle)
    assert fresh(chat).state == ChatState.ACTIVE
    sweeps.due_sweep(at(30) + idle)
    ended = fresh(chat)
    assert ended.state == ChatState.ENDED and ended.end_reason == "idle"


def test_a_message_to_an_ended_chat_is_refused(sent: Sent) -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    chats.chat_end(chat.pk, at(1), by="patron")
    with pytest.raises(ServiceError) as err:
        chats.message_post(chat.pk, sender="patron", body="wait", client_id="x", now=at(2))
    assert err.value.reason == "ended"


# --- transfer ------------------------------------------------------------------------------------------


def _assert_unchanged(chat: Chat, lena: StaffProfile, sent: Sent) -> None:
    after = fresh(chat)
    assert after.state == ChatState.ACTIVE and after.librarian == lena
    assert after.plan == chat.plan and after.step_serial == chat.step_serial and after.last_seq == chat.last_seq
    assert trace(chat, "transferred") == [] and open_offers(chat) == set()
    assert sent.events == []


def test_transfer_to_the_queue_the_chat_is_in_is_refused_and_nothing_changes(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    go_online(staff(w.home, "leo"), at(3))
    sent.clear()
    with pytest.raises(ServiceError) as err:
        transfers.chat_transfer(lena, chat.pk, at(4), queue="home", note="x")
    assert err.value.reason == "same_queue"
    _assert_unchanged(chat, lena, sent)


def test_transfer_to_a_closed_queue_is_refused_and_nothing_changes(sent: Sent) -> None:
    w = world()
    evening = make_shared_queue(w.consortium, "evening", always_open=False)
    lena, chat = held_by_lena(w, sent)
    go_online(staff(w.hub, "eve", queues=[evening]), at(3))
    sent.clear()
    with pytest.raises(ServiceError) as err:
        transfers.chat_transfer(lena, chat.pk, at(4), queue="evening")
    assert err.value.reason == "closed"
    _assert_unchanged(chat, lena, sent)


def test_transfer_to_a_queue_with_nobody_present_is_refused_and_nothing_changes(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    staff(w.hub, "sam", queues=[w.statewide])  # serves statewide but is not signed in
    with pytest.raises(ServiceError) as err:
        transfers.chat_transfer(lena, chat.pk, at(4), queue="statewide")
    assert err.value.reason == "nobody"
    _assert_unchanged(chat, lena, sent)


def test_transfer_to_a_librarian_who_is_not_present_is_refused(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    staff(w.partner, "pablo")
    with pytest.raises(ServiceError) as err:
        transfers.chat_transfer(lena, chat.pk, at(4), to_librarian="pablo")
    assert err.value.reason == "nobody"
    _assert_unchanged(chat, lena, sent)


def test_transfer_to_a_queue_offers_its_present_librarians_keeping_arrival_time(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    sam = staff(w.hub, "sam", queues=[w.statewide])
    go_online(sam, at(3))
    sent.clear()
    transfers.chat_transfer(lena, chat.pk, at(10), queue="statewide", note="genealogy question")
    after = fresh(chat)
    assert after.state == ChatState.QUEUED and after.librarian is None and after.arrived_at == T0
    assert [s["name"] for s in after.plan] == ["transfer"]
    assert open_offers(chat) == {sam.pk}
    offer = sent.to_librarian(sam, "offer")[0]
    assert offer["queue"] == "statewide" and offer["transfer_note"] == "genealogy question"
    assert offer["waiting_since"] == T0.isoformat()
    assert sent.to_librarian(lena, "unassigned")[0]["reason"] == "transferred"
    assert sent.to_librarian(lena, "offer") == []


def test_transfer_to_a_present_librarian_offers_only_them_with_the_note(sent: Sent) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    leo = staff(w.home, "leo")
    pablo = staff(w.partner, "pablo")
    go_online(leo, at(3))
    go_online(pablo, at(3))
    sent.clear()
    transfers.chat_transfer(lena, chat.pk, at(10), to_librarian="pablo", note="knows the local archive")
    after = fresh(chat)
    assert after.state == ChatState.QUEUED and after.arrived_at == T0
    assert open_offers(chat) == {pablo.pk}
    offer = sent.to_librarian(pablo, "offer")
    assert len(offer) == 1 and offer[0]["transfer_note"] == "knows the local archive"
    assert sent.to_librarian(leo, "offer") == [] and sent.to_librarian(lena, "offer") == []
    # The patron is told, by a system message; the note is for the receiving librarian only.
    told = sent.to_chat(chat, "message")
    assert len(told) == 1 and told[0]["sender"] == "system" and "transferred" in told[0]["body"]
    assert not Message.objects.filter(chat=chat, body__contains="local archive").exists()
    assert trace(chat, "transferred")[0].data["to_librarian"] == "pablo"
    offers.chat_accept(pablo, chat.pk, at(12))
    after = fresh(chat)
    assert after.librarian == pablo and after.answered_by == lena  # answered_by: the first to accept


def test_transfer_to_a_queue_the_transferring_librarian_serves_is_not_offered_back_to_them(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena", queues=[w.statewide])
    sam = staff(w.hub, "sam", queues=[w.statewide])
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(2))
    go_online(sam, at(3))
    sent.clear()
    transfers.chat_transfer(lena, chat.pk, at(10), queue="statewide")
    assert open_offers(chat) == {sam.pk}
    assert sent.to_librarian(lena, "offer") == []


def test_a_transfer_to_a_named_librarian_has_no_countdown(sent: Sent) -> None:
    w = world(offer_timeout=20)
    lena, chat = held_by_lena(w, sent)
    pablo = staff(w.partner, "pablo")
    go_online(pablo, at(3))
    transfers.chat_transfer(lena, chat.pk, at(10), to_librarian="pablo")
    assert sent.to_librarian(pablo, "offer")[-1]["expires_at"] is None
    sweeps.due_sweep(at(100))
    route.chat_route(chat.pk, at(101))  # routed again (as after any presence change): still pablo's
    assert open_offers(chat) == {pablo.pk}, "the offer meant for pablo waits for pablo"
    assert LibrarianPresence.objects.get(pk=pablo.pk).status == "available"


# --- referral, question form -----------------------------------------------------------------------------


def test_refer_creates_a_ticket_for_the_home_library_with_transcript_and_mails_the_patron(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home", question="Deed records for 1920?", name="Pat",
                 email="pat@example.org")
    offers.chat_accept(lena, chat.pk, at(2))
    chats.message_post(chat.pk, sender="librarian", body="Let me check the archive.", client_id="l1",
                          now=at(3), librarian=lena)
    ticket = followups.chat_refer(lena, chat.pk, at(5), library_slug=None, note="needs the archive")
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.library == w.home and ticket.chat_id == chat.pk and ticket.source == "referral"
    assert ticket.question == "Deed records for 1920?" and ticket.patron_email == "pat@example.org"
    assert "Deed records for 1920?" in ticket.transcript and "Let me check the archive." in ticket.transcript
    assert ticket.note == "needs the archive" and ticket.created_by == lena
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@example.org"]
    assert "Deed records for 1920?" in mail.outbox[0].body
    assert trace(chat, "ticket")[0].data["library"] == "home"


def test_refer_to_another_library(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home", email="pat@example.org")
    offers.chat_accept(lena, chat.pk, at(2))
    ticket = followups.chat_refer(lena, chat.pk, at(5), library_slug="partner")
    assert Ticket.objects.get(pk=ticket.pk).library == w.partner


def test_question_leave_creates_a_ticket_for_the_home_library_and_mails(sent: Sent) -> None:
    w = world()
    ticket = followups.question_leave(consortium=w.consortium, question="Do you lend telescopes?",
                                     email="pat@example.org", name="Pat", zip_code="12345", now=T0)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.library == w.home and ticket.source == "question_form" and ticket.chat is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@example.org"]


def test_question_leave_without_a_home_library_goes_to_the_consortium(sent: Sent) -> None:
    w = world()
    ticket = followups.question_leave(consortium=w.consortium, question="Hi", email="pat@example.org", now=T0)
    assert ticket.library is None and ticket.consortium == w.consortium
    assert len(mail.outbox) == 1


def test_question_leave_replacing_a_waiting_chat_ends_it(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home", email="pat@example.org")
    ticket = followups.question_leave(consortium=w.consortium, question=chat.question, email="pat@example.org",
                                     chat=chat, now=at(30))
    assert ticket.library == w.home and ticket.chat == chat
    after = fresh(chat)
    assert after.state == ChatState.ENDED and after.end_reason == "question_form"
    assert sent.to_librarian(lena, "offer_withdrawn")[-1]["reason"] == "ended"
    assert len(mail.outbox) == 1


def test_question_leave_for_an_unstaffed_chat_uses_its_home_library(sent: Sent) -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="partner")
    assert chat.state == ChatState.UNSTAFFED
    ticket = followups.question_leave(consortium=w.consortium, question=chat.question, email="pat@example.org",
                                     chat=chat, now=at(5))
    assert ticket.library == w.partner and ticket.chat == chat
    assert fresh(chat).state == ChatState.UNSTAFFED


# --- end -------------------------------------------------------------------------------------------------


def test_patron_ends_the_chat(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(2))
    chats.chat_end(chat.pk, at(30), by="patron")
    after = fresh(chat)
    assert after.state == ChatState.ENDED and after.end_reason == "patron" and after.ended_at == at(30)
    assert after.deadline is None
    last = Message.objects.filter(chat=chat).last()
    assert last is not None and last.sender == "system" and "patron ended" in last.body
    assert sent.to_librarian(lena, "unassigned") == [{"type": "unassigned", "chat": chat.pk, "reason": "ended"}]
    assert sent.to_chat(chat, "state")[-1]["state"] == "ended"
    assert trace(chat, "ended")[0].data == {"by": "patron", "reason": "patron"}


def test_librarian_ends_the_chat_and_only_their_own(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    leo = staff(w.home, "leo")
    go_online(lena, at(-60))
    go_online(leo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(2))
    with pytest.raises(ServiceError) as err:
        chats.chat_end(chat.pk, at(20), by="librarian", librarian=leo)
    assert err.value.reason == "forbidden" and fresh(chat).state == ChatState.ACTIVE
    chats.chat_end(chat.pk, at(30), by="librarian", librarian=lena)
    after = fresh(chat)
    assert after.state == ChatState.ENDED and after.end_reason == "librarian"
    last = Message.objects.filter(chat=chat).last()
    assert last is not None and "librarian ended" in last.body


# --- patron lost (the waiting chat side; the timer tests cover the rest) ------------------------------


def test_an_active_chat_whose_patron_left_stays_active(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    channel = patron_joins(chat, at(1))
    offers.chat_accept(lena, chat.pk, at(2))
    patron_disconnected(channel, at(10))
    assert sent.to_librarian(lena, "patron_presence") == [
        {"type": "patron_presence", "chat": chat.pk, "present": False}]
    sweeps.due_sweep(at(10 + 61))
    after = fresh(chat)
    assert after.state == ChatState.ACTIVE and after.librarian == lena
    patron_joins(chat, at(80), channel="patron-again")
    assert sent.to_librarian(lena, "patron_presence")[-1]["present"] is True


# --- the trace answers "why" ------------------------------------------------------------------------------


def test_the_trace_says_why_the_partner_answered_instead_of_the_home_library(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_decline(lena, chat.pk, at(10))
    # Lena going away leaves the local step with nobody present: it is left at once, not at 45 s.
    presence_set(lena, "away", at(11))
    sweeps.due_sweep(at(45))
    offers.chat_accept(pablo, chat.pk, at(50))
    rows = trace(chat)
    assert [r.kind for r in rows] == [
        "created", "routing", "step_entered", "offered", "declined", "escalated", "step_entered", "offered",
        "accepted"]
    by_kind = {r.kind: r for r in rows}
    assert by_kind["created"].data["home_library"] == "home" and by_kind["created"].data["found_by"] == "library"
    assert rows[3].data == {"librarian": lena.pk, "queue": "home", "mode": "broadcast"}
    assert rows[4].data["username"] == "lena" and rows[4].at == at(10)
    assert rows[5].data == {"from": "local", "reason": "nobody"} and rows[5].at == at(11)
    assert rows[6].data["step"] == "partners"
    assert rows[7].data == {"librarian": pablo.pk, "queue": "partner", "mode": "broadcast"}
    accepted = rows[8].data
    assert accepted["library"] == "partner" and accepted["step"] == "partners" and accepted["waited"] == 50
    assert fresh(chat).answered_step == "partners"
