"""Our pages under their Content-Security-Policy, in a real browser: nothing they need is refused.

Headless Debian Chromium against the production stack on loopback. Every page of ours is opened as a person
would (the ask page starts a chat over its WebSocket, the console connects and goes available, coordinators'
pages and the admin load) while the browser reports every `securitypolicyviolation`. There must be none, and
no script error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.browser.chromium import chromium, sign_in
from tests.live.stack import PASSWORD, Stack, launcher_says_open, librarian, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

WORLD = world("cspw", [{"slug": "alpha"}], [
    {"username": "lena", "library": "alpha", "queues": ["statewide"]},
    {"username": "cora", "library": "alpha", "role": "coordinator"},
])
# Collects what the browser refuses, from the first script on.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  `${e.effectiveDirective} refused ${e.blockedURI || 'inline'} at ${e.sourceFile || location.pathname}` +
  `:${e.lineNumber}`));
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running() as s:
        yield s


@contextlib.asynccontextmanager
async def browser_page(stack: Stack) -> AsyncIterator[tuple[Any, list[str]]]:
    async with chromium() as browser:
        context = await browser.new_context()
        await context.add_init_script(WATCH)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if "Content Security Policy" in m.text else None)
        yield page, problems


async def refused(page: Any) -> list[str]:
    return list(await page.evaluate("window.__csp || []"))


async def away(sock: Any) -> None:
    await sock.send({"type": "presence", "status": "away"})
    await sock.expect("presence", status="away", timeout=10)


async def test_the_ask_page_starts_a_chat_under_its_policy(stack: Stack) -> None:
    base = stack.base()
    # Lena is on duty: the launcher says so and the chat's own form comes first (a closed library's
    # page opens on the question form, issue 18).
    sock, _hello, _ = await librarian(base, "lena", PASSWORD)
    await launcher_says_open(stack, "cspw", "alpha")
    async with contextlib.AsyncExitStack() as stay:
        stay.push_async_callback(sock.close)
        stay.push_async_callback(away, sock)  # the next test's console starts from away, as Lena left it
        page, problems = await stay.enter_async_context(browser_page(stack))
        response = await page.goto(f"{base}/ask/cspw/alpha/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        await page.fill("[data-vr=question]", "Do you have museum passes?")
        await page.click("[data-vr=start-form] button[type=submit]")
        # The chat view shows once the chat exists; its status line once the socket (connect-src) is open.
        await page.wait_for_selector("[data-vr=chat]:not([hidden])", timeout=15000)
        await page.wait_for_function("document.querySelector('[data-vr=status]').textContent.trim() !== ''",
                                     timeout=15000)
        assert await refused(page) == [] and problems == []


async def test_the_console_and_staff_pages_run_under_the_policy(stack: Stack) -> None:
    base = stack.base()
    async with browser_page(stack) as (page, problems):
        await sign_in(page, base, "lena")
        # The console's socket (connect-src) is up when its presence toggle answers over it.
        await page.click("#presence")
        await page.wait_for_selector('#presence[aria-pressed="true"]', timeout=15000)
        seen = [await refused(page)]
        for path in ("/staff/tickets/", "/staff/history/", "/rota/"):
            await page.goto(base + path)
            seen.append(await refused(page))
        assert seen == [[]] * len(seen) and problems == []


async def test_coordinator_pages_and_the_admin_run_under_the_policy(stack: Stack) -> None:
    base = stack.base()
    async with browser_page(stack) as (page, problems):
        await sign_in(page, base, "cora")
        seen = {}
        for path in ("/coordinator/cspw/", "/coordinator/cspw/hours/", "/coordinator/cspw/rota/",
                     "/coordinator/cspw/coverage/", "/coordinator/cspw/statistics/", "/admin/",
                     "/admin/routing/chat/"):
            response = await page.goto(base + path)
            if response is None or response.status == 404:
                continue  # a page that is not there (yet) has nothing to refuse
            await page.wait_for_timeout(300)
            seen[path] = await refused(page)
        assert seen and all(v == [] for v in seen.values()), seen
        assert problems == []
