"""The coordinator pages in headless Chromium against the production stack (every deploy/Procfile line).

A coordinator signs in, builds a rota shift with the page's forms, watches the live board update
over /ws/coordinator/ as chats arrive and librarians come and go (an alert for a librarian on shift
who is absent), and opens the coverage heat map and the statistics. Librarians and patrons speak
the wire protocol (tests.live.stack).

Screenshots go to $VR_SCREENSHOTS_DIR when it is set; docs/screenshots/coordinator-*.png are made so:
    VR_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_coordinator.py -m browser
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.chromium import chromium, sign_in
from tests.live.stack import PASSWORD, Stack, librarian, patron, start_chat, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None
NY = ZoneInfo("America/New_York")

STAFF = [
    {"username": "cora", "library": "orlando", "role": "coordinator"},
    {"username": "ana", "library": "tampa", "queues": ["statewide"]},
    {"username": "ben", "library": "orlando", "queues": ["statewide"]},
    {"username": "cy", "library": "stpete"},
    {"username": "dee", "library": "tampa"},
    {"username": "eve", "library": "miami"},
]
WORLD = world("sunshine", [{"slug": "tampa", "partners": ["stpete"]}, {"slug": "orlando"},
                           {"slug": "stpete", "partners": ["tampa"]}, {"slug": "miami"}], STAFF,
              local_timeout=600, partner_timeout=600)

# Run inside the stack with manage.py shell: a rota around the clock on weekdays, a shift going on
# now that dee (never signed in) is on, and four weeks of past chats for the coverage map.
SEED = """
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from django.utils import timezone
from libraries.models import Library, Queue, Shift, ShiftAssignment, StaffProfile
from routing.models import Chat

rng = random.Random(7)
ny = ZoneInfo("America/New_York")
now = timezone.now()
local = now.astimezone(ny)
statewide = Queue.objects.get(consortium__slug="sunshine", slug="statewide")
people = {p.user.username: p for p in StaffProfile.objects.filter(library__consortium__slug="sunshine")}
today = local.date()
plan = [(d, s, e, who) for d in range(5) for s, e, who in ((9, 13, "ana"), (13, 17, "ben"), (17, 21, "cy"))]
for weekday, start, end, who in plan:
    shift = Shift.objects.create(queue=statewide, weekday=weekday, start_minute=start * 60, end_minute=end * 60,
                                 min_librarians=2 if start == 13 else 1)
    ShiftAssignment.objects.create(shift=shift, librarian=people[who], assigned_on=today - timedelta(days=30))
minute = local.hour * 60 + local.minute
shift = Shift.objects.create(queue=statewide, weekday=local.weekday(), start_minute=max(0, minute - 60),
                             end_minute=min(1440, minute + 120), min_librarians=2)
ShiftAssignment.objects.create(shift=shift, librarian=people["dee"], assigned_on=today)
libraries = list(Library.objects.filter(consortium__slug="sunshine"))
answerers = [people[u] for u in ("ana", "ben", "cy", "eve")]
rows = []
for day in range(1, 29):
    for _ in range(rng.randint(8, 20)):
        hour = min(23, max(0, int(rng.gauss(14, 4))))
        at = (local - timedelta(days=day)).replace(hour=hour, minute=rng.randint(0, 59)).astimezone(ny)
        home = rng.choice(libraries)
        by = rng.choice(answerers) if rng.random() < 0.85 else None
        rows.append(Chat(consortium=home.consortium, home_library=home, question="q", token_hash="", plan=[
            {"name": "local", "queues": [home.slug], "wait": 600},
            {"name": "consortium", "queues": ["statewide"], "wait": None}], state="ended" if by else "abandoned",
            created_at=at, arrived_at=at, last_activity_at=at, answered_by=by,
            first_accepted_at=at + timedelta(seconds=rng.randint(5, 200)) if by else None,
            read_scale=rng.choice([1, 2, 2, 3, None]) if by else None,
            subjects=rng.sample(["books", "genealogy", "tax forms", "databases", "library cards"], 1) if by else []))
Chat.objects.bulk_create(rows)
print("seeded", len(rows))
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack.prepare([WORLD])
    s.manage("shell", "-c", SEED)
    with s.running(log_tail=4000):
        yield s


async def shot(page: Any, name: str) -> None:
    if SHOTS is not None:  # playwright makes the folder
        await page.screenshot(path=str(SHOTS / f"coordinator-{name}.png"), full_page=True)


async def signed_in(browser: Any, base: str, username: str, path: str) -> tuple[Any, list[str]]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="America/New_York")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await sign_in(page, base, username, next_path=path)
    return page, errors


async def test_the_coordinator_pages_in_a_browser(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        # A librarian is kept out.
        page, _ = await signed_in(browser, base, "ana", "/rota/")
        response = await page.goto(f"{base}/coordinator/sunshine/")
        assert response is not None and response.status == 403
        await page.context.close()

        page, errors = await signed_in(browser, base, "cora", "/coordinator/sunshine/rota/")

        # The rota: a weekend shift made with the form (a day that has no shift yet: the seed's are on
        # weekdays and today), a librarian put on it by typing her name.
        day = 5 if datetime.now(NY).weekday() != 5 else 6
        day_name = ("Saturday", "Sunday")[day - 5]
        form = page.locator("section", has=page.locator("h3#q-statewide")).locator("form.row")
        await form.locator("select[name=weekday]").select_option(str(day))
        await form.locator("input[name=hours]").fill("10:00-14:00")
        # What if? first: the forecast of those hours with the shift, and nothing saved.
        await form.get_by_role("button", name="What if?").click()
        await page.wait_for_selector("#preview-statewide >> text=With this shift")
        assert "Shift added." not in await page.inner_text("main")
        form = page.locator("section", has=page.locator("h3#q-statewide")).locator("form.row")
        await form.locator("select[name=weekday]").select_option(str(day))
        await form.locator("input[name=hours]").fill("10:00-14:00")
        await form.get_by_role("button", name="Add shift").click()
        await page.wait_for_selector("text=Shift added.")
        weekend = page.locator("tr", has=page.locator("th", has_text=day_name))
        await weekend.locator("input[name=librarian]").fill("eve")
        await weekend.locator("button", has_text="Assign").click()
        await page.wait_for_selector(f"text=is on statewide {day_name[:3]} 10:00-14:00 every week")
        await page.locator("input[name=hours][id='t-tampa']").fill("40")
        await page.locator("form", has=page.locator("#t-tampa")).locator("button").click()
        await page.wait_for_selector("text=h short")
        await shot(page, "rota")

        # The live board: two librarians present, chats arriving after the page is open.
        ana, _, _ = await librarian(base, "ana", PASSWORD)
        ben, _, _ = await librarian(base, "ben", PASSWORD)
        await page.goto(f"{base}/coordinator/sunshine/")
        await page.wait_for_selector('#conn[data-state="connected"]', timeout=20000)
        patrons = []
        for question, home in (("Museum passes?", "tampa"), ("Tax forms?", "miami"), ("Genealogy help", "stpete")):
            chat = await start_chat(base, "sunshine", question, library=home)
            patrons.append(await patron(base, chat))
        await page.wait_for_function("() => document.querySelectorAll('#waiting tbody tr .wait').length === 3",
                                     timeout=15000)
        await ana.send({"type": "accept", "chat": chat["id"]})
        await ana.expect("assigned", timeout=10)
        await page.wait_for_function("() => document.querySelectorAll('#active tbody tr').length === 1"
                                     " && document.querySelectorAll('#waiting tbody tr .wait').length === 2",
                                     timeout=15000)
        text = (await page.inner_text("main")).lower()
        assert "ana" in text and "ben" in text and "tampa library" in text
        if datetime.now(NY).hour * 60 + datetime.now(NY).minute >= 66:  # dee's shift began an hour ago
            await page.wait_for_selector("#alerts .notice", timeout=15000)
            assert "dee" in (await page.inner_text("#alerts")).lower()
        assert await page.inner_text("#c-present") == "2"
        await shot(page, "board")
        await ben.close()
        await page.wait_for_function("() => document.getElementById('c-present').textContent === '1'",
                                     timeout=15000)

        # Coverage and statistics.
        await page.goto(f"{base}/coordinator/sunshine/coverage/?weeks=4")
        assert await page.locator("table.heat:not(.forecast) td.cell").count() == 7 * 24
        # The staffing forecast of the coming week under the map: every hour once (issue 18).
        assert await page.locator("table.heat.forecast td.cell").count() == 7 * 24
        assert "Forecast for the coming week" in await page.inner_text("main")
        assert await page.locator("table.heat td.gap").count() > 0, "weekends and nights have demand, no shift"
        await shot(page, "coverage")
        await page.goto(f"{base}/coordinator/sunshine/statistics/")
        assert await page.locator("svg.chart").count() >= 4
        assert "Who answered whom" in await page.inner_text("main")
        await shot(page, "statistics")

        for sock in (ana, *patrons):
            await sock.close()
        assert errors == [], errors


async def test_what_if_redraws_the_forecast_in_place(stack: Stack) -> None:
    """The rota's What if? follows the edits of a new shift without a reload (coordination/what_if.js): the
    hours typed give their forecast at once, more hours give more rows, and nothing is saved."""
    base = stack.base()
    async with chromium() as browser:
        page, errors = await signed_in(browser, base, "cora", "/coordinator/sunshine/rota/")
        await page.evaluate("() => { window.samePage = true; }")  # gone if the page were loaded again
        # What the browser said while loading (a first page in a new browser: its favicon's 404) is not this test's.
        errors.clear()
        rows = "() => document.querySelectorAll('#preview-statewide tbody tr').length"
        form = page.locator("section", has=page.locator("h3#q-statewide")).locator("form.row")
        await form.locator("select[name=weekday]").select_option("6" if datetime.now(NY).weekday() != 6 else "5")
        await form.locator("input[name=hours]").fill("10:00-12:00")
        await page.wait_for_function(f"() => ({rows})() === 2", timeout=15000)
        text = await page.inner_text("#preview-statewide")
        assert "1 librarian worked" in text and "With this shift" in text and "10:00" in text and "11:00" in text
        await form.locator("input[name=hours]").fill("10:00-14:00")
        await page.wait_for_function(f"() => ({rows})() === 4", timeout=15000)
        await form.locator("input[name=min_librarians]").fill("3")
        await page.wait_for_selector("#preview-statewide >> text=3 librarians worked", timeout=15000)
        # The button asks too, in place.
        await form.locator("input[name=hours]").fill("10:00-11:00")
        await form.get_by_role("button", name="What if?").click()
        await page.wait_for_function(f"() => ({rows})() === 1", timeout=15000)
        assert await page.evaluate("() => window.samePage === true"), "the page was not loaded again"
        assert "Shift added." not in await page.inner_text("main")
        assert errors == [], errors
        await page.context.close()
