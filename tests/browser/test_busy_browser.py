"""Past the service's capacity (issue 14.4) the ask page says the service is busy and offers the
question form with what the patron typed; the question then reaches the library as a follow-up.

The stack runs with an event-loop lag limit no loop can meet (a microsecond), so that every chat start
is shed by routing/admission.py exactly as an overloaded process sheds it, without overloading a
shared CI machine to get there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.browser.chromium import chromium
from tests.browser.test_patron_browser import new_page, start_form
from tests.live.stack import PASSWORD, Stack, launcher_says_open, librarian, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

BUSY = world("busy", libraries=[{"slug": "main", "name": "Main Library"}],
             staff=[{"username": "bea", "library": "main", "languages": ["en", "es"]}])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([BUSY], VR_CHAT_START_MAX_LOOP_LAG="0.000001").running() as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize(("lang", "busy_text", "send"), [
    ("en", "The service is very busy right now", "Send my question"),
    ("es", "El servicio está muy ocupado en este momento", "Enviar mi pregunta"),
])
async def test_a_shed_start_shows_busy_and_the_question_form_keeps_what_was_typed(
        browser: Any, stack: Stack, lang: str, busy_text: str, send: str) -> None:
    context, page, watch = await new_page(browser, stack)
    # Bea is signed in: the launcher says the service is open, so the chat's own form comes first.
    bea, _hello, _ = await librarian(stack.base(), "bea", PASSWORD)
    await launcher_says_open(stack, "busy", "main")
    await page.goto(f"{stack.base()}/ask/busy/main/?lang={lang}")
    await page.locator("[data-vr=avail][data-state=available]").wait_for()
    await asyncio.sleep(0.5)  # the process's lag monitor has ticked (it starts with the first request)
    question = f"Where are the 1911 county atlases? ({lang})"
    start = start_form(page)
    await start.locator("[data-vr=question]").fill(question)
    await start.locator("[data-vr=email]").fill(f"reader-{lang}@example.org")
    await start.locator("button[type=submit]").click()
    await page.get_by_text(busy_text).wait_for()
    form = page.locator("[data-vr=qform]")
    assert await form.is_visible()
    assert await form.locator("[data-vr=q-question]").input_value() == question, "nothing typed is lost"
    assert await form.locator("[data-vr=q-email]").input_value() == f"reader-{lang}@example.org"
    assert not await page.locator("[data-vr=send-form]").is_visible(), "no chat to type into"
    await form.get_by_role("button", name=send).click()
    await page.locator("[data-vr=qform-box]").wait_for(state="hidden")
    ticket = await asyncio.to_thread(
        stack.sql, f"SELECT patron_email, source FROM routing_ticket WHERE question = '{question}'")
    assert ticket == f"reader-{lang}@example.org|question_form"
    chats = await asyncio.to_thread(stack.sql, f"SELECT count(*) FROM routing_chat WHERE question = '{question}'")
    assert chats == "0", "the start was shed: no chat was created"
    assert not watch.dialogs and not watch.errors, (watch.dialogs, watch.errors)
    await bea.close()
    await context.close()
