"""Mentors and the staff back-channel through the production stack (two daphne processes, the timer,
PostgreSQL, Redis): a whisper from a mentor on one process reaches the librarian and never the
patron (socket or long-poll, on either process); a take-over racing the librarian's own end, each on
its own process, has one outcome; a mention reaches a librarian of another library and nobody
outside the consortium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import PASSWORD, Socket, Stack, librarian, patron, start_chat, world

WORLD = world("mentoring", libraries=[{"slug": "ml-a"}, {"slug": "ml-b"}],
              staff=[{"username": "mla1", "library": "ml-a"}, {"username": "mlb1", "library": "ml-b"},
                     {"username": "mlb2", "library": "ml-b"},
                     {"username": "mlc", "library": "ml-b", "role": "coordinator"}])
ELSEWHERE = world("mentoring-far", libraries=[{"slug": "mf-a"}], staff=[{"username": "mlfar1", "library": "mf-a"}])

FLAGS = """
from libraries.models import StaffProfile
StaffProfile.objects.filter(user__username="mlb1").update(is_mentor=True)
"""
WHISPER = "Ask for the year of the census first"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD, ELSEWHERE]).running(webs=2, timer=1, worker=0, beat=0) as s:
        s.manage("shell", "-c", FLAGS)
        yield s


async def held_chat(base: str, lib: Socket, question: str) -> dict[str, object]:
    chat = await start_chat(base, "mentoring", question, library="ml-a")
    await lib.expect("offer", chat=chat["id"], timeout=15)
    await lib.send({"type": "accept", "chat": chat["id"]})
    await lib.expect("assigned", chat=chat["id"], timeout=15)
    return chat


def test_a_whisper_from_another_process_reaches_the_librarian_and_never_the_patron(stack: Stack) -> None:
    web1, web2 = stack.base("web1"), stack.base("web2")

    async def run() -> None:
        lib, _, _ = await librarian(web1, "mla1", PASSWORD)
        mentor, _, _ = await librarian(web2, "mlb1", PASSWORD, available=False)
        other_mentor, _, _ = await librarian(web1, "mlc", PASSWORD, available=False)  # a coordinator
        chat = await held_chat(web1, lib, "Where are the 1910 census records?")
        pat = await patron(web2, chat)
        for watcher in (mentor, other_mentor):
            await watcher.send({"type": "watch", "chat": chat["id"], "after": 0})
            watching = await watcher.expect("watching", chat=chat["id"], timeout=10)
        last = int(watching["last_seq"])
        async with httpx.AsyncClient(timeout=40) as http:
            # The patron's long-poll on the first process, waiting from before the whisper (with the state it
            # knows, so that only news answers it).
            events, auth = f"{web1}/api/v1/chats/{chat['id']}/events", {"Authorization": f"Bearer {chat['token']}",
                                                                        "Origin": web1}
            known = (await http.get(f"{events}?after={last}", headers=auth)).json()["state_key"]
            poll = asyncio.create_task(http.get(f"{events}?after={last}&state={known}", headers=auth))
            await asyncio.sleep(0.5)
            await mentor.send({"type": "whisper", "chat": chat["id"], "body": WHISPER, "client_id": "w1"})
            told = await lib.expect("message", client_id="w1", timeout=10)
            assert told["whisper"] is True and told["name"] == "MLB1"
            await lib.send({"type": "message", "chat": chat["id"], "body": "Which year?", "client_id": "l1"})
            await pat.expect("message", client_id="l1", timeout=10)
            polled = (await poll).text
            # The other mentor, on the other process: the librarian's line, numbered just past the whisper.
            after = await other_mentor.expect("message", client_id="l1", timeout=10)
            assert after["seq"] == told["seq"] + 1
        assert "Which year?" in polled and WHISPER not in polled
        assert WHISPER not in json.dumps(pat.seen) and WHISPER not in json.dumps(other_mentor.seen)
        trace = stack.sql(f"SELECT string_agg(kind, ',' ORDER BY id) FROM routing_traceevent "
                          f"WHERE chat_id = '{chat['id']}'")
        assert "watched" in trace and "whispered" in trace
        await lib.send({"type": "end", "chat": chat["id"]})
        await lib.expect("unassigned", chat=chat["id"], timeout=10)
        for sock in (lib, mentor, other_mentor, pat):
            await sock.close()

    asyncio.run(run())


def test_a_take_over_racing_the_librarians_end_has_one_outcome(stack: Stack) -> None:
    web1, web2 = stack.base("web1"), stack.base("web2")

    async def run() -> list[str]:
        lib, _, cookies = await librarian(web1, "mla1", PASSWORD)
        other_console, _, _ = await librarian(web2, "mla1", PASSWORD, cookies=cookies, available=False)
        coordinator, _, _ = await librarian(web2, "mlc", PASSWORD, available=False)
        mentor, _, _ = await librarian(web2, "mlb1", PASSWORD, available=False)
        outcomes = []
        for i in range(4):
            chat = await held_chat(web1, lib, f"Race {i}: a question about maps")
            if i % 2 == 0:  # coordinator authority: the take-over and the end at once, on two processes
                await asyncio.gather(lib.send({"type": "end", "chat": chat["id"]}),
                                     coordinator.send({"type": "take_over", "chat": chat["id"]}))
                taker = coordinator
            else:  # consent given on the librarian's other console while the first one ends the chat
                await mentor.send({"type": "take_over", "chat": chat["id"]})
                await other_console.expect("takeover_asked", chat=chat["id"], timeout=10)
                await asyncio.gather(lib.send({"type": "end", "chat": chat["id"]}),
                                     other_console.send({"type": "takeover_answer", "chat": chat["id"],
                                                         "consent": True}))
                taker = mentor
            lost = await lib.expect("unassigned", chat=chat["id"], timeout=10)
            row = stack.sql(f"SELECT c.state, u.username FROM routing_chat c JOIN libraries_staffprofile s "
                            f"ON s.id = c.librarian_id JOIN auth_user u ON u.id = s.user_id "
                            f"WHERE c.id = '{chat['id']}'")
            kinds = stack.sql(f"SELECT string_agg(kind, ',' ORDER BY id) FROM routing_traceevent "
                              f"WHERE chat_id = '{chat['id']}'").split(",")
            if lost["reason"] == "taken_over":
                # Taken over whole: the chat goes on with the taker, and the librarian's end was refused.
                assert row == f"active|{'mlc' if taker is coordinator else 'mlb1'}" and "ended" not in kinds
                assert kinds.count("taken_over") == 1
                await taker.expect("assigned", chat=chat["id"], timeout=10)
                await taker.send({"type": "end", "chat": chat["id"]})
                await taker.expect("unassigned", chat=chat["id"], timeout=10)
            else:
                # Ended by the librarian: nobody took it over, and the taker heard why.
                assert lost["reason"] == "ended" and row == "ended|mla1" and "taken_over" not in kinds
                assert kinds.count("ended") == 1
                if taker is coordinator:
                    failed = await coordinator.expect("takeover_failed", chat=chat["id"], timeout=10)
                    assert failed["reason"] == "ended"
            outcomes.append(lost["reason"])
        for sock in (lib, other_console, coordinator, mentor):
            await sock.close()
        return outcomes

    outcomes = asyncio.run(run())
    print("outcomes of the races:", outcomes)
    assert len(outcomes) == 4 and set(outcomes) <= {"taken_over", "ended"}


def test_a_mention_reaches_another_library_and_nobody_outside_the_consortium(stack: Stack) -> None:
    web1, web2 = stack.base("web1"), stack.base("web2")

    async def run() -> None:
        lib, _, _ = await librarian(web1, "mla1", PASSWORD)
        colleague, _, _ = await librarian(web2, "mlb2", PASSWORD, available=False)
        outsider, _, _ = await librarian(web1, "mlfar1", PASSWORD, available=False)
        chat = await held_chat(web1, lib, "Do you lend telescopes?")
        await lib.send({"type": "message", "chat": chat["id"], "internal": True, "client_id": "n1",
                        "body": "@mlb2 does ml-b still lend telescopes? cc @mlfar1"})
        told = await colleague.expect("mentioned", chat=chat["id"], timeout=10)
        assert told["url"] == f"/staff/mentor/{chat['id']}/" and told["by"]["name"] == "MLA1"
        await colleague.send({"type": "watch", "chat": chat["id"], "after": 0})
        await colleague.expect("watching", chat=chat["id"], timeout=10)
        await colleague.send({"type": "whisper", "chat": chat["id"], "body": "Yes, two of them.", "client_id": "c"})
        assert (await lib.expect("message", client_id="c", timeout=10))["whisper"] is True
        await asyncio.sleep(1)
        assert [f for f in outsider.seen if f.get("type") == "mentioned"] == []
        await outsider.send({"type": "watch", "chat": chat["id"], "after": 0})
        assert (await outsider.expect("error", timeout=10))["code"] == "not_found"
        await lib.send({"type": "end", "chat": chat["id"]})
        await lib.expect("unassigned", chat=chat["id"], timeout=10)
        for sock in (lib, colleague, outsider):
            await sock.close()

    asyncio.run(run())
    assert stack.sql("SELECT string_agg(u.username, ',') FROM routing_mention m JOIN libraries_staffprofile s "
                     "ON s.id = m.librarian_id JOIN auth_user u ON u.id = s.user_id") == "mlb2"
