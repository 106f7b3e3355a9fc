"""Transcript review in headless Chromium against the production stack (every deploy/Procfile line): a
reviewer opens their assigned review, reads the scrubbed transcript beside the rubric, scores every
criterion, submits and marks it notable; the answering library's liaison then finds it on their page,
and a coordinator sees it in the month's figures.

Screenshots go to $VR_SCREENSHOTS_DIR when it is set; docs/screenshots/review-*.png are made so:
    VR_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_review_browser.py -m browser
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import axe_violations, chromium, sign_in
from tests.live.stack import Stack, world

pytestmark = [pytest.mark.browser, pytest.mark.live]

SHOTS = Path(os.environ["VR_SCREENSHOTS_DIR"]) if os.environ.get("VR_SCREENSHOTS_DIR") else None

WORLD = world("gulf", [{"slug": "pensacola"}, {"slug": "tallahassee"}],
              [{"username": "gw-ana", "library": "pensacola"}, {"username": "gw-lia", "library": "pensacola"},
               {"username": "gw-rev", "library": "tallahassee"},
               {"username": "gw-coord", "library": "tallahassee", "role": "coordinator"}])

# A chat Ana (Pensacola) answered this month, with the patron's identity in it; the reviewer and
# liaison flags; then the month's sample, drawn by the management command as an operator would.
SEED = """
from datetime import timedelta
from django.utils import timezone
from libraries.models import StaffProfile
from review.models import ReviewRoles, ReviewSettings
from routing.models import Chat, Message, Offer

now = timezone.now()
ana = StaffProfile.objects.get(user__username="gw-ana")
ReviewRoles.objects.create(staff=StaffProfile.objects.get(user__username="gw-rev"), reviewer=True)
ReviewRoles.objects.create(staff=StaffProfile.objects.get(user__username="gw-lia"), liaison=True)
ReviewSettings.objects.create(consortium=ana.library.consortium, sample_kind="count", sample_value=3)
at = now - timedelta(minutes=30)
chat = Chat.objects.create(consortium=ana.library.consortium, home_library=ana.library, token_hash="x",
    question="Where can I find the 1880 census for Escambia County?", patron_name="Marisol Featherstonehaugh",
    patron_email="marisol.f@example.net", created_at=at, arrived_at=at, last_activity_at=at, state="ended",
    answered_by=ana, librarian=ana, first_accepted_at=at, accepted_at=at, answered_step="local", ended_at=now)
Offer.objects.create(chat=chat, librarian=ana, step_serial=0, step="local", queue="pensacola", mode="broadcast",
                     created_at=at, status="accepted")
lines = [("patron", "Hi, I'm Marisol. My email is marisol.f@example.net, phone (850) 555-0177."),
         ("librarian", "Hello! I'm Ana. Are you looking for the population schedules?"),
         ("patron", "Yes, for my great-grandmother."),
         ("librarian", "FamilySearch has them free: search Escambia, Florida, 1880. Did that answer your question?")]
for seq, (sender, body) in enumerate(lines, 1):
    Message.objects.create(chat=chat, seq=seq, sender=sender, body=body, at=at + timedelta(seconds=seq * 40),
                           name="Ana" if sender == "librarian" else "")
chat.last_seq = len(lines)
chat.save()
"""

MONTH = """
from django.utils import timezone
from zoneinfo import ZoneInfo
print(timezone.now().astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m"))
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack.prepare([WORLD])
    s.manage("shell", "-c", SEED)
    s.manage("review_sample", s.manage("shell", "-c", MONTH).strip().splitlines()[-1], "--consortium", "gulf")
    with s.running(log_tail=4000):
        yield s


async def shot(page: Any, name: str) -> None:
    if SHOTS is not None:
        await page.screenshot(path=str(SHOTS / f"review-{name}.png"), full_page=True)


async def test_a_reviewer_scores_a_transcript_and_the_liaison_reads_it(stack: Stack) -> None:
    base = stack.base()
    async with chromium() as browser:
        # bypass_csp only so that axe-core can be injected: the pages' policy admits no inline script.
        context = await browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="America/New_York",
                                            bypass_csp=True)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, base, "gw-rev", next_path="/staff/reviews/")
        assigned = page.locator("[data-testid=assigned] tbody tr")
        assert await assigned.count() == 1
        await assigned.locator("a").click()
        await page.wait_for_selector("[data-testid=rubric-form]")

        html = await page.content()
        for identity in ("Marisol", "Featherstonehaugh", "marisol.f@example.net", "555-0177"):
            assert identity not in html
        transcript = await page.locator("[data-testid=transcript]").inner_text()
        assert "FamilySearch has them free" in transcript and "[email]" in transcript and "[phone]" in transcript
        assert await axe_violations(page) == []
        await shot(page, "scoring")

        for i, fieldset in enumerate(await page.locator("[data-testid=rubric-form] fieldset").all()):
            await fieldset.locator("input[type=radio]").nth(3 if i % 2 == 0 else 2).check()
            await fieldset.locator("textarea").fill(f"note {i}")
        await page.fill("textarea[name=comment]", "Friendly and quick; the follow-up question was a good close.")
        await page.click("button:has-text('Submit the review')")
        await page.wait_for_selector("[data-testid=scores]")
        scores = await page.locator("[data-testid=scores]").inner_text()
        assert "Approachability\t4 · Exemplary" in scores and "Interest\t3 · Meets the guideline" in scores
        assert "note 4" in scores
        await page.click("button:has-text('Mark notable')")
        await page.wait_for_selector("button:has-text('No longer notable')")
        await shot(page, "submitted")
        assert errors == []
        await context.close()

        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        await sign_in(page, base, "gw-lia", next_path="/staff/reviews/")
        rows = page.locator("[data-testid=library-reviews] tbody tr")
        assert await rows.count() == 1 and "notable" in await rows.inner_text()
        await rows.locator("a").click()
        await page.wait_for_selector("[data-testid=scores]")
        assert "Friendly and quick" in await page.content()
        assert await page.locator("[data-testid=rubric-form]").count() == 0  # a liaison reads, never scores
        await context.close()

        # The coordinator's figures: one review assigned and done this month, its means per criterion.
        context = await browser.new_context(viewport={"width": 1360, "height": 900}, bypass_csp=True)
        page = await context.new_page()
        await sign_in(page, base, "gw-coord", next_path="/coordinator/gulf/reviews/")
        progress = await page.locator("[data-testid=progress] tbody tr").inner_text()
        assert progress.split("\t")[1:] == ["1", "1", "0", "0"]  # assigned, done, open, overdue
        means = await page.locator("[data-testid=scores] tbody tr").inner_text()
        assert "Pensacola Library" in means and "4.0 (1)" in means and "3.0 (1)" in means
        assert await axe_violations(page) == []
        await shot(page, "coordinator")
        await context.close()
