"""Canned responses in headless Chromium against the production stack: the `/` type-ahead of the reply
box in two chats open at once, one in Spanish and one in English, and the page that keeps the sets.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots is where the docs take them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.browser.chromium import axe_violations, chromium
from tests.browser.test_console import open_console, shot
from tests.live.stack import Stack, patron, start_chat, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

WORLDS = [world("canned", [{"slug": "tampa"}], [{"username": "cal", "library": "tampa", "languages": ["en", "es"]}],
                reconnect_grace=30)]

SPANISH = "Hola Paz, Tampa Library atiende hoy {hours}. ¿En qué le ayudo?"
ENGLISH = "Hi Pat, Tampa Library answers chat today {hours}. How can I help?"
HOURS = "00:00-24:00"  # the world's libraries are always open


@pytest.fixture(scope="module")
def canned_stack() -> Iterator[Stack]:
    s = Stack.prepare(WORLDS)
    # The consortium's set, in both languages; cal's own, in English only.
    s.sql("INSERT INTO routing_cannedresponse (consortium_id, library_id, owner_id, title, body, body_es) "
          "SELECT id, NULL, NULL, 'Hours today', "
          "'Hi {patron}, {library} answers chat today {hours_today}. How can I help?', "
          "'Hola {patron}, {library} atiende hoy {hours_today}. ¿En qué le ayudo?' "
          "FROM consortium_consortium WHERE slug = 'canned'")
    s.sql("INSERT INTO routing_cannedresponse (consortium_id, library_id, owner_id, title, body, body_es) "
          "SELECT l.consortium_id, NULL, p.id, 'Renewals', 'Renew at {library} online, {patron}. {typo}', '' "
          "FROM libraries_staffprofile p JOIN auth_user u ON u.id = p.user_id "
          "JOIN libraries_library l ON l.id = p.library_id WHERE u.username = 'cal'")
    with s.running():
        yield s


async def test_slash_opens_a_list_and_inserts_the_response_filled_in_the_chats_language(canned_stack: Stack) -> None:
    base = canned_stack.base()
    async with chromium() as browser:
        cal = await open_console(browser, base, "cal", bypass_csp=True)
        page = cal.page
        chats, pats = [], []
        for question, name, language in (("¿Tienen pases de museo?", "Paz", "es"), ("Museum passes?", "Pat", "en")):
            chat = await start_chat(base, "canned", question, library="tampa", name=name, language=language)
            chats.append(chat["id"])
            pats.append(await patron(base, chat))
            await cal.offer(chat["id"])
            await page.click(f'.offer[data-chat="{chat["id"]}"] .accept')
            await page.wait_for_selector(f"#tab-{chat['id']}")
        spanish, english = chats

        # The Spanish chat: "/" then words narrow the list; the Spanish text comes first and is chosen.
        await page.click(f"#tab-{spanish}")
        box = f"#panel-{spanish} textarea"
        listbox = f"#canned-list-{spanish}"
        await page.wait_for_function(
            "id => document.querySelector(`#panel-${id} select.canned`).options.length > 1", arg=spanish)
        await page.click(box)
        await page.keyboard.type("/")
        await page.wait_for_selector(f"{listbox} [role=option]")
        assert await page.get_attribute(box, "role") == "combobox"
        assert await page.get_attribute(box, "aria-expanded") == "true"
        assert await page.get_attribute(box, "aria-controls") == f"canned-list-{spanish}"
        # Everything offered: the consortium's in both languages, cal's own in English; Spanish first.
        langs = await page.eval_on_selector_all(f"{listbox} [role=option]", "els => els.map(e => e.lang)")
        assert langs == ["es", "en", "en"]
        await page.keyboard.type("hoy")
        await page.wait_for_function(
            "sel => document.querySelectorAll(`${sel} [role=option]`).length === 1", arg=listbox)
        first = page.locator(f"{listbox} [role=option]").first
        assert await first.get_attribute("aria-selected") == "true"
        assert await page.get_attribute(box, "aria-activedescendant") == await first.get_attribute("id")
        assert "1 canned response" in (await page.text_content(f"#panel-{spanish} .canned-status") or "")
        await shot(page, "canned-typeahead")
        problems = await axe_violations(page)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        await page.keyboard.press("Enter")  # inserts, does not send
        assert await page.input_value(box) == SPANISH.format(hours=HOURS)
        assert await page.is_hidden(listbox)
        assert await page.get_attribute(box, "aria-expanded") == "false"
        await page.keyboard.press("Enter")  # now the reply goes
        await pats[0].expect("message", body=SPANISH.format(hours=HOURS), timeout=10)

        # The English chat, open beside it: its own list, English first; arrows move, Escape closes.
        await page.click(f"#tab-{english}")
        box = f"#panel-{english} textarea"
        listbox = f"#canned-list-{english}"
        await page.click(box)
        await page.keyboard.type("/nothing like this")
        await page.wait_for_selector(f"{listbox} .c-none")
        await page.keyboard.press("Enter")  # nothing chosen: the list closes and "/words" is not sent
        assert await page.input_value(box) == "/nothing like this"
        assert await page.is_hidden(listbox)
        await page.fill(box, "")
        await page.keyboard.type("/renew")
        await page.wait_for_selector(f"{listbox} [role=option]")
        await page.keyboard.press("Escape")
        assert await page.is_hidden(listbox) and await page.input_value(box) == "/renew"
        await page.fill(box, "")
        await page.keyboard.type("/hours")
        await page.wait_for_function(
            "sel => document.querySelectorAll(`${sel} [role=option]`).length === 2", arg=listbox)
        langs = await page.eval_on_selector_all(f"{listbox} [role=option]", "els => els.map(e => e.lang)")
        assert langs == ["en", "es"]
        await page.keyboard.press("ArrowDown")
        assert await page.get_attribute(f"{listbox} [role=option] >> nth=1", "aria-selected") == "true"
        await page.keyboard.press("ArrowDown")  # wraps to the first
        await page.keyboard.press("Enter")
        assert await page.input_value(box) == ENGLISH.format(hours=HOURS)
        # Placeholders filled for this chat; an unknown one is left for the librarian to see.
        await page.fill(box, "")
        await page.keyboard.type("/renew")
        await page.click(f"{listbox} [role=option] >> nth=0")
        assert await page.input_value(box) == "Renew at Tampa Library online, Pat. {typo}"
        await page.fill(box, ENGLISH.format(hours=HOURS))
        await page.keyboard.press("Enter")
        await pats[1].expect("message", body=ENGLISH.format(hours=HOURS), timeout=10)
        assert all(f.get("body") != SPANISH.format(hours=HOURS) for f in pats[1].seen)
        assert all(f.get("body") != ENGLISH.format(hours=HOURS) for f in pats[0].seen)
        assert cal.errors == []
        for p in pats:
            await p.close()


async def test_the_page_that_keeps_a_librarians_own_set(canned_stack: Stack) -> None:
    base = canned_stack.base()
    async with chromium() as browser:
        cal = await open_console(browser, base, "cal", available=False, bypass_csp=True)
        page = cal.page
        await page.click("nav a:has-text('Canned responses')")
        await page.wait_for_selector("#set-personal")
        # A librarian keeps only their own set: no library or consortium set to choose.
        assert await page.eval_on_selector_all("#c-set option", "els => els.map(e => e.value)") == ["personal"]
        assert "Renewals" in await page.inner_text("#set-personal")
        await page.fill("#c-body-es", "Hasta luego, {patron}.")
        await page.click("button:has-text('Add')")
        await page.wait_for_selector("#c-title-error")
        assert await page.get_attribute("#c-title", "aria-invalid") == "true"
        assert await page.input_value("#c-body-es") == "Hasta luego, {patron}."  # nothing typed is lost
        problems = await axe_violations(page)
        assert problems == [], [(v["id"], v["impact"]) for v in problems]
        await page.fill("#c-title", "Goodbye")
        await page.click("button:has-text('Add')")
        await page.wait_for_selector("#set-personal >> text=Goodbye")
        await shot(page, "canned-page")
        assert cal.errors == []

