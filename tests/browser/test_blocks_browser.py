"""Patron blocks in headless Chromium against the production stack: a patron asks on the ask page, the
librarian ends the chat with "End and block" from the keyboard, the patron's next start is refused with
the neutral message and the question form (which still works), in English and Spanish, and a coordinator
lifts the block on the blocks page, after which the same browser chats again.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots):
    VR_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_blocks_browser.py -m browser
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.browser.test_console import open_console
from tests.live.stack import PASSWORD, Stack, free_port, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None
WORLD = world("blk", [{"slug": "alpha", "name": "Alpha County Library"}, {"slug": "beta", "name": "Beta Library"}],
              [{"username": "bo", "name": "Bo Lind", "library": "alpha", "languages": ["en", "es"]},
               {"username": "bea", "library": "beta", "languages": ["en", "es"]},
               {"username": "cleo", "library": "alpha", "role": "coordinator"}], reconnect_grace=30)
# The library's own website, where the widget runs: another origin (Chromium maps the name to loopback).
SITE_PORT = free_port()
SITE = f"http://library.test:{SITE_PORT}"
WORLD["consortium"]["allowed_origins"] = [SITE]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running() as s:
        yield s


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(stack: Stack) -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="vr-block-site-"))
    (root / "index.html").write_text(
        f"""<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Alpha</title></head>
<body><h1>Alpha County Library</h1><script src="{stack.base()}/widget.js" data-consortium="blk"
data-library="beta" data-lang="es" async></script></body></html>""")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", SITE_PORT), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield SITE
    finally:
        server.shutdown()
        server.server_close()


async def shot(page: Any, name: str) -> None:
    if SHOTS is not None:
        await page.screenshot(path=str(SHOTS / name))


async def ask(page: Any, question: str) -> None:
    await page.locator("[data-vr=start-form] [data-vr=question]").fill(question)
    await page.locator("[data-vr=start-form] button[type=submit]").click()


async def chat_id_of(page: Any) -> str:
    for _ in range(100):
        chat_id = await page.evaluate(
            "(() => { const s = JSON.parse(sessionStorage.getItem('vrchat:blk') || 'null'); return s && s.id; })()")
        if chat_id:
            return str(chat_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the ask page stored no chat")


async def test_end_and_block_then_the_patron_sees_the_neutral_message_and_the_question_form(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        bo = await open_console(browser, base, "bo", bypass_csp=True)  # axe-core is injected
        patron_context = await browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-US")
        patron = await patron_context.new_page()
        patron.set_default_timeout(15000)
        patron_errors: list[str] = []
        patron.on("pageerror", lambda e: patron_errors.append(str(e)))
        await patron.goto(f"{base}/ask/blk/alpha/")
        await ask(patron, "You people are useless")
        chat_id = await chat_id_of(patron)
        device = await patron.evaluate("localStorage.getItem('vr-device')")
        assert device and len(device) == 48

        page = bo.page
        await bo.offer(chat_id)
        await page.click(f'.offer[data-chat="{chat_id}"] .accept')
        panel = bo.panel(chat_id)
        await bo.wait_text(f"{panel} .log", "useless")

        # End and block, from the keyboard: the button, the reason (focused), a length, the submit.
        await page.focus(f"{panel} .do-block")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#dlg-block[open]")
        assert await page.evaluate("document.activeElement.id") == "block-reason"
        # Without a reason it is refused in the dialog, which stays open.
        await page.focus("#block-ok")
        await page.keyboard.press("Enter")
        await bo.wait_text("#block-error", "Say why")
        await page.focus("#block-reason")
        await page.keyboard.type("Abusive language after two warnings")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "block-hours"
        assert await page.input_value("#block-hours") == "24"  # the default
        assert await page.eval_on_selector_all("#block-hours option", "os => os.map(o => o.value)") == ["1", "4", "24"]
        await page.select_option("#block-hours", "4")
        assert await page.is_visible("#block-address-warning")
        await shot(page, "console-block.png")
        assert await axe_violations(page) == []
        await page.focus("#block-ok")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#dlg-block", state="hidden")
        await bo.wait_text(f"{panel} .ended-text", "ended")
        row = await asyncio.to_thread(stack.sql, "SELECT reason, lifted_at IS NULL, "
                                      "round(extract(epoch FROM expires_at - created_at)) FROM routing_patronblock")
        assert row == "Abusive language after two warnings|t|14400"
        trace = await asyncio.to_thread(stack.sql, f"SELECT count(*) FROM routing_traceevent WHERE chat_id = "
                                        f"'{chat_id}' AND kind = 'blocked'")
        assert trace == "1"

        # The patron: the chat has ended; a new one is refused in neutral words, and the question form is there.
        await patron.get_by_text("The chat has ended.").first.wait_for()
        await patron.locator("[data-vr=new]").click()
        await ask(patron, "Please let me ask again")
        status = patron.locator("[data-vr=status]")
        await status.get_by_text("Chat is not available right now.").wait_for()
        assert "block" not in (await status.inner_text()).lower()
        form = patron.locator("[data-vr=qform]")
        assert await form.is_visible()
        assert await form.get_by_label("Your question").input_value() == "Please let me ask again"
        await form.get_by_label("Email (required").fill("reader@example.org")
        await form.get_by_role("button", name="Send my question").click()
        await patron.get_by_text("Thank you. An answer is on its way by email").first.wait_for()
        tickets = await asyncio.to_thread(stack.sql,
                                          "SELECT count(*) FROM routing_ticket WHERE source = 'question_form'")
        assert tickets == "1"
        assert await asyncio.to_thread(stack.sql, "SELECT count(*) FROM routing_chat") == "1"

        # In Spanish, the same refusal (Bo speaks Spanish: the launcher says open, so the chat's form comes first).
        await patron.goto(f"{base}/ask/blk/alpha/?lang=es")
        await ask(patron, "Quiero preguntar otra vez")
        await patron.locator("[data-vr=status]").get_by_text("El chat no está disponible ahora.").wait_for()
        assert await patron.locator("[data-vr=qform]").is_visible()
        await shot(patron, "ask-blocked.png")

        # A coordinator sees the block (masked key, reason, the chat) and lifts it with a note.
        coord_context = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        coord = await coord_context.new_page()
        await sign_in(coord, base, "cleo", PASSWORD, next_path="/coordinator/blk/blocks/")
        active = coord.locator("tr[data-status=active]")
        assert await active.count() == 1
        text = await active.inner_text()
        assert "Abusive language after two warnings" in text and "Alpha County Library" in text and chat_id in text
        assert device not in await coord.content()
        await shot(coord, "coordinator-blocks.png")
        assert await axe_violations(coord) == []
        await active.get_by_label("Note").first.fill("Spoke with the patron's library")
        await active.get_by_role("button", name="Lift block").click()
        await coord.locator("tr[data-status=lifted]").wait_for()
        assert "Spoke with the patron's library" in await coord.locator("tr[data-status=lifted]").inner_text()

        # The same browser chats again.
        await patron.goto(f"{base}/ask/blk/alpha/")
        await ask(patron, "Thank you, one more question")
        await bo.offer(await chat_id_of(patron))
        assert not patron_errors and not bo.errors, (patron_errors, bo.errors)


async def test_the_widget_on_a_librarys_site_shows_the_neutral_message_and_the_form(stack: Stack, site: str) -> None:
    """The widget keeps its own device id (its site's localStorage): a chat started in it and blocked
    refuses the next start in that widget, in the page's language, with the question form."""
    base = stack.base()
    async with chromium("--host-resolver-rules=MAP library.test 127.0.0.1") as browser:
        bea = await open_console(browser, base, "bea")
        context = await browser.new_context(viewport={"width": 1024, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{site}/index.html")
        await page.locator("#vrchat-widget button.l").click()
        await ask(page, "Una pregunta grosera")
        chat_id = await chat_id_of(page)
        await bea.offer(chat_id)
        await bea.page.click(f'.offer[data-chat="{chat_id}"] .accept')
        await bea.wait_text(f"{bea.panel(chat_id)} .log", "grosera")
        # The patron ends the chat first: its librarian blocks them from the ended chat's tab.
        await page.locator("[data-vr=end]").click()
        after = f"{bea.panel(chat_id)} .ended-box .do-block-after"
        await bea.page.wait_for_selector(after)
        await bea.page.click(after)
        assert await bea.page.inner_text("#block-ok") == "Block"
        await bea.page.fill("#block-reason", "Insults")
        await bea.page.click("#block-ok")
        await bea.page.wait_for_selector("#dlg-block", state="hidden")
        await bea.page.wait_for_selector(after, state="hidden")

        await page.locator("[data-vr=new]").click()
        await ask(page, "Otra pregunta")
        await page.locator("[data-vr=status]").get_by_text("El chat no está disponible ahora.").wait_for()
        form = page.locator("[data-vr=qform]")
        assert await form.is_visible()
        assert await form.locator("[data-vr=q-question]").input_value() == "Otra pregunta"
        assert await asyncio.to_thread(stack.sql, "SELECT count(*) FROM routing_chat WHERE "
                                       "question = 'Otra pregunta'") == "0"
        assert not errors and not bea.errors, (errors, bea.errors)
