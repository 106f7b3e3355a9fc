"""A blocked phone (routing.blocks) texting: no chat, one neutral reply offering the ask page's question
form, in the patron's language; a phone blocked in one consortium texts another freely."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from routing.models import Chat, ChatState, PatronBlock
from routing.services import blocks as block_services
from routing.services import offers
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import Sent, go_online
from tests.texting.conftest import PUBLIC_URL, post_text, text_params
from tests.texting.fake_twilio import FakeTwilio
from tests.texting.test_texting import HOME_NUMBER, PHONE, texting_world
from texting.models import InboundText, OutboundText

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_blocked_phone_gets_no_chat_and_one_neutral_reply(twilio: FakeTwilio, client: Client, sent: Sent) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    post_text(client, text_params("Hello?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    block = block_services.chat_end_and_block(lena, chat.pk, timezone.now(), reason="harassing texts")
    assert block.hint == {"phone": "...0123"} and block.phone_hash and PHONE not in str(block.hint)
    chat.refresh_from_db()
    assert chat.state == ChatState.ENDED

    assert post_text(client, text_params("Why did you end it", to=HOME_NUMBER)).status_code == 200
    assert post_text(client, text_params("hello??", to=HOME_NUMBER)).status_code == 200
    assert Chat.objects.count() == 1  # no chat started
    assert list(InboundText.objects.order_by("received_at").values_list("kind", flat=True))[-2:] == [
        "blocked", "blocked"]
    [reply] = OutboundText.objects.filter(kind=OutboundText.Kind.BLOCKED)  # once, not at every text
    assert "not available right now" in reply.body and f"{PUBLIC_URL}/ask/" in reply.body
    assert "block" not in reply.body.lower()
    assert (reply.from_number, reply.patron.phone) == (HOME_NUMBER, PHONE)

    # Another phone texts freely; the blocked one chats again once a coordinator lifts the block.
    post_text(client, text_params("Hi", phone="+13055550999", to=HOME_NUMBER))
    assert Chat.objects.count() == 2
    coordinator = make_staff(w.hub, "cora", role="coordinator")
    block_services.block_lift(consortium_id=w.consortium.pk, block_id=block.pk, by=coordinator, by_name="Cora",
                              note="", now=timezone.now())
    post_text(client, text_params("Sorry about before", to=HOME_NUMBER))
    assert Chat.objects.count() == 3


def test_a_blocked_phone_is_answered_in_spanish_when_it_writes_spanish(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    post_text(client, text_params("Hello?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    block_services.chat_end_and_block(lena, chat.pk, timezone.now(), reason="x")
    post_text(client, text_params("ESPANOL necesito ayuda con un libro", to=HOME_NUMBER))
    reply = OutboundText.objects.get(kind=OutboundText.Kind.BLOCKED)
    assert "no está disponible" in reply.body


def test_a_phone_blocked_in_one_consortium_texts_another(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    go_online(lena, timezone.now())
    post_text(client, text_params("Hello?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    block_services.chat_end_and_block(lena, chat.pk, timezone.now(), reason="x", hours=24)
    other = make_consortium("other", sms_number="+18505550999")
    make_shared_queue(other, "os")
    make_library(other, "olib")
    post_text(client, text_params("Hello there", to="+18505550999"))
    assert Chat.objects.filter(consortium=other).count() == 1
    assert PatronBlock.objects.get().expires_at > timezone.now() + timedelta(hours=23)
