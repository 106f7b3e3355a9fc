"""routing listens to libraries (libraries/signals.py): a change of a queue's hours or rota routes its
waiting chats again after commit, so a queue that opens, or a librarian put on the current shift, is
offered them at once (docs/routing.md, "Timing")."""

from __future__ import annotations

import pytest

from libraries import rota
from libraries import services as library_services
from libraries.models import Queue
from routing.models import ChatState
from tests.routing.routing_helpers import T0, Sent, at, fresh, go_online, open_offers, staff, start, world

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_librarian_put_on_the_current_shift_is_offered_the_waiting_chat_at_once(sent: Sent) -> None:
    w = world()
    w.statewide.rota_driven = True
    w.statewide.save(update_fields=["rota_driven"])
    sam = staff(w.hub, "sam", queues=[w.statewide])
    cy = staff(w.hub, "cy", queues=[w.statewide])
    shift = rota.shift_create(w.statewide, at(-120), weekday=0, start_minute=9 * 60, end_minute=12 * 60)
    rota.shift_assign(shift, sam, at(-120))
    go_online(sam, at(-60))
    go_online(cy, at(-60))
    chat = start(w.consortium, T0, zip_code="99999")  # no home library: the consortium step
    assert fresh(chat).state == ChatState.QUEUED and open_offers(chat) == {sam.pk}, "cy is not on shift"

    rota.shift_assign(shift, cy, at(20))
    assert open_offers(chat) == {sam.pk, cy.pk}
    assert [f["chat"] for f in sent.to_librarian(cy, "offer")] == [chat.pk]


def test_a_queue_that_opens_is_offered_the_waiting_chat_at_once(sent: Sent) -> None:
    w = world(home_open=False)  # the home library's queue has no hours: closed
    lena = staff(w.home, "lena")
    pablo = staff(w.partner, "pablo")
    go_online(lena, at(-60))
    go_online(pablo, at(-60))
    chat = start(w.consortium, T0, zip_code="12345")
    assert fresh(chat).plan[fresh(chat).step_index]["name"] == "partners", "the closed local step was skipped"
    assert open_offers(chat) == {pablo.pk}

    home_queue = Queue.objects.get(library=w.home)
    library_services.queue_hours_set(home_queue, at(20), weekly={0: [(9 * 60, 17 * 60)]}, always_open=False)
    assert open_offers(chat) == {pablo.pk, lena.pk}, "the partners step's audience includes the home queue"
    assert [f["chat"] for f in sent.to_librarian(lena, "offer")] == [chat.pk]
