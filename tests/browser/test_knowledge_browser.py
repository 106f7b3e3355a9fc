"""The knowledge base in headless Chromium against the production stack: a patron sees answers while
typing and while waiting and ends the chat with "This answered my question" (self-served); a librarian
sees the chat's answers beside it, inserts one into the reply with one click, and saves a new answer
from the chat with the patron's identity removed.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots is where the docs take them).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium
from tests.browser.test_console import open_console
from tests.live.stack import PASSWORD, Stack, launcher_says_open, librarian, patron, start_chat, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

# kbbl works in the console; kbbm is only present (a socket), so a patron's chat waits in the queue.
WORLDS = [world("kbb", [{"slug": "kbb-a"}], [{"username": "kbbl", "library": "kbb-a", "languages": ["en", "es"]},
                                             {"username": "kbbm", "library": "kbb-a"}])]

ANSWERS = [
    # (library, question, keywords, body)
    (None, "How do I renew my library books?", "renew, renewal, extend, due date",
     "Sign in to **My Account** and press *Renew*. More at [renewals](https://lib.example.org/renew)."),
    (None, "How do I get a library card?", "library card, sign up, register", "Bring a photo ID to any branch."),
    ("kbb-a", "Where do I park at Library A?", "parking, park, garage, car", "Use the garage on Main Street."),
]


@pytest.fixture(scope="module")
def kb_stack() -> Iterator[Stack]:
    s = Stack.prepare(WORLDS)
    for library, question, keywords, body in ANSWERS:
        lib = f"(SELECT id FROM libraries_library WHERE slug = '{library}')" if library else "NULL"
        s.sql("INSERT INTO knowledge_answer (consortium_id, library_id, question, body, language, keywords, state, "
              "review_on, created_at, updated_at, published_at) "
              f"SELECT id, {lib}, '{question}', '{body}', 'en', '{keywords}', 'published', '2027-06-01', now(), "
              "now(), now() FROM consortium_consortium WHERE slug = 'kbb'")
    with s.running():
        yield s


def shot(page: Any, name: str) -> Any:
    folder = os.environ.get("VR_SCREENSHOTS_DIR")
    if not folder:
        return asyncio.sleep(0)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return page.screenshot(path=str(Path(folder) / f"answers-{name}.png"))


async def test_a_patron_sees_answers_while_typing_and_waiting_and_is_self_served(kb_stack: Stack) -> None:
    base = kb_stack.base()
    lib, _, _ = await librarian(base, "kbbm", PASSWORD)  # present, so the chat waits in the queue
    await launcher_says_open(kb_stack, "kbb", "kbb-a")
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = await context.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{base}/ask/kbb/kbb-a/")
        await page.locator("[data-vr=start-form]").get_by_label("Your question").press_sequentially(
            "Can I keep my books longer", delay=20)
        typing = page.locator("[data-vr=suggest]")
        await typing.wait_for(state="visible")
        assert "How do I renew my library books?" in (await typing.text_content() or "")
        problems = await axe_violations(page)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        await page.get_by_role("button", name="Start chat").click()
        waiting = page.locator("[data-vr=wait-suggest]")
        await waiting.wait_for(state="visible")
        assert await typing.is_hidden()
        first = waiting.locator("li").first
        assert "How do I renew my library books?" in (await first.text_content() or "")
        await shot(page, "patron-waiting")
        raw = await page.evaluate("sessionStorage.getItem('vrchat:kbb')")
        chat_id = json.loads(raw)["id"]
        await lib.expect("offer", chat=chat_id, timeout=15)
        await first.get_by_role("button", name="This answered my question").click()
        await page.locator("[data-vr=after-note]").filter(has_text="glad that helped").wait_for()
        assert await waiting.is_hidden()
        await lib.expect("offer_withdrawn", chat=chat_id, timeout=10)
        assert await asyncio.to_thread(kb_stack.sql, f"SELECT end_reason FROM routing_chat WHERE id = '{chat_id}'") \
            == "self_served"
        # The answer's own page, linked from the suggestion, and the searchable answers page.
        await page.goto(f"{base}/answers/kbb/kbb-a/?q=keep+my+books+longer")
        await page.get_by_role("link", name="How do I renew my library books?").click()
        await page.get_by_role("heading", level=1, name="How do I renew my library books?").wait_for()
        assert await page.locator(".kb-body strong").inner_text() == "My Account"
        problems = await axe_violations(page)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        await page.goto(f"{base}/answers/kbb/?lang=es")
        assert await page.locator("h1").inner_text() == "Respuestas a preguntas frecuentes"
        problems = await axe_violations(page)
        assert problems == [], json.dumps([(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in problems])
        assert errors == []
        await context.close()
    await lib.close()


async def test_a_librarian_inserts_an_answer_and_saves_one_from_the_chat_without_the_patron(kb_stack: Stack) -> None:
    base = kb_stack.base()
    async with chromium() as browser:
        cal = await open_console(browser, base, "kbbl")
        page = cal.page
        chat = await start_chat(base, "kbb", "Where can I park my car?", library="kbb-a", name="Quentin Zephyr",
                                email="quentin.z@example.net")
        pat = await patron(base, chat)
        await cal.offer(chat["id"])
        await page.click(f'.offer[data-chat="{chat["id"]}"] .accept')
        panel = f"#panel-{chat['id']}"
        await page.wait_for_selector(f"{panel} .answers li.answer")
        first = page.locator(f"{panel} .answers li.answer").first
        assert "Where do I park at Library A?" in (await first.text_content() or "")
        # A new line of the patron's brings the answers that match it.
        await pat.send({"type": "message", "body": "Also, can I renew my books? Call me on 850-555-0142",
                        "client_id": "p1"})
        await cal.wait_text(f"{panel} .answers li.answer", "How do I renew my library books?", timeout=15000)
        await shot(page, "console")
        await page.locator(f"{panel} .answers li.answer", has_text="Where do I park").get_by_role(
            "button", name="Insert").click()
        box = f"{panel} textarea"
        assert (await page.input_value(box)).startswith("Use the garage on Main Street.")
        await page.press(box, "Enter")
        await pat.expect(lambda f: f.get("type") == "message" and f.get("sender") == "librarian"
                         and "Use the garage on Main Street." in f.get("body", ""), timeout=10)

        # Save as answer: a draft prefilled from the chat, the patron's name, address and number removed.
        href = await page.get_attribute(f"{panel} .save-answer", "href")
        assert href == f"/staff/answers/new?chat={chat['id']}"
        form = await page.context.new_page()
        await form.goto(base + href)
        question = await form.input_value("#a-question")
        assert question == "Where can I park my car?"
        await form.fill("#a-body", (await form.input_value("#a-body")) + "\n\nThe garage is free after 6 pm.")
        await form.fill("#a-keywords", "parking, garage")
        await form.get_by_role("button", name="Save as draft").click()
        await form.wait_for_selector("text=Saved.")
        saved = await asyncio.to_thread(kb_stack.sql, "SELECT question || ' ' || body || ' ' || state FROM "
                                        "knowledge_answer WHERE question = 'Where can I park my car?'")
        assert "free after 6 pm" in saved and saved.endswith("draft")
        for secret in ("Quentin", "Zephyr", "quentin.z@example.net", "850-555-0142"):
            assert secret not in saved
        assert cal.errors == []
        await pat.close()
