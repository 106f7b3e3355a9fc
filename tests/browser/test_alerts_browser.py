"""Alerts on the live board in headless Chromium against the production stack.

A coordinator has the board open; the evaluation (alerts.evaluate, as the beat task runs it) raises
alerts in another process; the board shows them over /ws/coordinator/ without a reload, each with the
link that fixes it, and axe-core finds nothing serious; following the policy page's link opens the
library's page in the admin, where the review date is kept. When a librarian signs in, the queue's
alert leaves the board at the next evaluation. The coordinator switches her pages to Spanish in the bar:
the board and its alerts follow.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set (docs/screenshots/coordinator-alerts.png):
    VR_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_alerts_browser.py -m browser
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.live.stack import PASSWORD, Stack, librarian, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None
SLUG = "alertboard"
WORLD = world(SLUG, libraries=[{"slug": "ab-a", "hours": {}},
                               {"slug": "ab-b", "hours": {}, "policy": "# Cards\n\nFree.",
                                "policy_reviewed": "2020-01-01"}],
              staff=[{"username": "ab-cora", "library": "ab-a", "role": "coordinator"},
                     {"username": "ab-ana", "library": "ab-a", "queues": ["statewide"]}])
WORLD["consortium"]["alerts"] = {"queue_unstaffed_minutes": 1, "mail": False}

# The evaluation at now + MINUTES, as the beat task runs it (here in a shell of the stack: no beat).
EVALUATE = """
from datetime import timedelta
from django.utils import timezone
from alerts.evaluate import alerts_evaluate
from consortium.models import Consortium
alerts_evaluate(Consortium.objects.get(slug="alertboard"), timezone.now() + timedelta(minutes=MINUTES))
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=1, timer=1, worker=0, beat=0, log_tail=3000) as s:
        yield s


def evaluate(stack: Stack, minutes: int) -> None:
    stack.manage("shell", "-c", EVALUATE.replace("MINUTES", str(minutes)))


async def test_alerts_appear_on_the_open_board_with_the_link_that_fixes_them(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900}, bypass_csp=True)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, base, "ab-cora", next_path=f"/coordinator/{SLUG}/")
        await page.wait_for_selector("#conn[data-state=connected]")
        assert await page.locator("#alerts .raised").count() == 0

        evaluate(stack, 0)
        evaluate(stack, 1)  # Statewide has had nobody for a minute (this consortium's setting)
        await page.wait_for_selector("#alerts .raised[data-kind=queue_unstaffed]", timeout=15000)
        policy = page.locator("#alerts .raised[data-kind=policy_stale]")
        assert " ".join((await policy.inner_text()).split()) == (
            "The policy page of Ab-B Library is past its review date (last reviewed 2020-01-01). "
            "Review the policy page")
        queue = page.locator("#alerts .raised[data-kind=queue_unstaffed]")
        assert await queue.locator("a").get_attribute("href") == f"/coordinator/{SLUG}/hours/statewide/"
        assert await axe_violations(page) == []
        if SHOTS is not None:
            await page.screenshot(path=str(SHOTS / "coordinator-alerts.png"), full_page=True)

        sock, _, _ = await librarian(base, "ab-ana", PASSWORD)  # someone available on Statewide now
        try:
            evaluate(stack, 2)
            await page.wait_for_selector("#alerts .raised[data-kind=queue_unstaffed]", state="detached",
                                         timeout=15000)
            assert await policy.count() == 1
        finally:
            await sock.close()

        # Her language: Spanish, chosen in the bar; the page and the alerts (over the socket) follow it.
        await page.select_option("#staff-language", "es")
        await page.get_by_role("button", name="Change language").click()
        await page.wait_for_selector("html[lang=es]")
        await page.wait_for_selector("#conn[data-state=connected]")
        assert await page.locator("#conn").inner_text() == "en vivo"
        assert " ".join((await policy.inner_text()).split()) == (
            "La página de políticas de Ab-B Library pasó su fecha de revisión (última revisión: 2020-01-01). "
            "Revisar la página de políticas")
        assert await page.get_by_role("heading", name="En espera").count() == 1
        assert await axe_violations(page) == []
        if SHOTS is not None:
            await page.screenshot(path=str(SHOTS / "coordinator-alerts-es.png"), full_page=True)

        await policy.locator("a").click()  # the fix: the library's page in the admin, its review date there
        await page.wait_for_url("**/admin/libraries/library/*/change/")
        # (the admin in her language too: Spanish writes the date day first)
        assert await page.locator("#id_policy_reviewed_on").input_value() == "01/01/2020"
        assert errors == []
        await context.close()
