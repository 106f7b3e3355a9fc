"""Issue 17, parts 5-7, in headless Chromium against the production stack (one stack for the module):

- a returning patron ticks "Remember me on this device" (off by default); their next chat goes to the
  librarian who last helped, whose console shows the earlier chat;
- the way home: a partner librarian's console offers "hand back?" when a home librarian becomes
  available, and one click hands the chat back with the note, which the home librarian reads;
- the question form takes "I need the answer by" and says by when the answer is on its way (also in
  Spanish); the follow-up page shows its due time, and the coordinators' overdue page lists it.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots):
    VR_SCREENSHOTS_DIR=docs/screenshots python3 dev.py test tests/browser/test_followthrough_browser.py
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.browser.test_console import Console, open_console
from tests.live.stack import PASSWORD, Stack, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

WORLD = world("ftb", [{"slug": "home", "name": "Home Library", "partners": ["partner"]},
                      {"slug": "partner", "name": "Partner Library"}, {"slug": "quiet", "name": "Quiet Library"}],
              [{"username": "hana", "name": "Hana Home", "library": "home"},
               {"username": "hugo", "name": "Hugo Home", "library": "home"},
               {"username": "pia", "name": "Pia Partner", "library": "partner"},
               {"username": "cora", "name": "Cora Coordinator", "library": "partner", "role": "coordinator"}],
              returning_head_start=5)


SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None


async def shot(page: Any, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running() as s:
        yield s


async def patron_page(browser: Any, base: str, path: str, locale: str = "en-US") -> Any:
    context = await browser.new_context(viewport={"width": 1024, "height": 800}, locale=locale)
    page = await context.new_page()
    page.set_default_timeout(15000)
    await page.goto(f"{base}{path}")
    return page


async def ask(page: Any, question: str, *, remember: bool = False) -> str:
    form = page.locator("[data-vr=start-form]")
    await form.get_by_label("Your question").fill(question)
    if remember:
        await form.get_by_label("Remember me on this device").check()
    await form.locator("button[type=submit]").click()
    for _ in range(150):
        chat_id = await page.evaluate(
            "(() => { const s = JSON.parse(sessionStorage.getItem('vrchat:ftb') || 'null'); return s && s.id; })()")
        if chat_id:
            return str(chat_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the ask page stored no chat")


async def accept(console: Console, chat_id: str) -> str:
    await console.offer(chat_id)
    await console.page.click(f'.offer[data-chat="{chat_id}"] .accept')
    panel = console.panel(chat_id)
    await console.page.wait_for_selector(panel)
    return panel


async def test_a_returning_patron_reaches_the_librarian_who_helped_and_is_shown_the_earlier_chat(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        hana = await open_console(browser, base, "hana", bypass_csp=True)
        patron = await patron_page(browser, base, "/ask/ftb/home/")
        assert not await patron.get_by_label("Remember me on this device").is_checked()  # off by default
        first = await ask(patron, "Do you have Spanish audiobooks?", remember=True)
        panel = await accept(hana, first)
        await hana.send(first, "Yes: the Libby app has them.")
        await patron.get_by_text("the Libby app").first.wait_for()
        await patron.locator("[data-vr=end]").click()
        await patron.locator("[data-vr=new]").wait_for(state="visible")
        await patron.locator("[data-vr=new]").click()

        second = await ask(patron, "Me again: any in Catalan?", remember=True)
        offer = await hana.offer(second)
        assert await offer.eval_on_selector(".badge", "e => e.textContent") == "returning"
        step = await asyncio.to_thread(stack.sql, f"SELECT plan->0->>'name' FROM routing_chat WHERE id='{second}'")
        assert step == "returning"
        panel = await accept(hana, second)
        earlier = hana.page.locator(f"{panel} .earlier")
        await earlier.wait_for(state="visible")
        await earlier.locator("summary").click()
        assert "1 earlier chat" in await earlier.locator("summary").inner_text()
        link = earlier.locator("a")
        assert await link.get_attribute("href") == f"/staff/history/{first}/"
        assert "Spanish audiobooks" in await link.inner_text()
        await shot(hana.page, "console-returning-patron")
        assert await axe_violations(hana.page) == []
        assert hana.errors == []


async def test_a_partner_hands_the_chat_back_in_one_click_with_a_note(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        pia = await open_console(browser, base, "pia", bypass_csp=True)
        hugo = await open_console(browser, base, "hugo", available=False)
        patron = await patron_page(browser, base, "/ask/ftb/home/")
        chat_id = await ask(patron, "Are museum passes free for Home residents?")
        panel = await accept(pia, chat_id)  # nobody available at home: the partners step
        box = pia.page.locator(f"{panel} .handback")
        assert await box.is_hidden()

        await hugo.available()
        await box.wait_for(state="visible")
        asked = await box.locator(".handback-text").inner_text()
        assert asked == "A librarian of Home Library is available: hand back?"
        await box.get_by_label("Note for the home library").fill("Asked about museum passes; card checked.")
        await shot(pia.page, "console-hand-back")
        assert await axe_violations(pia.page) == []
        await box.get_by_role("button", name="Hand back").click()
        await pia.wait_text(f"{panel} .ended-text", "You transferred this chat")

        offer = await hugo.offer(chat_id)
        assert "Asked about museum passes; card checked." in await offer.inner_text()
        panel = await accept(hugo, chat_id)
        await hugo.wait_text(f"{panel} .transfer-note", "Asked about museum passes")
        await patron.get_by_text("You are being transferred").first.wait_for()
        assert pia.errors == [] and hugo.errors == []


async def test_a_late_answer_about_the_chat_does_not_hide_the_hand_back_prompt(stack: Stack) -> None:
    """The console asks the server about a chat it opens; under load that answer, read before a home
    librarian became available, came after the live `handback` frame and hid the prompt again (CI)."""
    base = stack.base()
    async with chromium() as browser:
        pia = await open_console(browser, base, "pia", bypass_csp=True)
        hugo = await open_console(browser, base, "hugo", available=False)
        # Back within the reconnect grace of the test before, hugo's console keeps the status it had
        # then (available, and free again once that test's patron has gone): say away, so that
        # nobody of the home library is there and the chat goes to the partners step.
        await hugo.away()
        assert stack.sql("SELECT p.status FROM routing_librarianpresence p JOIN libraries_staffprofile s "
                         "ON s.id = p.librarian_id JOIN auth_user u ON u.id = s.user_id "
                         "WHERE u.username = 'hugo'") == "away"
        patron = await patron_page(browser, base, "/ask/ftb/home/")
        chat_id = await ask(patron, "Can a Home card borrow a telescope?")
        release = asyncio.Event()
        held: list[object] = []

        async def answer_late(route: Any) -> None:
            if held:
                await route.continue_()
                return
            held.append(route)
            response = await route.fetch()  # read now, while nobody of the home library is available
            await release.wait()
            await route.fulfill(response=response)

        await pia.page.route(f"**/staff/api/chats/{chat_id}", answer_late)
        panel = await accept(pia, chat_id)
        await hugo.available()
        offered = (f"SELECT count(*) FROM routing_traceevent WHERE chat_id = '{chat_id}' "
                   "AND kind = 'handback_offered'")
        for _ in range(100):
            if stack.sql(offered) == "1":
                break
            await asyncio.sleep(0.2)
        assert stack.sql(offered) == "1"
        await asyncio.sleep(1.0)  # the frame that follows the trace line reaches the console
        assert held, "the console asked about the chat"
        release.set()
        await pia.page.locator(f"{panel} .handback").wait_for(state="visible", timeout=10000)
        await asyncio.sleep(0.5)
        assert await pia.page.locator(f"{panel} .handback").is_visible()
        assert pia.errors == [] and hugo.errors == []


async def test_the_question_form_takes_a_deadline_and_coordinators_see_it_overdue(stack: Stack) -> None:
    base = stack.base()
    day = datetime.now(UTC).date() + timedelta(days=7)
    async with chromium() as browser:
        # Nobody there: the launcher says closed and the question form comes first (issue 18).
        patron = await patron_page(browser, base, "/ask/ftb/quiet/")
        form = patron.locator("[data-vr=qform]")
        await form.wait_for(state="visible")
        await form.get_by_label("Your question").fill("Can I get the 1910 census on microfilm?")
        await form.get_by_label("Email (required").fill("reader@example.org")
        await form.get_by_label("I need the answer by").fill("2001-01-01")
        await form.get_by_role("button", name="Send my question").click()
        await patron.locator("[data-vr=qform-error]").get_by_text("deadline").wait_for()
        await form.get_by_label("I need the answer by").fill(day.isoformat())
        await shot(patron, "ask-question-deadline")
        await form.get_by_role("button", name="Send my question").click()
        await patron.get_by_text("An answer is on its way by email: expect it by").first.wait_for()
        ticket = await asyncio.to_thread(stack.sql, "SELECT id FROM routing_ticket WHERE due_from = 'patron'")
        assert ticket

        spanish = await patron_page(browser, base, "/ask/ftb/quiet/?lang=es", locale="es-ES")
        await spanish.get_by_label("Recordarme en este dispositivo").wait_for(state="attached")  # behind the form
        assert not await spanish.get_by_label("Recordarme en este dispositivo").is_checked()

        # Past due (the clock moved on): the coordinators' overdue page lists it under its library.
        await asyncio.to_thread(stack.sql, f"UPDATE routing_ticket SET due_at = now() - interval '5 hours' "
                                           f"WHERE id = '{ticket}'")
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        coord = await context.new_page()
        await sign_in(coord, base, "cora", PASSWORD, next_path="/coordinator/ftb/follow-ups/overdue/")
        row = coord.locator(f'tr[data-followup="{ticket}"]')
        await row.wait_for()
        assert "census" in await row.inner_text() and "5 h" in await row.inner_text()
        assert "Quiet Library (1)" in await coord.locator("h3").all_inner_texts()
        await shot(coord, "coordinator-overdue")
        assert await axe_violations(coord) == []
