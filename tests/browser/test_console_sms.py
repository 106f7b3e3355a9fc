"""Issue 15: the staff console with a chat that came by text, in headless Chromium against the
production stack and the local fake of Twilio's API (tests/texting/fake_twilio.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.browser.chromium import chromium
from tests.browser.test_console import open_console
from tests.live.stack import Stack, free_port, world
from tests.live.test_sms import SID, TOKEN, text
from tests.texting.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.browser, pytest.mark.live]

NUMBER = "+13055550300"
WORLD = world("smsconsole", libraries=[{"slug": "sc-a", "sms_number": NUMBER}],
              staff=[{"username": "sam", "library": "sc-a"}])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(SID, TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sms_stack(fake: FakeTwilio) -> Iterator[Stack]:
    s = Stack.prepare([WORLD], TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_API_BASE=fake.base_url,
                      TWILIO_TIMEOUT="2", TWILIO_RETRY_DELAYS="1")
    s.ports["web1"] = free_port()
    s.env["PUBLIC_URL"] = f"http://127.0.0.1:{s.ports['web1']}"
    with s.running():
        yield s


async def test_an_sms_chat_in_the_console(sms_stack: Stack, fake: FakeTwilio) -> None:
    stack = sms_stack
    async with chromium() as browser:
        sam = await open_console(browser, stack.base(), "sam")
        page = sam.page
        response, _ = await asyncio.to_thread(text, stack, "Do you have museum passes?", phone="+13055551234",
                                              to=NUMBER)
        assert response.status_code == 200
        chat_id = stack.sql("SELECT id FROM routing_chat WHERE channel = 'sms'")
        offer = await sam.offer(chat_id)
        assert await offer.get_attribute("data-channel") == "sms"
        assert await page.is_visible(f'.offer[data-chat="{chat_id}"] .channel')
        offer_text = await offer.inner_text()
        assert "Text from ...1234" in offer_text and "museum passes" in offer_text
        assert "+1305" not in offer_text  # the last four digits only

        await page.click(f'.offer[data-chat="{chat_id}"] .accept')
        panel = sam.panel(chat_id)
        await sam.wait_text(f"{panel} .log", "museum passes")
        assert await page.inner_text(f"{panel} .patron-name") == "Text from ...1234"
        assert await page.is_visible(f"{panel} .chat-head .channel")
        assert "1,600 characters" in await page.inner_text(f"{panel} .sms-note")
        assert await page.get_attribute(f"{panel} textarea", "maxlength") == "1600"

        # A reply goes out as a text, once, and its line says so.
        await sam.send(chat_id, "Yes: ask at the front desk.")
        got = await asyncio.to_thread(fake.wait_for, 1)
        assert (got[0].to, got[0].from_, got[0].body) == ("+13055551234", NUMBER, "Yes: ask at the front desk.")
        await sam.wait_text(f"{panel} .log .msg .delivery", "sent as a text")

        # The provider refuses the next one for good: the line shows it was not delivered.
        fake.answer_next(400)
        await sam.send(chat_id, "This one will bounce.")
        await page.wait_for_selector(f'{panel} .log .msg[data-delivery="not_delivered"]', timeout=15000)
        bounced = await page.inner_text(f'{panel} .log .msg[data-delivery="not_delivered"]')
        assert "This one will bounce." in bounced and "not delivered" in bounced

        # The patron texts again: the same chat.
        await asyncio.to_thread(text, stack, "Thanks!", phone="+13055551234", to=NUMBER)
        await sam.wait_text(f"{panel} .log", "Thanks!")
        assert sam.errors == []
