"""Phone numbers are personal data (docs/sms.md): masked in logs, scrubbed on the retention schedule,
deletable on request."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from consortium.logging import PrivacyFilter, redact
from routing.models import Chat, Message
from routing.privacy import chats_scrub_expired
from tests.texting.conftest import post_text, text_params
from tests.texting.fake_twilio import FakeTwilio
from tests.texting.test_texting import HOME_NUMBER, PHONE, texting_world
from texting.models import InboundText, OutboundText, SmsPatron
from texting.privacy import scrub_expired

pytestmark = pytest.mark.django_db(transaction=True)


def test_phone_numbers_are_masked_in_logs() -> None:
    assert redact("a text from +13055550123 to +18505550100") == \
        "a text from [phone ...0123] to [phone ...0100]"
    record = logging.LogRecord("texting", logging.WARNING, __file__, 1, "from %s", ("+13055550123",), None)
    PrivacyFilter().filter(record)
    assert "+1305" not in record.getMessage() and "...0123" in record.getMessage()


def test_texts_and_phones_are_scrubbed_past_the_retention(twilio: FakeTwilio, client: Client) -> None:
    w = texting_world(transcript_retention_days=30)
    post_text(client, text_params("Can I renew by text?", to=HOME_NUMBER))  # unstaffed: ends at once
    post_text(client, text_params("STOP", to=HOME_NUMBER, phone="+13055550999"))
    twilio.wait_for(1)
    assert SmsPatron.objects.count() == 2 and InboundText.objects.count() == 2
    chat = Chat.objects.get()
    assert chat.patron_name == "...0123"

    later = timezone.now() + timedelta(days=31)
    assert scrub_expired(later) == 0  # the chat is still kept: so is its phone
    assert not InboundText.objects.exists() and not OutboundText.objects.exists()
    Chat.objects.filter(pk=chat.pk).update(created_at=timezone.now() - timedelta(days=31),
                                           arrived_at=timezone.now() - timedelta(days=31))
    chats_scrub_expired(timezone.now())
    chat.refresh_from_db()
    assert chat.scrubbed and chat.patron_name == ""
    assert scrub_expired(later) == 1
    # The phone that said STOP is kept, so that the STOP is still honoured; the other is gone.
    assert list(SmsPatron.objects.values_list("phone", flat=True)) == ["+13055550999"]
    assert w.consortium.sms_patrons.get().opted_out_at is not None


def test_a_phone_is_deleted_on_request(twilio: FakeTwilio, client: Client) -> None:
    texting_world()
    post_text(client, text_params("Can I renew by text?", to=HOME_NUMBER))
    out = StringIO()
    call_command("forget_phone", PHONE, stdout=out)
    assert "...0123: 1 chat(s) deleted" in out.getvalue()
    assert not SmsPatron.objects.exists() and not InboundText.objects.exists()
    chat = Chat.objects.get()
    assert chat.scrubbed and chat.patron_name == "" and not Message.objects.filter(chat=chat).exists()


def test_forget_phone_refuses_a_malformed_number() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"E\.164"):
        call_command("forget_phone", "305-555-0123", stdout=StringIO())


def test_the_default_retries_start_within_5_s_and_span_about_10_minutes(settings: Any) -> None:
    from consortium import settings as defaults

    delays = defaults.TWILIO_RETRY_DELAYS
    assert delays[0] <= 5 and len(delays) + 1 >= 5 and 8 * 60 <= sum(delays) <= 12 * 60
