"""Transcript review through the production stack (real daphne, Celery worker, PostgreSQL, Redis): a chat
answered over the sockets is sampled by the monthly task run by the worker, assigned to a reviewer of
the other library, scored on the reviewer's page over HTTP, and the worker mails the scores to the
answering library's liaison, with nothing of the patron's identity on the way."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, librarian, patron, start_chat, world
from tests.live.test_security_mail import to, wait_for

WORLD = world("review", libraries=[{"slug": "rv-a"}, {"slug": "rv-b"}],
              staff=[{"username": "rva1", "library": "rv-a"}, {"username": "rva2", "library": "rv-a"},
                     {"username": "rvb1", "library": "rv-b"}])

FLAGS = """
from libraries.models import StaffProfile
from review.models import ReviewRoles, ReviewSettings
from consortium.models import Consortium
ReviewRoles.objects.create(staff=StaffProfile.objects.get(user__username="rvb1"), reviewer=True)
ReviewRoles.objects.create(staff=StaffProfile.objects.get(user__username="rva1"), reviewer=True)
ReviewRoles.objects.create(staff=StaffProfile.objects.get(user__username="rva2"), liaison=True)
ReviewSettings.objects.create(consortium=Consortium.objects.get(slug="review"), sample_kind="percent", sample_value=100)
"""

# What the beat schedule sends, by name, with the month the test's chat arrived in (the scheduled run
# has none: the previous month). Sent to the broker: the worker runs it.
ENQUEUE = """
from django.utils import timezone
from zoneinfo import ZoneInfo
from consortium.celery import app
month = timezone.now().astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m")
print(app.send_task("review.tasks.reviews_sample_due", kwargs={"month": month}).id)
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=1, timer=1, worker=1, beat=0) as s:
        s.manage("shell", "-c", FLAGS)
        yield s


async def answered_chat(base: str) -> str:
    lib, _, _ = await librarian(base, "rva1", PASSWORD)
    chat = await start_chat(base, "review", "Do you have Zora Neale Hurston's letters?", library="rv-a",
                            name="Ophelia Brightwater", email="ophelia.b@example.net")
    await lib.expect("offer", chat=chat["id"], timeout=15)
    await lib.send({"type": "accept", "chat": chat["id"]})
    await lib.expect("assigned", chat=chat["id"], timeout=15)
    p = await patron(base, chat)
    await p.send({"type": "message", "body": "I'm Ophelia, call me on 850-555-0142", "client_id": "p1"})
    await lib.expect("message", client_id="p1", timeout=10)
    await lib.send({"type": "message", "chat": chat["id"], "body": "Welcome! The letters are in Special Collections.",
                    "client_id": "l1"})
    await lib.expect("message", client_id="l1", timeout=10)
    await lib.send({"type": "end", "chat": chat["id"]})
    await lib.expect("state", chat=chat["id"], state="ended", timeout=10)
    await p.close()
    await lib.close()
    return str(chat["id"])


def test_the_worker_samples_the_month_and_mails_the_scores_to_the_liaison(stack: Stack) -> None:
    base = stack.base()
    chat_id = asyncio.run(answered_chat(base))
    stack.manage("shell", "-c", ENQUEUE)
    wait_for("the review assigned by the worker",
             lambda: stack.sql(f"SELECT count(*) FROM review_review WHERE chat_id='{chat_id}'") == "1")
    row = stack.sql(f"SELECT r.id, u.username FROM review_review r JOIN libraries_staffprofile s "
                    f"ON s.id = r.reviewer_id JOIN auth_user u ON u.id = s.user_id WHERE r.chat_id='{chat_id}'")
    review_id, reviewer = row.split("|")
    assert reviewer == "rvb1"  # rva1 answered it; never a reviewer of rv-a
    stack.manage("shell", "-c", ENQUEUE)  # run again: nothing more
    wait_for("the second run", lambda: stack.logs().count("succeeded") >= 2)
    assert stack.sql("SELECT count(*) FROM review_review") == "1"

    cookies = stack.sign_in_all("rvb1")
    with httpx.Client(base_url=base, cookies={"sessionid": cookies["rvb1"]}, timeout=20) as c:
        page = c.get(f"/staff/reviews/{review_id}/")
        assert page.status_code == 200
        for identity in ("Ophelia", "Brightwater", "ophelia.b@example.net", "850-555-0142"):
            assert identity not in page.text
        assert "The letters are in Special Collections." in page.text
        ids = re.findall(r'name="score-(\d+)"', page.text)
        form = {f"score-{i}": "3" for i in set(ids)} | {"comment": "Clear and kind.",
                                                       "csrfmiddlewaretoken": c.cookies["csrftoken"]}
        done = c.post(f"/staff/reviews/{review_id}/", data=form, headers={"Origin": base, "Referer": base + "/"})
        assert done.status_code == 302, done.text[:500]

    wait_for("the liaison's mail", lambda: len(to(stack, "rva2@example.org")) == 1)
    body = to(stack, "rva2@example.org")[0].get_payload()
    assert "Approachability: 3" in body and "Clear and kind." in body and "Ophelia" not in body
    assert to(stack, "rva1@example.org") == []
    told = to(stack, "rvb1@example.org")  # the reviewer heard of the assignment, once for the two runs
    assert [m["Subject"].startswith("Review: transcripts to review by") for m in told] == [True]
    assert json.loads(stack.sql(f"SELECT json_agg(value) FROM review_score WHERE review_id={review_id}")) == [3] * 5
