"""The staff console in headless Chromium against the production stack (deploy/Procfile processes).

Patrons speak the wire protocol (tests.live.stack), as the patron pages or any third-party client
would; librarians use the console as people do: sign in, click, type, press Enter.
Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots is where the docs take them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.live.stack import PASSWORD, Socket, Stack, patron, start_chat, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

# Debian's Chromium under Playwright; `playwright install` is never run.
POLICY = "Library cards are **free** for residents.\n\n| Item | Loan |\n|---|---|\n| Books | 3 weeks |\n"


def _world(slug: str, staff: list[dict[str, Any]], **settings: int) -> dict[str, Any]:
    libraries = [
        {"slug": "tampa", "policy": POLICY, "policy_reviewed": "2020-01-15",
         "key_links": [{"title": "Catalog", "url": "https://catalog.example.org"}]},
        {"slug": "orlando", "policy": "Orlando cards cost $5 a year.", "policy_reviewed": time.strftime("%Y-%m-%d")},
    ]
    return world(slug, libraries, staff, **settings)


WORLDS = [
    _world("conv", [{"username": "ana", "library": "tampa"}], reconnect_grace=30),
    _world("race", [{"username": "rae", "library": "tampa"}, {"username": "roy", "library": "tampa"}]),
    _world("reload", [{"username": "rita", "library": "tampa"}], reconnect_grace=30),
    _world("xfer", [{"username": "tess", "library": "tampa"}, {"username": "otis", "library": "orlando"}],
           reconnect_grace=30),
    _world("refer", [{"username": "fay", "library": "tampa"},
                     {"username": "olaf", "library": "orlando", "queues": ["statewide"]}], reconnect_grace=30),
    _world("idle", [{"username": "ida", "library": "tampa"}]),
    # Short times through the consortium's own settings: warned 30 s before the end, staying on for 60 s.
    _world("shift", [{"username": "sol", "library": "tampa"}], shift_warning=30, shift_extension=60),
    _world("xss", [{"username": "xena", "library": "tampa"}], reconnect_grace=30),
    world("direct", [{"slug": "tampa", "mode": "direct"}], [{"username": "dora", "library": "tampa"}],
          offer_timeout=6, local_timeout=600),
    _world("notify", [{"username": "nina", "library": "tampa"}]),
    _world("multi", [{"username": "mia", "library": "tampa"}], reconnect_grace=30),
    _world("a11y", [{"username": "ally", "library": "tampa", "queues": ["statewide"]}], reconnect_grace=30),
]


@pytest.fixture(scope="module")
def console_stack() -> Iterator[Stack]:
    s = Stack.prepare(WORLDS)
    # Canned responses are kept in the admin; the consortium file does not carry them.
    s.sql("INSERT INTO routing_cannedresponse (consortium_id, library_id, title, body) "
          "SELECT id, NULL, 'Greeting', 'Hello {patron}, this is {librarian} at {library}.' "
          "FROM consortium_consortium WHERE slug = 'conv'")
    with s.running():
        yield s


def shot(page: Any, name: str) -> Any:
    folder = os.environ.get("VR_SCREENSHOTS_DIR")
    if not folder:
        return asyncio.sleep(0)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return page.screenshot(path=str(Path(folder) / f"console-{name}.png"))


class Console:
    """One librarian's console in its own browser context (its own cookies)."""

    def __init__(self, page: Any, errors: list[str]) -> None:
        self.page = page
        self.errors = errors

    async def available(self) -> None:
        await self._presence("true")

    async def away(self) -> None:
        await self._presence("false")

    async def _presence(self, pressed: str) -> None:
        # The button shows the server's word from the hello on (open_console waits for it). A console
        # opened again within the reconnect grace of one just closed (the test before, often) keeps the
        # status it had: a click then would turn it the other way.
        if await self.page.get_attribute("#presence", "aria-pressed") != pressed:
            await self.page.click("#presence")
        await self.page.wait_for_selector(f'#presence[aria-pressed="{pressed}"]', timeout=10000)

    def panel(self, chat_id: str) -> str:
        return f"#panel-{chat_id}"

    async def offer(self, chat_id: str, timeout: float = 15000) -> Any:
        return await self.page.wait_for_selector(f'.offer[data-chat="{chat_id}"]', timeout=timeout)

    async def seqs(self, chat_id: str) -> list[int]:
        return list(await self.page.eval_on_selector_all(
            f"{self.panel(chat_id)} .log .msg[data-seq]", "els => els.map(e => Number(e.dataset.seq))"))

    async def send(self, chat_id: str, text: str) -> None:
        box = f"{self.panel(chat_id)} textarea"
        await self.page.fill(box, text)
        await self.page.press(box, "Enter")

    async def wait_text(self, selector: str, text: str, timeout: float = 10000) -> None:
        await self.page.wait_for_function(
            "([sel, text]) => [...document.querySelectorAll(sel)]"
            ".some(e => e.textContent.toLowerCase().includes(text.toLowerCase()))",
            arg=[selector, text], timeout=timeout)


async def open_console(browser: Any, base: str, username: str, *, query: str = "",
                       available: bool = True, bypass_csp: bool = False) -> Console:
    # bypass_csp only so that axe-core can be injected: the pages' policy admits no inline script.
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=bypass_csp)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await sign_in(page, base, username, PASSWORD)
    if query:
        await page.goto(f"{base}/staff/{query}")
    await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
    console = Console(page, errors)
    if available:
        await console.available()
    return console


def db_seq(stack: Stack, chat_id: str) -> int:
    return int(stack.sql(f"SELECT last_seq FROM routing_chat WHERE id = '{chat_id}'"))


def mails(stack: Stack) -> str:
    folder = stack.workdir / "mail"
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("*"))) if folder.exists() else ""


async def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def bodies(sock: Socket) -> list[str]:
    return [f["body"] for f in sock.seen if f.get("type") == "message"]


# --- scenarios ------------------------------------------------------------------------------------


async def test_a_whole_conversation(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        ana = await open_console(browser, base, "ana")
        page = ana.page
        chat = await start_chat(base, "conv", "Do you have museum passes for the weekend?", library="tampa",
                                name="Pat", email="pat@example.org")
        pat = await patron(base, chat)
        offer = await ana.offer(chat["id"])
        assert await offer.get_attribute("data-kind") == "local"
        text = await offer.inner_text()
        assert "Tampa Library" in text and "museum passes" in text and "waiting" in text
        await shot(page, "offer")
        await page.click(f'.offer[data-chat="{chat["id"]}"] .accept')
        panel = ana.panel(chat["id"])
        await ana.wait_text(f"{panel} .log", "museum passes")
        await pat.expect("state", state="active", timeout=10)

        # The home library beside the chat: policy, today's hours, key links, stale-policy warning.
        await page.wait_for_selector(f"{panel} .library .policy strong", timeout=10000)
        side = await page.inner_text(f"{panel} .side")
        assert "Policy may be out of date" in side and "15 Jan 2020" in side
        assert "00:00-24:00" in side and "Catalog" in side
        link = page.locator(f'{panel} .side a[href="https://catalog.example.org"]')
        assert await link.get_attribute("rel") == "noopener noreferrer"

        # Typing both ways.
        await pat.send({"type": "typing"})
        await ana.wait_text(f"{panel} .typing", "is typing")
        await page.type(f"{panel} textarea", "Let me ")
        await pat.expect("typing", timeout=10)

        # Shift+Enter is a new line, Enter sends; the patron gets it once.
        await page.keyboard.press("Shift+Enter")
        await page.type(f"{panel} textarea", "check.")
        assert await page.input_value(f"{panel} textarea") == "Let me \ncheck."
        await page.press(f"{panel} textarea", "Enter")
        await pat.expect("message", body="Let me \ncheck.", timeout=10)
        assert await page.input_value(f"{panel} textarea") == ""

        # A canned response, with its placeholders filled in for this chat.
        await page.select_option(f"{panel} select.canned", label="Greeting (English)")
        assert await page.input_value(f"{panel} textarea") == "Hello Pat, this is ANA at Tampa Library."
        await page.press(f"{panel} textarea", "Enter")
        await pat.expect("message", body="Hello Pat, this is ANA at Tampa Library.", timeout=10)

        # An internal note: staff see it, the patron never does.
        await page.check(f"{panel} input.internal")
        await ana.send(chat["id"], "Patron sounds like a teacher: offer the class pass.")
        await ana.wait_text(f'{panel} .msg[data-internal="true"][data-seq]', "class pass")

        # A link from the patron is clickable, safely.
        await pat.send({"type": "message", "body": "Is it https://example.org/passes?x=1, or javascript:alert(1)",
                        "client_id": "p-link"})
        anchor = await page.wait_for_selector(f'{panel} .msg a[href="https://example.org/passes?x=1"]')
        assert await anchor.get_attribute("rel") == "noopener noreferrer"
        assert await anchor.get_attribute("target") == "_blank"
        assert await page.locator(f'{panel} .msg a[href^="javascript"]').count() == 0
        await ana.send(chat["id"], "Yes, that page.")
        await pat.expect("message", body="Yes, that page.", timeout=10)

        # A file from the librarian (checked by content on the server), shown as a link on both sides.
        await page.set_input_files(f"{panel} input.attach-input", files=[
            {"name": "passes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% a tiny test file\n"}])
        sent = await pat.expect(lambda f: f.get("type") == "message" and bool(f.get("file")), timeout=10)
        assert sent["file"]["name"] == "passes.pdf" and sent["file"]["type"] == "application/pdf"
        file_link = await page.wait_for_selector(f'{panel} .msg[data-seq] a.file[href="{sent["file"]["url"]}"]')
        assert await file_link.get_attribute("rel") == "noopener noreferrer"
        await page.set_input_files(f"{panel} input.attach-input", files=[
            {"name": "evil.html", "mimeType": "text/html", "buffer": b"<script>alert(1)</script>"}])
        await ana.wait_text("#notices", "evil.html was not sent")
        await shot(page, "chat")

        # End with a classification.
        await page.click(f"{panel} .do-end")
        await page.fill("#end-subjects", "museum passes, Events")
        await page.check('input[name="end-read"][value="2"]')
        await page.select_option("#end-outcome", "answered")
        await page.click("#end-ok")
        await pat.expect("state", state="ended", timeout=10)
        await page.wait_for_selector(panel, state="detached", timeout=10000)  # classified: the tab closes
        await wait_for(lambda: stack.sql(f"SELECT read_scale FROM routing_chat WHERE id = '{chat['id']}'") == "2",
                       what="the classification")
        row = stack.sql(f"SELECT subjects::text || '|' || outcome FROM routing_chat WHERE id = '{chat['id']}'")
        assert row == '["museum passes", "events"]|answered'
        assert not any("class pass" in b for b in bodies(pat))
        assert ana.errors == []
        await pat.close()


async def test_two_librarians_accept_at_once(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        rae = await open_console(browser, base, "rae")
        roy = await open_console(browser, base, "roy")
        chat = await start_chat(base, "race", "Who wins?", library="tampa", name="Sam")
        pat = await patron(base, chat)
        await rae.offer(chat["id"])
        await roy.offer(chat["id"])
        selector = f'.offer[data-chat="{chat["id"]}"] .accept'
        # Both buttons pressed at the same instant: Playwright's click first waits for the button to be
        # stable and hit-testable, which on a busy machine let one accept settle the race before the
        # other console's click, whose button was then gone (withdrawn) and the click timed out.
        await asyncio.gather(*(c.page.eval_on_selector(selector, "button => button.click()") for c in (rae, roy)))
        winners = []
        for console in (rae, roy):
            await console.page.wait_for_selector(f'.offer[data-chat="{chat["id"]}"]', state="detached",
                                                 timeout=10000)
        await asyncio.sleep(1.0)
        for console in (rae, roy):
            if await console.page.locator(console.panel(chat["id"])).count():
                winners.append(console)
        assert len(winners) == 1, "exactly one console holds the chat"
        loser = roy if winners[0] is rae else rae
        await loser.wait_text("#notices", "another librarian")
        assert await loser.page.locator(".chat").count() == 0
        holder = stack.sql(f"SELECT u.username FROM routing_chat c JOIN libraries_staffprofile s "
                           f"ON s.id = c.librarian_id JOIN auth_user u ON u.id = s.user_id "
                           f"WHERE c.id = '{chat['id']}'")
        assert holder == ("rae" if winners[0] is rae else "roy")
        assert rae.errors == [] and roy.errors == []
        await pat.close()


async def test_reload_and_reconnect_lose_and_double_nothing(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        rita = await open_console(browser, base, "rita")
        page = rita.page
        chat = await start_chat(base, "reload", "Where are the tax forms?", library="tampa", name="Lee")
        cid = chat["id"]
        pat = await patron(base, chat)
        await rita.offer(cid)
        await page.click(f'.offer[data-chat="{cid}"] .accept')
        await rita.wait_text(f"{rita.panel(cid)} .log", "tax forms")
        for i in range(3):
            await pat.send({"type": "message", "body": f"before reload {i}", "client_id": f"b{i}"})
        await rita.send(cid, "Checking the shelf.")
        await pat.expect("message", body="Checking the shelf.", timeout=10)

        # Reload while the patron keeps writing.
        reload = asyncio.ensure_future(page.reload())
        for i in range(3):
            await pat.send({"type": "message", "body": f"during reload {i}", "client_id": f"d{i}"})
            await asyncio.sleep(0.15)
        await reload
        await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
        await rita.wait_text(f"{rita.panel(cid)} .log", "during reload 2", timeout=15000)
        assert await page.get_attribute("#presence", "aria-pressed") == "true"  # kept within the grace
        assert await rita.seqs(cid) == list(range(1, db_seq(stack, cid) + 1))

        # A dropped connection: the patron writes meanwhile, the librarian types into the outbox.
        await page.evaluate("window.vrConsole.socket.drop()")
        await pat.send({"type": "message", "body": "while you were away", "client_id": "w1"})
        await rita.send(cid, "Sent while offline.")
        await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
        await rita.wait_text(f"{rita.panel(cid)} .log", "while you were away", timeout=15000)
        await pat.expect("message", body="Sent while offline.", timeout=15)
        await rita.wait_text(f"{rita.panel(cid)} .msg[data-seq]", "Sent while offline.")
        await rita.send(cid, "And we go on.")
        await pat.expect("message", body="And we go on.", timeout=10)
        await asyncio.sleep(0.5)
        assert await rita.seqs(cid) == list(range(1, db_seq(stack, cid) + 1))
        assert await page.locator(f'{rita.panel(cid)} .msg[data-pending="true"]').count() == 0
        assert bodies(pat).count("Sent while offline.") == 1
        assert rita.errors == []
        await pat.close()


async def test_transfer_with_a_note_only_the_receiver_sees(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    note = "Wants the Orlando archive; already checked the catalog."
    async with chromium() as browser:
        tess = await open_console(browser, base, "tess")
        otis = await open_console(browser, base, "otis")
        chat = await start_chat(base, "xfer", "Old newspapers from 1920?", library="tampa", name="Kim")
        cid = chat["id"]
        pat = await patron(base, chat)
        await tess.offer(cid)
        await tess.page.click(f'.offer[data-chat="{cid}"] .accept')
        await tess.wait_text(f"{tess.panel(cid)} .log", "newspapers")
        await tess.page.click(f"{tess.panel(cid)} .do-transfer")
        await tess.page.wait_for_selector('#transfer-to option[value="librarian:otis"]', state="attached")
        assert "present" in await tess.page.inner_text("#transfer-who")
        await tess.page.select_option("#transfer-to", "librarian:otis")
        await tess.page.fill("#transfer-note", note)
        await shot(tess.page, "transfer")
        await tess.page.click('#dlg-transfer button[value="ok"]')
        await tess.wait_text(f"{tess.panel(cid)} .ended-text", "You transferred this chat")

        offer = await otis.offer(cid)
        assert await offer.get_attribute("data-kind") == "transfer"
        assert note in await offer.inner_text()
        await otis.page.click(f'.offer[data-chat="{cid}"] .accept')
        await otis.wait_text(f"{otis.panel(cid)} .transfer-note", note)
        await otis.wait_text(f"{otis.panel(cid)} .log", "newspapers")  # the earlier conversation came along
        await otis.send(cid, "Hello, I have the archive here.")
        await pat.expect("message", body="Hello, I have the archive here.", timeout=10)
        assert note not in json.dumps(pat.seen), "the patron never sees the transfer note"
        assert tess.errors == [] and otis.errors == []
        await pat.close()


async def test_referral_reaches_the_home_librarys_follow_ups_and_mails(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        olaf = await open_console(browser, base, "olaf")  # Orlando, serving the statewide queue
        chat = await start_chat(base, "refer", "Property deeds from 1890 for Elm Street?", library="tampa",
                                name="Dee", email="dee@example.org")
        cid = chat["id"]
        pat = await patron(base, chat)
        offer = await olaf.offer(cid, timeout=20000)  # nobody at Tampa: the statewide step reaches Olaf
        assert await offer.get_attribute("data-kind") == "consortium"
        await olaf.page.click(f'.offer[data-chat="{cid}"] .accept')
        await olaf.wait_text(f"{olaf.panel(cid)} .log", "deeds")
        await olaf.page.click(f"{olaf.panel(cid)} .do-refer")
        assert await olaf.page.input_value("#refer-to") == "tampa"  # the home library by default
        await olaf.page.fill("#refer-note", "Needs the county archive; Tampa has the microfilm.")
        await olaf.page.click('#dlg-refer button[value="ok"]')
        await olaf.wait_text("#notices", "Follow-up ticket created")
        await wait_for(lambda: "dee@example.org" in mails(stack), what="the confirmation mail")
        await olaf.page.click(f"{olaf.panel(cid)} .do-end")
        assert await olaf.page.input_value("#end-outcome") == "referred"
        await olaf.page.click("#end-ok")
        await pat.expect("state", state="ended", timeout=10)

        fay = await open_console(browser, base, "fay", available=False)  # Tampa's librarian
        await fay.page.click("text=Follow-ups")
        await fay.page.wait_for_selector('[data-testid="tickets"]')
        listing = await fay.page.inner_text('[data-testid="tickets"]')
        assert "Property deeds from 1890" in listing and "referred by OLAF" in listing
        await fay.page.click("text=Property deeds from 1890")
        assert "Tampa has the microfilm" in await fay.page.inner_text("main")
        await shot(fay.page, "ticket")
        await fay.page.click('button[value="claim"]')
        await fay.page.fill("#answer", "The deeds are on microfilm reel 12; we scanned them for you.")
        await fay.page.click('button[value="answer"]')
        await fay.wait_text('[data-testid="ticket-status"]', "Answered")
        await wait_for(lambda: "microfilm reel 12" in mails(stack), what="the answer mail")
        assert re.search(r"To: dee@example.org", mails(stack))
        # Olaf's library is Orlando: Tampa's follow-ups are not in his list.
        await olaf.page.goto(f"{base}/staff/tickets/?status=all")
        assert "Property deeds" not in await olaf.page.inner_text("main")
        assert olaf.errors == [] and fay.errors == []
        await pat.close()


async def test_idle_console_sets_itself_away(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        ida = await open_console(browser, base, "ida", query="?idle=3")
        await ida.page.wait_for_selector('#presence[aria-pressed="false"]', timeout=15000)
        await ida.wait_text("#notices", "without activity")
        status = stack.sql("SELECT p.status FROM routing_librarianpresence p JOIN libraries_staffprofile s "
                           "ON s.id = p.librarian_id JOIN auth_user u ON u.id = s.user_id WHERE u.username = 'ida'")
        assert status == "away"
        # Away means no offers: a new chat finds nobody (unstaffed) rather than waiting on an empty desk.
        chat = await start_chat(base, "idle", "Anyone there?", library="tampa")
        assert chat["state"] == "unstaffed"
        await ida.available()
        assert ida.errors == []


def _rota_shift_ending_soon(stack: Stack, username: str, consortium: str) -> datetime:
    """Put the librarian on a rota shift (statewide) that ends at the next whole minute at least 35 s away,
    in New York time; when that minute is just after midnight, a shift before midnight touches it."""
    zone = ZoneInfo("America/New_York")
    now = datetime.now(zone)
    end = (now + timedelta(seconds=35 + 59)).replace(second=0, microsecond=0)
    librarian = stack.sql(f"SELECT s.id FROM libraries_staffprofile s JOIN auth_user u ON u.id = s.user_id "
                          f"WHERE u.username = '{username}'")
    queue = stack.sql(f"SELECT q.id FROM libraries_queue q JOIN consortium_consortium c ON c.id = q.consortium_id "
                      f"WHERE c.slug = '{consortium}' AND q.slug = 'statewide'")
    last = end - timedelta(minutes=1)  # a minute of the shift, for its local date
    pieces = [(last.date(), max(0, last.hour * 60 + last.minute - 30), last.hour * 60 + last.minute + 1)]
    if pieces[0][1] == 0 and now.date() != last.date():
        pieces.append((now.date(), max(0, now.hour * 60 + now.minute - 30), 1440))
    for day, start_minute, end_minute in pieces:
        shift = stack.sql(f"INSERT INTO libraries_shift (queue_id, weekday, start_minute, end_minute, min_librarians) "
                          f"VALUES ({queue}, {day.weekday()}, {start_minute}, {end_minute}, 1) RETURNING id")
        stack.sql(f"INSERT INTO libraries_shiftassignment (shift_id, librarian_id, assigned_on) "
                  f"VALUES ({shift.splitlines()[0]}, {librarian}, '{day.isoformat()}')")
    return end


async def test_the_console_is_warned_before_the_shift_ends_can_stay_on_and_goes_away_keeping_its_chat(
        console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    end = _rota_shift_ending_soon(stack, "sol", "shift")
    presence_of_sol = ("SELECT p.status || ' ' || p.away_reason FROM routing_librarianpresence p "
                       "JOIN libraries_staffprofile s ON s.id = p.librarian_id JOIN auth_user u ON u.id = s.user_id "
                       "WHERE u.username = 'sol'")
    async with chromium() as browser:
        sol = await open_console(browser, base, "sol")
        page = sol.page
        await page.wait_for_selector("#shift-end:not([hidden])", timeout=10000)
        assert (await page.inner_text("#shift-end")).startswith("Shift ends")
        shift_end = stack.sql("SELECT p.shift_end FROM routing_librarianpresence p JOIN libraries_staffprofile s "
                              "ON s.id = p.librarian_id JOIN auth_user u ON u.id = s.user_id WHERE u.username = 'sol'")
        assert datetime.fromisoformat(shift_end.replace(" ", "T")) == end
        chat = await start_chat(base, "shift", "Do you keep old phone books?", library="tampa", name="Pat")
        pat = await patron(base, chat)
        await sol.offer(chat["id"])
        await page.click(f'.offer[data-chat="{chat["id"]}"] .accept')
        await page.wait_for_selector(f"{sol.panel(chat['id'])} textarea", timeout=10000)

        # 30 s before the end the server warns; the librarian covering overtime stays on.
        stay = '#notices [data-key="shift"] button.primary'
        await page.wait_for_selector(stay, timeout=120000)
        assert "Your shift ends at" in await page.inner_text('#notices [data-key="shift"]')
        assert await page.inner_text(stay) == "I'm staying on (1 more minute)"
        assert await page.get_attribute("#shift-end", "data-warning") == "true"
        await page.click(stay)
        await page.wait_for_selector('#notices [data-key="shift"]', state="detached", timeout=10000)
        assert stack.sql(presence_of_sol) == "available"
        # Nobody stays on a second time: warned again, then set away at the new end, with the reason.
        await page.wait_for_selector(stay, timeout=60000)
        await page.wait_for_selector('#presence[aria-pressed="false"]', timeout=60000)
        await sol.wait_text("#notices", "end of your shift")
        assert await page.is_hidden("#shift-end")
        assert await page.locator('#notices [data-key="shift"]').count() == 0
        assert stack.sql(presence_of_sol) == "away shift_end"
        # The chat stays with the librarian, both ways.
        await pat.send({"type": "message", "body": "Still there?", "client_id": "s1"})
        await sol.wait_text(f"{sol.panel(chat['id'])} .log", "Still there?")
        await sol.send(chat["id"], "Yes, still here.")
        await pat.expect(lambda f: f.get("type") == "message" and f.get("body") == "Yes, still here.", timeout=15)
        assert stack.sql(f"SELECT state FROM routing_chat WHERE id = '{chat['id']}'") == "active"
        assert sol.errors == []
        await pat.close()


async def test_a_patrons_markup_is_shown_as_text(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    payload = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b>'
    async with chromium() as browser:
        xena = await open_console(browser, base, "xena")
        chat = await start_chat(base, "xss", payload, library="tampa", name="<i>Mallory</i>")
        cid = chat["id"]
        pat = await patron(base, chat)
        offer = await xena.offer(cid)
        assert payload in await offer.inner_text()
        await xena.page.click(f'.offer[data-chat="{cid}"] .accept')
        await pat.send({"type": "message", "body": payload, "client_id": "x1"})
        # After `assigned` the live seq 3 may come before the join's history (the question is seq 1);
        # the console puts each line in its place by seq.
        await xena.page.wait_for_selector(f"{xena.panel(cid)} .msg[data-seq='3']")
        await xena.page.wait_for_selector(f"{xena.panel(cid)} .msg[data-seq='1']")
        texts = await xena.page.eval_on_selector_all(f"{xena.panel(cid)} .msg[data-sender='patron'] .body",
                                                     "els => els.map(e => e.textContent)")
        assert texts == [payload, payload]
        assert await xena.page.locator(f"{xena.panel(cid)} .log script, {xena.panel(cid)} .log img, "
                                       f"{xena.panel(cid)} .log b").count() == 0
        assert await xena.page.evaluate("window.__pwned") is None
        assert "<i>Mallory</i>" in await xena.page.inner_text(f"{xena.panel(cid)} .patron-name")
        assert xena.errors == []
        await pat.close()


async def test_accessibility_has_no_serious_violations(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        ally = await open_console(browser, base, "ally", bypass_csp=True)
        first = await start_chat(base, "a11y", "Can I renew a book online?", library="tampa", name="Ray")
        pats = [await patron(base, first)]
        await ally.offer(first["id"])
        await ally.page.click(f'.offer[data-chat="{first["id"]}"] .accept')
        await ally.wait_text(f"{ally.panel(first['id'])} .log", "renew")
        await pats[0].send({"type": "message", "body": "My card number is on the back, right?", "client_id": "a"})
        second = await start_chat(base, "a11y", "Do you have Spanish story time?", library="orlando")
        pats.append(await patron(base, second))
        await ally.offer(second["id"], timeout=20000)
        await ally.page.wait_for_selector(f"{ally.panel(first['id'])} .library .policy", timeout=10000)
        await shot(ally.page, "overview")
        problems = await axe_violations(ally.page)
        assert problems == [], json.dumps([(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                                           for v in problems], indent=1)
        for path in ("/staff/tickets/", "/staff/history/", "/staff/libraries/tampa/policy?page=1"):
            await ally.page.goto(base + path)
            problems = await axe_violations(ally.page)
            assert problems == [], (path, [(v["id"], v["impact"]) for v in problems])
        for p in pats:
            await p.close()


async def test_direct_offer_counts_down_and_an_expired_offer_sets_away(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        dora = await open_console(browser, base, "dora")
        chat = await start_chat(base, "direct", "Is the library open on Monday?", library="tampa")
        pat = await patron(base, chat)
        offer = await dora.offer(chat["id"])
        assert await offer.get_attribute("data-mode") == "direct"
        countdown = dora.page.locator(f'.offer[data-chat="{chat["id"]}"] .countdown')
        first = await countdown.inner_text()
        assert first.startswith("accept within 0:0"), first
        await asyncio.sleep(2.2)
        assert await countdown.inner_text() < first  # it ticks down
        # Nobody accepts: the offer expires, the console says so and the librarian is set away.
        await dora.page.wait_for_selector(f'.offer[data-chat="{chat["id"]}"]', state="detached", timeout=15000)
        await dora.page.wait_for_selector('#presence[aria-pressed="false"]', timeout=10000)
        await dora.wait_text("#notices", "expired")
        assert dora.errors == []
        await pat.close()


async def test_several_chats_in_tabs_with_unread_counts(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        mia = await open_console(browser, base, "mia")
        page = mia.page
        chats, pats = [], []
        for question in ("First question about maps", "Second question about taxes"):
            chat = await start_chat(base, "multi", question, library="tampa", name=question.split()[0])
            chats.append(chat["id"])
            pats.append(await patron(base, chat))
            await mia.offer(chat["id"])
            await page.click(f'.offer[data-chat="{chat["id"]}"] .accept')
            await page.wait_for_selector(f"#tab-{chat['id']}")
        first, second = chats
        assert await page.inner_text("#chat-count") == "2 of 3"
        # The chat accepted last is shown; the first one's tab counts what arrives meanwhile.
        assert await page.get_attribute(f"#tab-{second}", "aria-selected") == "true"
        await pats[0].send({"type": "message", "body": "Are you there?", "client_id": "u1"})
        await pats[0].send({"type": "message", "body": "Hello?", "client_id": "u2"})
        await page.wait_for_selector(f'#tab-{first} .unread[data-n="2"]', timeout=10000)
        assert "2 unread" in (await page.text_content(f"#tab-{first}") or "")
        assert "unread" in await page.title()
        # Keyboard: arrow keys move between tabs, and opening a tab clears its count.
        await page.focus(f"#tab-{second}")
        await page.keyboard.press("ArrowLeft")
        assert await page.get_attribute(f"#tab-{first}", "aria-selected") == "true"
        await page.wait_for_selector(f'#tab-{first} .unread[data-n="0"]', state="attached")
        assert await page.is_visible(f"#panel-{first}") and not await page.is_visible(f"#panel-{second}")
        await mia.send(first, "Yes, here.")
        await pats[0].expect("message", body="Yes, here.", timeout=10)
        assert all(f.get("body") != "Yes, here." for f in pats[1].seen)
        # The patron ends one chat: its tab stays, marked ended, until classified or closed.
        await pats[1].send({"type": "end"})
        await page.wait_for_selector(f'#tab-{second}[data-ended="true"]', timeout=10000)
        assert await page.inner_text("#chat-count") == "1 of 3"
        await page.click(f"#tab-{second}")
        await page.click(f"#panel-{second} .do-close")
        await page.wait_for_selector(f"#tab-{second}", state="detached")
        assert mia.errors == []
        for p in pats:
            await p.close()


# Records notifications and beeps instead of showing or playing them; the page is "in the background".
RECORDER = """
window.__notes = []; window.__beeps = 0;
class FakeNotification {
  constructor(title, options) { window.__notes.push({title, body: options && options.body}); }
  close() {}
  static requestPermission() { return Promise.resolve("granted"); }
}
FakeNotification.permission = "granted";
window.Notification = FakeNotification;
class FakeAudio {
  constructor() { this.currentTime = 0; this.destination = {}; }
  createOscillator() { return {frequency: {}, connect: (g) => g, start: () => { window.__beeps += 1; }, stop() {}}; }
  createGain() { return {gain: {setValueAtTime() {}, exponentialRampToValueAtTime() {}}, connect: (d) => d}; }
}
window.AudioContext = FakeAudio;
document.hasFocus = () => false;
"""


async def test_sound_and_desktop_notifications_are_opt_in(console_stack: Stack) -> None:
    stack = console_stack
    base = stack.base()
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(RECORDER)
        page = await context.new_page()
        nina = Console(page, [])
        page.on("pageerror", lambda e: nina.errors.append(str(e)))
        await sign_in(page, base, "nina", PASSWORD)
        await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
        await nina.available()
        quiet = await start_chat(base, "notify", "A quiet question", library="tampa")
        pats = [await patron(base, quiet)]
        await nina.offer(quiet["id"])
        assert await page.evaluate("[window.__notes.length, window.__beeps]") == [0, 0]  # off until chosen
        await page.click(".settings summary")
        await page.check("#opt-sound")
        await page.check("#opt-desktop")
        loud = await start_chat(base, "notify", "Do you have the new atlas?", library="tampa")
        pats.append(await patron(base, loud))
        await nina.offer(loud["id"])
        await page.wait_for_function("window.__notes.length === 1 && window.__beeps > 0")
        note = await page.evaluate("window.__notes[0]")
        assert note["title"] == "A patron is waiting" and "new atlas" in note["body"]
        await page.reload()  # the choice is remembered by this browser
        await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
        assert await page.is_checked("#opt-sound") and await page.is_checked("#opt-desktop")
        assert nina.errors == []
        for p in pats:
            await p.close()
