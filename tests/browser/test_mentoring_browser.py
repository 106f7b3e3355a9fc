"""Mentors and the staff back-channel in headless Chromium against the production stack: a librarian
answers a patron from the ask page; she asks a colleague of another library with `@name` in an
internal note, and the colleague's console shows the mention with its link; a mentor finds the chat on
the board of live chats, opens it read-only, whispers (shown apart in the librarian's console, never on
the patron's page), joins (the patron is told) and takes it over with the librarian's consent; the
staff room carries a line between the consoles.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots):
    VR_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_mentoring_browser.py -m browser
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.browser.test_console import open_console
from tests.live.stack import PASSWORD, Stack, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None
WORLD = world("mnt", [{"slug": "alpha", "name": "Alpha County Library"}, {"slug": "beta", "name": "Beta Library"}],
              [{"username": "ana", "name": "Ana Ruiz", "library": "alpha"},
               {"username": "cy", "name": "Cy Park", "library": "beta"},
               {"username": "max", "name": "Max Feld", "library": "beta"}])
WHISPER = "Ask whether they need the pass for this weekend"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(worker=0, beat=0) as s:
        s.sql("UPDATE libraries_staffprofile SET is_mentor = true WHERE user_id = "
              "(SELECT id FROM auth_user WHERE username = 'max')")
        yield s


async def shot(page: Any, name: str) -> None:
    if SHOTS is not None:
        await page.screenshot(path=str(SHOTS / name))


async def chat_id_of(page: Any) -> str:
    for _ in range(100):
        chat_id = await page.evaluate(
            "(() => { const s = JSON.parse(sessionStorage.getItem('vrchat:mnt') || 'null'); return s && s.id; })()")
        if chat_id:
            return str(chat_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the ask page stored no chat")


async def test_mention_whisper_join_and_take_over(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        ana = await open_console(browser, base, "ana", bypass_csp=True)
        cy = await open_console(browser, base, "cy", available=False)
        patron_context = await browser.new_context(viewport={"width": 900, "height": 800})
        patron = await patron_context.new_page()
        patron.set_default_timeout(15000)
        patron_errors: list[str] = []
        patron.on("pageerror", lambda e: patron_errors.append(str(e)))
        await patron.goto(f"{base}/ask/mnt/alpha/")
        assert "may be read by the consortium" in await patron.content()
        await patron.locator("[data-vr=start-form] [data-vr=question]").fill("Can I borrow a museum pass?")
        await patron.locator("[data-vr=start-form] button[type=submit]").click()
        chat_id = await chat_id_of(patron)
        page, panel = ana.page, ana.panel(chat_id)
        await ana.offer(chat_id)
        await page.click(f'.offer[data-chat="{chat_id}"] .accept')
        await ana.wait_text(f"{panel} .log", "museum pass")

        # @name in an internal note: the colleague at another library is told, with the link.
        await page.check(f"{panel} .internal")
        await ana.send(chat_id, "@cy do you know Beta's museum pass rules?")
        mention = cy.page.locator(".notice", has_text="Ana Ruiz asked for you")
        await mention.wait_for()
        await shot(cy.page, "console-mention.png")
        async with cy.page.context.expect_page() as opened:
            await mention.get_by_role("button", name="Open the chat").click()
        cy_watch = await opened.value
        await cy_watch.locator("#w-log", has_text="museum pass rules").wait_for()
        assert await cy_watch.is_hidden("#w-actions")  # a colleague whispers; only mentors join or take over

        # The mentor's board lists the chat; opened read-only, the mentor whispers.
        mentor_context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        mentor = await mentor_context.new_page()
        mentor_errors: list[str] = []
        mentor.on("pageerror", lambda e: mentor_errors.append(str(e)))
        await sign_in(mentor, base, "max", PASSWORD, next_path="/staff/mentor/")
        row = mentor.locator(f'tr[data-chat="{chat_id}"]')
        assert "Ana Ruiz" in await row.inner_text() and "museum pass" in await row.inner_text()
        await shot(mentor, "mentor-board.png")
        assert await axe_violations(mentor) == []
        await mentor.goto(f"{base}/staff/mentor/{chat_id}/")
        await mentor.locator("#w-log", has_text="museum pass rules").wait_for()
        await mentor.locator("#w-trace", has_text="watched").wait_for()
        await mentor.fill("#w-text", WHISPER)
        await mentor.click("#w-whisper button[type=submit]")
        whisper = page.locator(f'{panel} .msg[data-whisper="true"]', has_text=WHISPER)
        await whisper.wait_for()
        assert "Whisper" in await whisper.inner_text()
        await shot(page, "console-whisper.png")
        await ana.send(chat_id, "Is it for this weekend?")
        await patron.get_by_text("Is it for this weekend?").wait_for()

        # Join: the patron is told; the mentor's line reaches them.
        await mentor.click("#w-join")
        await patron.get_by_text("Max Feld, a senior librarian, joined the chat.").wait_for()
        await mentor.locator("#w-whisper label", has_text="You joined").wait_for()
        await mentor.fill("#w-text", "Hello, I am helping Ana today.")
        await mentor.click("#w-whisper button[type=submit]")
        await patron.get_by_text("Hello, I am helping Ana today.").wait_for()
        await shot(mentor, "mentor-watch.png")
        assert await axe_violations(mentor) == []

        # Take over, with Ana's consent.
        await mentor.click("#w-take")
        assert await mentor.inner_text("#w-take") == "Confirm: take this chat over"
        await mentor.click("#w-take")
        ask = page.locator(".notice", has_text="asks to take over")
        await ask.wait_for()
        await shot(page, "console-takeover.png")
        await ask.get_by_role("button", name="Hand it over").click()
        await ana.wait_text(f"{panel} .ended-text", "mentor took this chat over")
        await mentor.locator(".notice", has_text="The chat is yours now").wait_for()
        await patron.get_by_text("Max Feld, a senior librarian, took over the chat.").wait_for()
        assert WHISPER not in await patron.content() and "museum pass rules" not in await patron.content()
        assert await asyncio.to_thread(stack.sql, f"SELECT u.username FROM routing_chat c JOIN "
                                       f"libraries_staffprofile s ON s.id = c.librarian_id JOIN auth_user u "
                                       f"ON u.id = s.user_id WHERE c.id = '{chat_id}'") == "max"

        # The staff room, between two consoles of two libraries: Cy is away, so reads it read-only.
        await page.click("#room summary")
        assert await page.is_hidden("#room-note") and await page.is_enabled("#room-text")
        await page.fill("#room-text", "Max has the museum pass chat now.")
        await page.click("#room-form button[type=submit]")
        await cy.page.click("#room summary")
        await cy.page.locator("#room-log", has_text="Max has the museum pass chat now.").wait_for()
        assert await cy.page.is_visible("#room-note") and await cy.page.is_disabled("#room-text")
        await shot(cy.page, "console-staff-room.png")
        assert not (ana.errors or cy.errors or mentor_errors or patron_errors), (ana.errors, cy.errors,
                                                                                 mentor_errors, patron_errors)
