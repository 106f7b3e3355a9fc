"""A mentor in a texting chat (docs/sms.md, docs/console.md "Mentors"): a whisper is never texted to
the patron's phone; a mentor who joined is, like the chat's librarian."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from libraries.models import StaffProfile
from routing.models import Chat
from routing.services import chats, mentoring, offers
from tests.factories import make_staff
from tests.routing.routing_helpers import go_online
from tests.texting.conftest import post_text, text_params
from tests.texting.fake_twilio import FakeTwilio
from tests.texting.test_texting import HOME_NUMBER, texting_world

pytestmark = pytest.mark.django_db(transaction=True)

WHISPER = "Ask which branch they can reach"


def test_a_whisper_is_never_texted_and_a_joined_mentors_line_is(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world()
    lena = make_staff(w.home, "lena")
    mentor = make_staff(w.partner, "max")
    StaffProfile.objects.filter(pk=mentor.pk).update(is_mentor=True)
    mentor.refresh_from_db()
    go_online(lena, timezone.now())
    post_text(client, text_params("Do you have museum passes?", to=HOME_NUMBER))
    chat = Chat.objects.get()
    offers.chat_accept(lena, chat.pk, timezone.now())
    mentoring.whisper_post(mentor, chat.pk, WHISPER, client_id="w1", now=timezone.now())
    chats.message_post(chat.pk, sender="librarian", body="Which branch suits you?", client_id="l1",
                       now=timezone.now(), librarian=lena)
    mentoring.chat_second_join(mentor, chat.pk, timezone.now())
    chats.message_post(chat.pk, sender="librarian", body="I can help too.", client_id="m1",
                       now=timezone.now(), librarian=mentor)
    texts = twilio.wait_for(2)
    time.sleep(0.5)  # anything more would have been sent by now
    assert [t.body for t in twilio.wait_for(2)] == ["Which branch suits you?", "I can help too."]
    assert twilio.requests == 2 and all(WHISPER not in t.body for t in texts)
