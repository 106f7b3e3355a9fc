"""The fresh-clone demo's coordinator pages in headless Chromium: the generated weeks are there and the
statistics page's figures add up (issue 20).

The stack is loaded as `python3 dev.py demo` loads the embedded one: deploy/demo-consortium.yaml
imported, then `manage.py demo_history` (here with --force: the stack runs on the production engines,
and its database is thrown away afterwards). A coordinator of the demo signs in with the demo password
and reads the figures off the page, as a person would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.browser.chromium import chromium, sign_in
from tests.live.stack import ROOT, Stack

pytestmark = [pytest.mark.browser, pytest.mark.live]

DEMO_FILE = Path(ROOT) / "deploy" / "demo-consortium.yaml"
DEMO_PASSWORD = "demo-password-1"  # as in the demo file
NY = ZoneInfo("America/New_York")
OUTCOMES = ("answered", "abandoned", "withdrawn", "unstaffed", "open", "self_served")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack.prepare([yaml.safe_load(DEMO_FILE.read_text())])
    out = s.manage("demo_history", "--force")
    assert "chats from" in out, out
    with s.running(log_tail=4000):
        yield s


def number(text: str) -> int:
    digits = re.sub(r"[^\d]", "", text)
    assert digits, f"not a number: {text!r}"
    return int(digits)


async def test_the_demo_statistics_show_eight_weeks_that_add_up(stack: Stack) -> None:
    base = stack.base()
    today = datetime.now(NY).date()
    since = today - timedelta(weeks=8) + timedelta(days=1)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="America/New_York")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, base, "coord-rivera", DEMO_PASSWORD, next_path="/coordinator/sunshine/statistics/")

        # The period form, as a coordinator uses it: the last eight weeks.
        await page.fill("input[name=since]", since.isoformat())
        await page.fill("input[name=until]", today.isoformat())
        await page.click("form[aria-label=Period] button[type=submit]")
        await page.wait_for_url(re.compile(r".*since=.*"))
        lede = await page.inner_text("p.lede")
        assert "56 days" in lede, lede

        total = number(await page.inner_text("[data-figure=total] .n"))
        figures = {o: number(await page.inner_text(f"[data-outcome={o}] .n")) for o in OUTCOMES}
        assert total > 2500, f"eight weeks of a state service, not {total} chats"
        assert sum(figures.values()) == total, figures
        assert figures["open"] == 0 and min(figures[o] for o in OUTCOMES if o != "open") > 0, figures

        # The table by home library adds up to the same, row by row and in all.
        rows = await page.locator("section[aria-labelledby=h-libraries] tbody tr").all()
        assert len(rows) == 12
        column_sum = 0
        for row in rows:
            cells = [number(t) for t in (await row.locator("td").all_inner_texts())[:1 + len(OUTCOMES)]]
            assert cells[0] == sum(cells[1:]), await row.inner_text()
            column_sum += cells[0]
        no_home = total - column_sum
        assert 0 < no_home < total // 5, "patrons without a home library are the rest"

        # Every day of the period had chats: the hours of the week are filled on weekday afternoons.
        heat = page.locator("section[aria-labelledby=h-hours]")
        assert await heat.locator("svg").count() == 1
        # Who answered whom: every library answered some, several for others.
        assert await page.locator("table.matrix tbody tr").count() >= 12

        # One day, in the CSV of the outcomes: the same definition, adding up to that day's total.
        day = (today - timedelta(days=7)).isoformat()
        csv = await page.request.get(f"{base}/coordinator/sunshine/statistics/?since={day}&until={day}&csv=outcomes")
        lines = (await csv.text()).splitlines()
        counted = dict(line.split(",") for line in lines[1:])
        assert sum(int(counted[o]) for o in OUTCOMES) == int(counted["total"]) > 0, lines

        # The coverage map shows demand from the same weeks, and the rota the demo was given.
        await page.goto(f"{base}/coordinator/sunshine/coverage/?weeks=8")
        assert await page.locator("table.heat td.cell").count() >= 7 * 24
        assert await page.locator("table.heat td.gap").count() > 0
        # And the staffing forecast of the coming week, from the generated past (issue 18): the rota's
        # weekday hours answered within 60 s, its empty Sundays with chats expected and nobody on them.
        statewide = page.locator("section", has=page.locator("h3#cov-statewide"))
        forecast = statewide.locator("table.heat.forecast")
        assert await forecast.locator("td.cell").count() == 7 * 24
        assert await forecast.locator("td.fc-good").count() > 20
        assert await forecast.locator("td.fc-none").count() > 5
        title = await forecast.locator("td.fc-good").first.get_attribute("title") or ""
        assert "answered within 60 s" in title and "predicted wait" in title, title
        shots = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None
        if shots is not None:
            await statewide.screenshot(path=str(shots / "coordinator-forecast.png"))
        # The rota beside it: each shift's worst hour, without it, with one more librarian.
        await page.goto(f"{base}/coordinator/sunshine/rota/")
        rota = page.locator("section", has=page.locator("h3#q-statewide"))
        assert await rota.get_by_text("without this shift: nobody to answer").count() > 0
        if shots is not None:
            await rota.screenshot(path=str(shots / "coordinator-rota-forecast.png"))
        await context.close()
    assert errors == [], errors
