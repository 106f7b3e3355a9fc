"""The honest launcher in Chromium: the widget's launcher and the ask page say what a chat started now
would meet before the patron types; closed, the ask page puts the question form first and says when the
service opens, in the patron's own time zone and language."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.chromium import chromium
from tests.live.stack import PASSWORD, Stack, free_port, librarian, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

NY = ZoneInfo("America/New_York")
SITE_PORT = free_port()
SITE = f"http://allowed.test:{SITE_PORT}"  # Chromium maps allowed.test to 127.0.0.1: a real, distinct origin
OPEN = world("launch", libraries=[{"slug": "north", "name": "North Library"}],
             staff=[{"username": "nia", "library": "north", "languages": ["en", "es"]}])
OPEN["consortium"]["allowed_origins"] = [SITE]
# Open only on the day after today (New York), 09:00 to 17:00: closed now, whenever the test runs.
TOMORROW = datetime.now(NY) + timedelta(days=1)
DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[TOMORROW.weekday()]
SHUT = world("shut", libraries=[{"slug": "south", "name": "South Library", "hours": {DAY: ["09:00-17:00"]}}],
             staff=[{"username": "sol", "library": "south"}])
SHUT["queues"][0]["hours"] = {DAY: ["09:00-17:00"]}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([OPEN, SHUT]).running() as s:
        yield s


class _Site(http.server.BaseHTTPRequestHandler):
    """The library's own website: one page with the widget."""

    def do_GET(self) -> None:
        body = ("<!doctype html><html lang=en><title>North</title><body><h1>North Library</h1>"
                f'<script src="{self.server.base}/widget.js" data-consortium="launch" '  # type: ignore[attr-defined]
                'data-library="north" async></script></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(stack: Stack) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", SITE_PORT), _Site)
    server.base = stack.base()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SITE
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium("--host-resolver-rules=MAP allowed.test 127.0.0.1") as b:
        yield b


async def test_the_launcher_and_the_ask_page_say_a_librarian_is_available(browser: Any, stack: Stack,
                                                                         site: str) -> None:
    sock, _hello, _ = await librarian(stack.base(), "nia", PASSWORD)
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{site}/")  # the library's own site, an origin the consortium allows
        status = page.locator("#vrchat-widget button.l .s")
        await status.get_by_text("A librarian is available.").wait_for()
        assert await page.locator("#vrchat-widget button.l").get_attribute("data-state") == "available"

        await page.goto(f"{stack.base()}/ask/launch/north/")
        avail = page.locator("[data-vr=avail]")
        await avail.get_by_text("A librarian is available.").wait_for()
        assert await avail.get_attribute("data-state") == "available"
        assert await page.locator("[data-vr=start-form]").is_visible(), "open: the chat's own form"
        assert not await page.locator("[data-vr=qform-box]").is_visible()
        assert not errors, errors
        await context.close()
    finally:
        await sock.close()


@pytest.mark.parametrize(("lang", "zone", "closed", "send"), [
    ("en", "America/Los_Angeles", "Closed, opens", "Send my question"),
    ("es", "Europe/Madrid", "Cerrado, abre", "Enviar mi pregunta"),
])
async def test_closed_puts_the_question_form_first_and_says_when_it_opens_in_the_patrons_time(
        browser: Any, stack: Stack, lang: str, zone: str, closed: str, send: str) -> None:
    context = await browser.new_context(locale="es-ES" if lang == "es" else "en-US", timezone_id=zone)
    page = await context.new_page()
    page.set_default_timeout(15000)
    await page.goto(f"{stack.base()}/ask/shut/south/?lang={lang}")
    avail = page.locator("[data-vr=avail]")
    await avail.get_by_text(closed).wait_for()
    # 09:00 in New York, written in the patron's zone: 06:00 in Los Angeles, 15:00 in Madrid.
    opens = TOMORROW.replace(hour=9, minute=0, second=0, microsecond=0).astimezone(ZoneInfo(zone))
    text = await avail.text_content() or ""
    assert str(opens.hour) in text, text
    form = page.locator("[data-vr=qform]")
    assert await form.is_visible(), "closed: the question form comes first"
    assert not await page.locator("[data-vr=start-form]").is_visible()
    question = f"Can I reserve a study room? ({lang})"
    await form.locator("[data-vr=q-question]").fill(question)
    await form.locator("[data-vr=q-email]").fill(f"early-{lang}@example.org")
    await form.get_by_role("button", name=send).click()
    await page.locator("[data-vr=qform-box]").wait_for(state="hidden")
    ticket = await asyncio.to_thread(
        stack.sql, f"SELECT patron_email, source FROM routing_ticket WHERE question = '{question}'")
    assert ticket == f"early-{lang}@example.org|question_form"
    chats = await asyncio.to_thread(stack.sql, f"SELECT count(*) FROM routing_chat WHERE question = '{question}'")
    assert chats == "0", "no chat was started to find nobody"
    await context.close()
