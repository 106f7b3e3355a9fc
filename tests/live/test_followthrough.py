"""Issue 17, parts 5-7, through the production stack (two daphne processes, the timer, a Celery worker,
PostgreSQL, Redis), one stack for the module:

- follow-ups with deadlines: the question form takes the patron's deadline; past due, the worker's
  sweep moves the follow-up to the partner library's list and mails its staff;
- the way home: a partner librarian on one web process is told when a home librarian signs in on
  the other, and hands the chat back with a note in one click;
- returning patrons: with consent, the librarian who last helped is offered the next chat alone for
  the head start, and sees the earlier chat beside it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from tests.live.stack import PASSWORD, Socket, Stack, librarian, patron, start_chat, world
from tests.live.test_security_mail import to, wait_for

WORLD = world("follow", libraries=[{"slug": "fw-home", "partners": ["fw-partner"]}, {"slug": "fw-partner"}],
              staff=[{"username": "fwh1", "library": "fw-home"}, {"username": "fwh2", "library": "fw-home"},
                     {"username": "fwp1", "library": "fw-partner"}],
              returning_head_start=3)
DEVICE = "feedfacecafebeef0123456789abcdef"

# What Celery beat sends every five minutes, by name, to the broker: the worker runs it.
SWEEP = """
from consortium.celery import app
print(app.send_task("routing.tasks.followups_sweep_due").id)
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD]).running(webs=2, timer=1, worker=1, beat=0) as s:
        yield s


def test_an_overdue_followup_moves_to_the_partners_list_and_its_staff_are_mailed(stack: Stack) -> None:
    base = stack.base()
    day = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
    r = httpx.post(f"{base}/api/v1/follow/questions", headers={"Origin": base}, timeout=20,
                   json={"question": "Can I borrow the 1910 census microfilm?", "email": "pat.fw@example.net",
                         "library": "fw-home", "deadline": day})
    assert r.status_code == 201, r.text
    ticket, due_at = r.json()["id"], r.json()["due_at"]
    assert due_at[:10] == (date.fromisoformat(day) + timedelta(days=1)).isoformat()  # that day's end, in UTC
    bad = httpx.post(f"{base}/api/v1/follow/questions", headers={"Origin": base}, timeout=20,
                     json={"question": "x", "email": "pat.fw@example.net", "library": "fw-home",
                           "deadline": "2001-01-01"})
    assert bad.status_code == 400 and "deadline" in bad.json()["error"]["fields"]

    # Time passes: the follow-up is overdue (its deadline set back, as the calendar would).
    stack.sql(f"UPDATE routing_ticket SET due_at = now() - interval '1 hour', next_check_at = now() "
              f"WHERE id = '{ticket}'")
    stack.manage("shell", "-c", SWEEP)
    wait_for("the sweep's move",
             lambda: stack.sql(f"SELECT stage FROM routing_ticket WHERE id='{ticket}'") == "partners")
    wait_for("the partner's mail", lambda: len(to(stack, "fwp1@example.org")) == 1)
    assert "Overdue follow-up" in to(stack, "fwp1@example.org")[0]["Subject"]
    history = json.loads(stack.sql(f"SELECT history FROM routing_ticket WHERE id='{ticket}'"))
    assert [h["kind"] for h in history] == ["due", "escalate"] and history[-1]["to"] == "partners"
    cookies = stack.sign_in_all("fwp1")
    with httpx.Client(base_url=base, cookies={"sessionid": cookies["fwp1"]}, timeout=20) as c:
        page = c.get("/staff/tickets/")
        assert page.status_code == 200 and f'data-ticket="{ticket}"' in page.text and "overdue" in page.text


async def _hand_back(stack: Stack) -> None:
    web1, web2 = stack.base("web1"), stack.base("web2")
    partner, _, _ = await librarian(web1, "fwp1", PASSWORD)
    chat = await start_chat(web1, "follow", "Are museum passes free for Home residents?", library="fw-home")
    p = await patron(web1, chat)
    await partner.expect("offer", chat=chat["id"], timeout=15)  # nobody at home: the partners step
    await partner.send({"type": "accept", "chat": chat["id"]})
    await partner.expect("assigned", chat=chat["id"], timeout=15)

    home, _, _ = await librarian(web2, "fwh1", PASSWORD)  # on the other process
    told = await partner.expect("handback", chat=chat["id"], available=True, timeout=10)
    assert told["home_library"] == {"slug": "fw-home", "name": "Fw-Home Library"}
    await partner.send({"type": "hand_back", "chat": chat["id"], "note": "Asked about museum passes."})
    await partner.expect("unassigned", chat=chat["id"], reason="transferred", timeout=10)
    offer = await home.expect("offer", chat=chat["id"], timeout=10)
    assert offer["transfer_note"] == "Asked about museum passes."
    await home.send({"type": "accept", "chat": chat["id"]})
    await home.expect("assigned", chat=chat["id"], timeout=10)
    await home.send({"type": "end", "chat": chat["id"]})
    await home.expect("state", chat=chat["id"], state="ended", timeout=10)
    for sock in (p, partner, home):
        await sock.close()


def test_a_partner_librarian_hands_the_chat_back_when_home_is_available(stack: Stack) -> None:
    asyncio.run(_hand_back(stack))
    kinds = stack.sql("SELECT string_agg(kind, ',' ORDER BY id) FROM routing_traceevent "
                      "WHERE kind IN ('handback_offered', 'handed_back')")
    assert kinds == "handback_offered,handed_back"


async def _no_offer(sock: Socket, chat_id: str, within: float) -> bool:
    try:
        await sock.expect("offer", chat=chat_id, timeout=within)
    except (AssertionError, TimeoutError):
        return True
    return False


async def _returning(stack: Stack) -> tuple[str, str]:
    web1, web2 = stack.base("web1"), stack.base("web2")
    first_helper, _, cookies = await librarian(web1, "fwh2", PASSWORD)
    first = await start_chat(web1, "follow", "Do you have Spanish audiobooks?", library="fw-home", device=DEVICE,
                             remember=True)
    p = await patron(web1, first)
    await first_helper.expect("offer", chat=first["id"], timeout=15)
    await first_helper.send({"type": "accept", "chat": first["id"]})
    await first_helper.expect("assigned", chat=first["id"], timeout=10)
    await first_helper.send({"type": "end", "chat": first["id"]})
    await first_helper.expect("state", chat=first["id"], state="ended", timeout=10)
    await p.close()

    other, _, _ = await librarian(web2, "fwh1", PASSWORD)
    again = await start_chat(web2, "follow", "Me again: any in Catalan?", library="fw-home", device=DEVICE,
                             remember=True)
    p = await patron(web2, again)
    await first_helper.expect("offer", chat=again["id"], step="returning", timeout=10)
    assert await _no_offer(other, again["id"], within=1.5)  # the head start (3 s) is fwh2's alone
    await other.expect("offer", chat=again["id"], timeout=10)  # then the local step: everyone
    async with httpx.AsyncClient(base_url=web1, cookies=cookies, timeout=20) as c:
        info = (await c.get(f"/staff/api/chats/{again['id']}")).json()
    for sock in (p, first_helper, other):
        await sock.close()
    return first["id"], json.dumps(info["earlier"])


def test_a_returning_patron_is_offered_first_to_the_last_helper_who_sees_the_earlier_chat(stack: Stack) -> None:
    first_id, earlier = asyncio.run(_returning(stack))
    assert [e["chat"] for e in json.loads(earlier)] == [first_id]
