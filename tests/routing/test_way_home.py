"""The way home (issue 17.6): a partner librarian holding a home library's patron is told when a
home librarian becomes available, and hands the chat back in one transfer with a note, or not at
all; counted in the statistics. With an injected clock; frames observed at routing.events._send.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from coordination import followthrough
from libraries.models import StaffProfile
from routing.handback import HeldChat, home_can_take
from routing.models import Chat, ChatState
from routing.router import Librarian, Situation
from routing.services import chats, handbacks, offers, presence
from routing.services.common import ServiceError
from tests.routing.routing_helpers import (
    T0,
    Sent,
    World,
    at,
    fresh,
    go_online,
    info,
    patron_joins,
    staff,
    start,
    trace,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _librarian(pk: int, active: int = 0) -> Librarian:
    return Librarian(id=pk, queues=frozenset({"home"}), capacity=2, active=active, languages=frozenset({"en"}),
                     idle_since=T0)


def test_home_can_take_a_chat_only_when_open_and_someone_else_there_has_room() -> None:
    held = HeldChat(id="c", holder=9, holder_library="partner", home_library="home")
    open_with = Situation(now=T0, open_queues=frozenset({"home"}), present={"home": (_librarian(1),)})
    assert home_can_take(held, open_with)
    assert not home_can_take(held, Situation(now=T0, open_queues=frozenset(), present={"home": (_librarian(1),)}))
    assert not home_can_take(held, Situation(now=T0, open_queues=frozenset({"home"}),
                                             present={"home": (_librarian(1, active=2),)}))
    at_home = HeldChat(id="c", holder=1, holder_library="home", home_library="home")
    assert not home_can_take(at_home, open_with)
    assert not home_can_take(HeldChat(id="c", holder=9, holder_library="partner", home_library=None), open_with)


def _held_by_partner(w: World) -> tuple[StaffProfile, StaffProfile, Chat]:
    """Nobody at home: the chat starts in the partners step and pia (partner) accepts it. hannah
    (home) exists but is not online."""
    hannah = staff(w.home, "hannah")
    pia = staff(w.partner, "pia")
    go_online(pia, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1))
    offers.chat_accept(pia, chat.pk, at(2))
    return hannah, pia, fresh(chat)


def test_the_holder_is_told_once_a_home_librarian_is_available_and_hands_back_with_a_note(sent: Sent) -> None:
    w = world()
    hannah, pia, chat = _held_by_partner(w)
    assert chat.librarian == pia and chat.state == ChatState.ACTIVE
    sent.clear()
    go_online(hannah, at(10))  # available: routing.services.presence.presence_reroute runs
    told = sent.to_librarian(pia, "handback")
    assert told == [{"type": "handback", "chat": chat.pk, "available": True,
                     "home_library": {"slug": "home", "name": "Home Library"}}]
    assert not sent.to_librarian(hannah, "offer")  # never automatic: nothing moved
    assert fresh(chat).librarian == pia
    presence.presence_reroute(hannah.pk, at(11))  # told again (a console may have missed it)...
    assert len(sent.to_librarian(pia, "handback")) == 2
    assert len(trace(chat, "handback_offered")) == 1  # ...counted once per hold
    assert info(pia, chat.pk, at(12))["handback"] is True  # a reloaded console asks

    handbacks.chat_hand_back(pia, chat.pk, at(20), note="Asked about Home's museum passes.")
    moved = fresh(chat)
    assert moved.state == ChatState.QUEUED and moved.librarian is None
    assert moved.transfer_note == "Asked about Home's museum passes."
    assert [o["chat"] for o in sent.to_librarian(hannah, "offer")] == [chat.pk]
    assert len(trace(chat, "handed_back")) == 1 and len(trace(chat, "transferred")) == 1
    offers.chat_accept(hannah, chat.pk, at(21))
    assert fresh(chat).librarian == hannah
    counted = followthrough.handbacks(Chat.objects.filter(pk=chat.pk))
    assert (counted.offered, counted.taken) == (1, 1)


def test_a_hand_back_when_home_is_gone_again_is_refused_whole_and_the_chat_stays(sent: Sent) -> None:
    w = world()
    hannah, pia, chat = _held_by_partner(w)
    go_online(hannah, at(10))
    presence.presence_set(hannah, "away", at(15))
    assert sent.to_librarian(pia, "handback")[-1]["available"] is False
    with pytest.raises(ServiceError) as refused:
        handbacks.chat_hand_back(pia, chat.pk, at(20))
    assert refused.value.reason == "nobody"
    kept = fresh(chat)
    assert kept.state == ChatState.ACTIVE and kept.librarian == pia and not trace(chat, "handed_back")


def test_a_home_librarian_filling_up_withdraws_the_offer_and_freeing_a_place_makes_it_again(sent: Sent) -> None:
    w = world()
    hannah, pia, held = _held_by_partner(w)
    StaffProfile.objects.filter(pk=hannah.pk).update(capacity=1)
    hannah.refresh_from_db()
    go_online(hannah, at(10))
    assert sent.to_librarian(pia, "handback")[-1]["available"] is True
    own = start(w.consortium, at(11), library_slug="home")
    patron_joins(own, at(11))
    offers.chat_accept(hannah, own.pk, at(12))  # her only place
    assert sent.to_librarian(pia, "handback")[-1]["available"] is False
    chats.chat_end(own.pk, at(13), by="librarian", librarian=hannah)
    assert sent.to_librarian(pia, "handback")[-1] == {"type": "handback", "chat": held.pk, "available": True,
                                                      "home_library": {"slug": "home", "name": "Home Library"}}


def test_no_hand_back_offer_for_a_chat_held_at_home_nor_by_anyone_but_its_holder(sent: Sent) -> None:
    w = world()
    hannah, _pia, chat = _held_by_partner(w)
    with pytest.raises(ServiceError):
        handbacks.chat_hand_back(hannah, chat.pk, at(5))  # not hers
    lena = staff(w.home, "lena")
    go_online(lena, at(5))
    own = start(w.consortium, at(6), library_slug="home")
    patron_joins(own, at(7))
    offers.chat_accept(lena, own.pk, at(8))
    sent.clear()
    go_online(hannah, at(10))
    assert {f["chat"] for f in sent.frames(f"librarian.{lena.pk}", "handback")} == set()
    with pytest.raises(ServiceError) as refused:
        handbacks.chat_hand_back(lena, own.pk, at(11))
    assert refused.value.reason == "same_queue"



# --- over the staff socket (Channels' WebsocketCommunicator, in process) -----------------------------------


@pytest.mark.usefixtures("fresh_process")
async def test_the_staff_socket_refuses_a_hand_back_home_cannot_take_and_a_bad_referral_deadline() -> None:
    from channels.db import database_sync_to_async

    from routing.models import Ticket
    from tests.routing.socket_helpers import a1_holding_a_chat, expect, socket_world

    w = await database_sync_to_async(socket_world)()
    a1, chat, _token, _ = await a1_holding_a_chat(w, email="pat@example.org")
    # a1 is alpha's and the chat is alpha's patron's: already home.
    await a1.send_json_to({"type": "hand_back", "chat": chat.pk, "note": "n"})
    failed = await expect(a1, "transfer_failed", chat=chat.pk)
    assert failed["reason"] == "same_queue"
    await a1.send_json_to({"type": "refer", "chat": chat.pk, "deadline": "yesterday"})
    assert (await expect(a1, "error"))["code"] == "invalid"
    assert not await database_sync_to_async(Ticket.objects.exists)()
    await a1.send_json_to({"type": "refer", "chat": chat.pk, "deadline": timezone.now().date().isoformat()})
    referred = await expect(a1, "referred", chat=chat.pk)
    ticket = await database_sync_to_async(Ticket.objects.get)(pk=referred["ticket"])
    assert ticket.due_from == "patron"
    still = await database_sync_to_async(fresh)(chat)
    assert still.state == ChatState.ACTIVE
    await a1.disconnect()
