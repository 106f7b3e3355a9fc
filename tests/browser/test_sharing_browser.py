"""Screen and page sharing (issue 19) in headless Chromium against the production stack: both directions
with real video (Chromium's fake capture gives a real stream; frames must decode on the other side),
consent refused, stop from either side, the librarian and the patron on different web processes, the
widget's page sharing across a library site's pages with a pushed page opened by a click, and the
message both sides get within 15 s when the share cannot connect.

One stack for the module: web1 and web2 as in production (no ICE servers: two browsers on one machine
connect directly), and web3, whose shares may only go through a TURN relay that does not answer (a
strict network with no working TURN: `VR_SHARE_RELAY_ONLY`).
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium
from tests.browser.test_console import Console, open_console, shot
from tests.live.stack import Stack, free_port, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

HOST_PORT = free_port()
# The library's own site, on a host of its own (this service's hosts are its own origin, not a library's).
SITE = f"http://library.test:{HOST_PORT}"
# A real capture stream without a person at the browser's picker.
FAKE_CAPTURE = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--auto-select-desktop-capture-source=Entire screen",
                "--host-resolver-rules=MAP library.test 127.0.0.1")

# A library and its librarian per test, so that a chat one test leaves behind is never offered in the next.
WORLD = world("share", libraries=[{"slug": "alpha", "name": "Alpha County Library"},
                                  {"slug": "beta", "name": "Beta Library"}, {"slug": "gamma", "name": "Gamma Library"}],
              staff=[{"username": "ana", "name": "Ana Ruiz", "library": "alpha"},
                     {"username": "ben", "name": "Ben Ode", "library": "beta"},
                     {"username": "cy", "name": "Cy Lund", "library": "gamma"}])
WORLD["consortium"]["allowed_origins"] = [SITE]
ROOT = Path(__file__).resolve().parents[2]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack.prepare([WORLD])
    with s.running(webs=2):
        kept = dict(s.env)
        s.env.update(ICE_SERVERS="turn:127.0.0.1:9", TURN_SECRET="no-relay-answers", VR_SHARE_RELAY_ONLY="true")
        s.start_one("web3")
        s.env = kept
        s.wait_http(s.ports["web3"])
        yield s


def _page(title: str, base: str, link: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1><p><a href="{link}">Next page</a></p></main>
<script src="{base}/widget.js" data-consortium="share" data-library="beta" async></script></body></html>"""


@pytest.fixture(scope="module")
def site(stack: Stack) -> Iterator[str]:
    """The library's website on another origin: two pages embedding the widget (from web1)."""
    root = Path(tempfile.mkdtemp(prefix="vr-share-site-"))
    (root / "page1.html").write_text(_page("Alpha County Library", stack.base("web1"), "page2.html"))
    (root / "page2.html").write_text(_page("Opening hours", stack.base("web1"), "page1.html"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", HOST_PORT), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield SITE
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)


class Patron:
    """The patron's page, watched for script errors and Content-Security-Policy refusals."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("console", lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None)


async def patron_page(browser: Any, url: str) -> Patron:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    patron = Patron(page)
    await page.goto(url)
    return patron


async def ask(page: Any, question: str, *, widget: bool = False) -> str:
    if widget:
        await page.locator("#vrchat-widget button.l").click()
    await page.locator("[data-vr=start-form]").get_by_label("Your question").fill(question)
    await page.get_by_role("button", name="Start chat").click()
    for _ in range(100):
        raw = await page.evaluate("sessionStorage.getItem('vrchat:share')")
        if raw and json.loads(raw).get("id"):
            return str(json.loads(raw)["id"])
        await asyncio.sleep(0.1)
    raise AssertionError("no chat was started")


async def accept(console: Console, chat_id: str) -> str:
    await console.offer(chat_id, timeout=20000)
    await console.page.click(f'.offer[data-chat="{chat_id}"] .accept')
    await console.page.wait_for_selector(f"#panel-{chat_id}")
    return console.panel(chat_id)


async def frames_decode(video: Any) -> int:
    """The width of a frame that decoded in `video` (a locator): requestVideoFrameCallback must fire."""
    await video.wait_for(state="attached", timeout=15000)
    return int(await video.evaluate(
        "v => new Promise((ok, no) => { setTimeout(() => no(new Error('no frame in 15 s')), 15000);"
        " v.requestVideoFrameCallback(() => ok(v.videoWidth)); })"))


def patron_shot(page: Any, name: str) -> Any:
    """The patron's page into $VR_SCREENSHOTS_DIR, when set (docs/screenshots holds the docs' copies)."""
    folder = os.environ.get("VR_SCREENSHOTS_DIR")
    if not folder:
        return asyncio.sleep(0)
    return page.screenshot(path=str(Path(folder) / f"patron-{name}.png"))


def share_trace(stack: Stack, chat_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = stack.sql(f"SELECT kind || '|' || data::text FROM routing_traceevent WHERE chat_id = '{chat_id}' "
                     "AND (kind LIKE 'share%' OR kind = 'page_pushed') ORDER BY at, id")
    return [(line.split("|", 1)[0], json.loads(line.split("|", 1)[1])) for line in rows.splitlines() if line]


async def test_both_directions_across_two_web_processes_with_refusal_and_stop_from_either_side(stack: Stack) -> None:
    async with chromium(*FAKE_CAPTURE) as browser:
        ana = await open_console(browser, stack.base("web1"), "ana", bypass_csp=True)
        patron = await patron_page(browser, f"{stack.base('web2')}/ask/share/alpha/")
        page = patron.page
        chat_id = await ask(page, "Where is the renew button in the catalogue?")
        panel = await accept(ana, chat_id)
        lib = ana.page

        # "Show me", refused from the keyboard: the prompt names the librarian and the library, and
        # takes the focus; Tab reaches "No thanks".
        await lib.click(f"{panel} .do-see")
        prompt = page.get_by_role("alertdialog", name="Screen sharing")
        await prompt.wait_for(timeout=10000)
        assert "Ana Ruiz at Alpha County Library asks to see your screen" in await prompt.inner_text()
        assert "Nothing is recorded" in await prompt.inner_text()
        assert await page.evaluate("document.activeElement.textContent") == "Share my screen"
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await ana.wait_text(f"{panel} .share-note", "The patron said no")
        assert await prompt.count() == 0

        # "Show me", accepted with Enter: the browser's picker (fake) gives the patron's screen, the patron
        # sees the "You are sharing: Stop" bar, and the librarian's video decodes frames.
        await lib.click(f"{panel} .do-see")
        await prompt.wait_for(timeout=10000)
        await page.keyboard.press("Enter")
        bar = page.locator(".vr-sharing").filter(has_text="You are sharing your screen with Ana Ruiz")
        await bar.wait_for(timeout=10000)
        assert await bar.get_by_role("button", name="Stop sharing").is_visible()
        assert await frames_decode(lib.locator(f"{panel} .share-box video")) > 0
        await ana.wait_text(f"{panel} .share-status", "You see the patron's screen")
        problems = await axe_violations(lib)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        await lib.locator(f"{panel} .share-box").scroll_into_view_if_needed()
        await shot(lib, "share-see")
        await patron_shot(page, "share-sharing")
        # The librarian stops: the patron's bar goes and they are told.
        await lib.click(f"{panel} .share-box button:has-text('Stop')")
        await page.get_by_text("Screen sharing has ended.").wait_for(timeout=10000)
        assert await bar.count() == 0

        # "Let me show you": the librarian picks a screen first, the patron chooses to watch, and frames
        # decode in the chat panel; Enlarge and Escape; the patron closes it and the librarian is told.
        await lib.click(f"{panel} .do-show")
        await ana.wait_text(f"{panel} .share-status", "Waiting for the patron to accept")
        await prompt.wait_for(timeout=10000)
        assert "would like to show you their screen" in await prompt.inner_text()
        await patron_shot(page, "share-consent")
        await page.get_by_role("button", name="Watch").click()
        video = page.locator(".vr-viewer video")
        assert await frames_decode(video) > 0
        enlarge = page.get_by_role("button", name="Enlarge")
        await enlarge.click()
        assert await page.locator(".vr-viewer.vr-big").count() == 1
        await page.keyboard.press("Escape")
        assert await page.locator(".vr-viewer.vr-big").count() == 0
        await page.locator(".vr-viewer").get_by_role("button", name="Close").click()
        await ana.wait_text(f"{panel} .share-note", "The patron stopped sharing")

        # The trace: who, when, how long, never content.
        trace = await asyncio.to_thread(share_trace, stack, chat_id)
        assert [k for k, _ in trace] == ["share_requested", "share_refused", "share_requested", "share_started",
                                         "share_ended", "share_requested", "share_started", "share_ended"]
        ends = [d for k, d in trace if k == "share_ended"]
        assert [(d["share_kind"], d["by"]) for d in ends] == [("see", "librarian"), ("show", "patron")]
        assert all(d["seconds"] > 0 for d in ends)
        assert "sdp" not in json.dumps(trace) and "candidate" not in json.dumps(trace)
        assert patron.problems == [] and ana.errors == []


async def test_the_widget_shares_the_page_across_the_site_and_a_pushed_page_opens_on_a_click(
        stack: Stack, site: str) -> None:
    async with chromium(*FAKE_CAPTURE) as browser:
        ben = await open_console(browser, stack.base("web2"), "ben", bypass_csp=True)
        patron = await patron_page(browser, f"{site}/page1.html")
        page = patron.page
        chat_id = await ask(page, "Which page has the hours?", widget=True)
        panel = await accept(ben, chat_id)
        lib = ben.page

        await lib.click(f"{panel} .do-page")
        prompt = page.get_by_role("alertdialog", name="Screen sharing")
        await prompt.wait_for(timeout=10000)
        assert "which page of this website you are on" in await prompt.inner_text()
        problems = await axe_violations(page)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        await page.get_by_role("button", name="Share the page").click()
        await ben.wait_text(f"{panel} .share-page", "Alpha County Library")
        assert f"{site}/page1.html" in await lib.inner_text(f"{panel} .share-page")

        # A new page of the site: the widget's new socket reports it, the patron still sees the bar.
        await page.get_by_role("link", name="Next page").click()
        await page.wait_for_url(f"{site}/page2.html")
        await ben.wait_text(f"{panel} .share-page", "Opening hours", timeout=15000)
        bar = page.locator(".vr-sharing").filter(has_text="Ben Ode can see which page of this website you are on")
        await bar.wait_for(timeout=10000)

        # A page pushed by the librarian is a card; nothing opens until the patron clicks it.
        pages_before = len(page.context.pages)
        await lib.click(f"{panel} .do-push")
        await lib.fill(f"{panel} .push-url", f"{site}/page1.html#renewals")
        await lib.fill(f"{panel} .push-title", "How to renew")
        await lib.click(f"{panel} .push-form button[type=submit]")
        card = page.get_by_role("group", name="Ben Ode sent you a page:")
        await card.wait_for(timeout=10000)
        await patron_shot(page, "share-widget-page-card")
        await lib.locator(f"{panel} .share-box").scroll_into_view_if_needed()
        await shot(lib, "share-page")
        await asyncio.sleep(0.5)
        assert len(page.context.pages) == pages_before, "no window opens without the patron's click"
        async with page.context.expect_page() as opened:
            await card.get_by_role("link", name="How to renew").click()
        assert (await opened.value).url == f"{site}/page1.html#renewals"

        # The librarian's screen inside the widget's panel too (its shadow root), beside the page share;
        # the librarian stops showing and the patron is told.
        await lib.click(f"{panel} .do-show")
        await page.get_by_role("button", name="Watch").click()
        assert await frames_decode(page.locator(".vr-viewer video")) > 0
        await lib.click(f"{panel} .share-box[data-kind=show] button:has-text('Stop showing')")
        await page.get_by_text("Screen sharing has ended.").wait_for(timeout=10000)
        assert await page.locator(".vr-viewer").count() == 0

        await bar.get_by_role("button", name="Stop sharing").click()
        await ben.wait_text(f"{panel} .share-note", "The patron stopped sharing")
        trace = await asyncio.to_thread(share_trace, stack, chat_id)
        assert [(k, d.get("share_kind")) for k, d in trace] == [
            ("share_requested", "page"), ("share_started", "page"), ("page_pushed", None),
            ("share_requested", "show"), ("share_started", "show"), ("share_ended", "show"), ("share_ended", "page")]
        assert "page1" not in json.dumps(trace), "the trace keeps no address"
        assert patron.problems == [] and ben.errors == []


async def test_a_share_that_cannot_connect_is_told_to_both_within_15_s_with_the_screenshot_offered(
        stack: Stack) -> None:
    async with chromium(*FAKE_CAPTURE) as browser:
        # web3's shares may only use a TURN relay that never answers: nothing can connect.
        cy = await open_console(browser, stack.base("web3"), "cy", bypass_csp=True)
        patron = await patron_page(browser, f"{stack.base('web1')}/ask/share/gamma/")
        page = patron.page
        chat_id = await ask(page, "My screen shows an error")
        panel = await accept(cy, chat_id)
        lib = cy.page
        await lib.click(f"{panel} .do-show")
        await page.get_by_role("button", name="Watch").click()
        started = time.monotonic()
        failed = page.get_by_role("alert").filter(has_text="could not connect")
        await failed.wait_for(timeout=15000)
        await cy.wait_text(f"{panel} .share-note[role=alert]", "could not connect", timeout=15000)
        assert time.monotonic() - started < 15
        # The suggestion is the chat's own upload: the screenshot reaches the librarian as a file.
        async with page.expect_file_chooser() as chooser:
            await failed.get_by_role("button", name="Send a screenshot").click()
        await (await chooser.value).set_files(files=[{"name": "screen.png", "mimeType": "image/png", "buffer": PNG}])
        await cy.wait_text(f"{panel} .log", "screen.png", timeout=15000)
        trace = await asyncio.to_thread(share_trace, stack, chat_id)
        assert trace[-1][0] == "share_ended" and trace[-1][1]["reason"] == "failed"
        assert patron.problems == [] and cy.errors == []
