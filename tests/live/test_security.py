"""Issue 13, black-box through the production stack (real daphne, workers, PostgreSQL and Redis):
staff sign-in throttling, and a CSV a spreadsheet cannot be tricked into running."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, login, start_chat, world

WORLD = world(
    "sec",
    libraries=[{"slug": "sec-a"}],
    staff=[
        {"username": "sec1", "library": "sec-a"},
        {"username": "sec2", "library": "sec-a"},
        {"username": "sec3", "library": "sec-a"},
        {"username": "seccoord", "library": "sec-a", "role": "coordinator"},
    ],
)
LOCKED = re.compile(r"Too many attempts: try again in (\d+) minutes?\.")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running() as s:
        yield s


def attempt(base: str, username: str, password: str) -> httpx.Response:
    """One sign-in as a browser makes it: the page (for its CSRF token), then the form."""
    with httpx.Client(base_url=base, timeout=20) as c:
        page = c.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        return c.post("/accounts/login/", data={"username": username, "password": password,
                                                "csrfmiddlewaretoken": token[1]},
                      headers={"Referer": base + "/accounts/login/", "Origin": base})


async def test_the_chats_report_quotes_a_patrons_formula(stack: Stack) -> None:
    base = stack.base()
    await start_chat(base, "sec", "A question", library="sec-a", language="=HYPERLINK(1)")
    cookies = login(base, "seccoord", PASSWORD)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=20) as c:
        r = await c.get("/api/v1/sec/reports/chats.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["language"] for row in rows] == ["'=HYPERLINK(1)"]


# Last in this module: it leaves the stack's one client address (127.0.0.1) locked.
def test_sign_in_throttling_and_the_coordinators_unlock(stack: Stack) -> None:
    base = stack.base()
    assert [attempt(base, "sec1", "wrong").status_code for _ in range(4)] == [200] * 4
    fifth = attempt(base, "sec1", "wrong")
    assert fifth.status_code == 429, "the fifth failure locks the account"
    sixth = attempt(base, "sec1", PASSWORD)
    assert sixth.status_code == 429, "locked: even the right password is refused"
    minutes = LOCKED.search(sixth.text)
    assert minutes and int(minutes[1]) == 15
    assert sixth.headers["Retry-After"] == str(int(minutes[1]) * 60)
    # Another account from the same client (5 failures so far; the client's limit is 20) is let in.
    assert attempt(base, "sec2", PASSWORD).status_code == 302

    # The coordinator unlocks their librarian in the admin: find the account's attempts, delete them.
    cookies = login(base, "seccoord", PASSWORD)
    with httpx.Client(base_url=base, cookies=cookies, timeout=20) as admin:
        listing = admin.get("/admin/axes/accessattempt/", params={"q": "sec1"})
        assert listing.status_code == 200
        ids = set(re.findall(r'/admin/axes/accessattempt/(\d+)/change/', listing.text))
        assert len(ids) == 1
        pk = ids.pop()
        confirm = admin.get(f"/admin/axes/accessattempt/{pk}/delete/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.text)
        assert confirm.status_code == 200 and token
        done = admin.post(f"/admin/axes/accessattempt/{pk}/delete/",
                          data={"post": "yes", "csrfmiddlewaretoken": token[1]},
                          headers={"Referer": f"{base}/admin/axes/accessattempt/{pk}/delete/", "Origin": base})
        assert done.status_code == 302, done.text[:500]
    assert attempt(base, "sec1", PASSWORD).status_code == 302, "unlocked: the librarian is back in"

    # The client's own limit (the unlock took sec1's 5 away): 20 failures over accounts that each stay
    # under theirs, and the 20th locks the client.
    codes = [attempt(base, name, "wrong").status_code for name in ("x1", "x2", "x3", "x4", "x5") for _ in range(4)]
    assert codes[:-1] == [200] * 19 and codes[-1] == 429, codes
    assert attempt(base, "sec3", PASSWORD).status_code == 429, "this client is locked for every account"
