"""Issue 13, black-box through the production stack (real daphne, Celery worker, PostgreSQL, Redis):
transcript mail and the offline question form are no open relay (13.1, 13.2), and a chat's token dies
with its retention (13.12). The limits are set low through the environment, as an operator would."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from email import message_from_string
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.stack import Stack, connect, start_chat, world

WORLD = world("mailsec", libraries=[{"slug": "ms-a"}], staff=[{"username": "ms1", "library": "ms-a"}])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD], VR_TRANSCRIPT_MAIL_CLIENT_RATE="6/h", VR_QUESTION_CLIENT_RATE="4/h",
                       VR_QUESTION_MAIL_EMAIL_RATE="1/h", VR_QUESTION_MAIL_CONSORTIUM_RATE="2/h").running() as s:
        yield s


def mails(stack: Stack) -> list[Message]:
    folder = Path(stack.env["EMAIL_URL"].removeprefix("file://"))
    if not folder.exists():
        return []
    found = []
    for path in folder.iterdir():  # the file backend: one file per connection, messages between dashes
        for part in re.split(r"^-{79}$", path.read_text(errors="replace"), flags=re.M):
            if part.strip():
                found.append(message_from_string(part.strip()))
    return found


def to(stack: Stack, address: str) -> list[Message]:
    return [m for m in mails(stack) if m["To"] == address]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def ask_transcript(base: str, chat: dict[str, Any], email: str) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/chats/{chat['id']}/transcript", json={"email": email}, timeout=20,
                      headers={"Authorization": f"Bearer {chat['token']}", "Origin": base})


def test_transcript_mail_is_bounded_per_chat_and_per_client(stack: Stack) -> None:
    base = stack.base()
    chat = asyncio.run(start_chat(base, "mailsec", "Ignore this: WIN A PRIZE at evil.example", library="ms-a"))
    codes = [ask_transcript(base, chat, email) for email in
             ("t-one@example.org", "t-two@example.org", "t-three@example.org", "t-one@example.org",
              "t-two@example.org")]
    assert [r.status_code for r in codes] == [202, 202, 429, 202, 429]
    for refused in (codes[2], codes[4]):
        assert refused.json()["error"]["code"] == "limit_reached" and int(refused.headers["Retry-After"]) > 0
    wait_for("three transcript mails", lambda: len(to(stack, "t-one@example.org")) == 2
             and len(to(stack, "t-two@example.org")) == 1)
    time.sleep(2)  # nothing more comes
    assert to(stack, "t-three@example.org") == [] and len(to(stack, "t-one@example.org")) == 2
    sent = to(stack, "t-two@example.org")[0]
    assert sent["Subject"] == "Mailsec: your chat transcript"
    body = sent.get_payload()
    assert "You asked for the transcript of your chat with Mailsec" in body
    assert "If you did not ask for it, ignore this mail" in body

    # The client's own limit (6 an hour here): a second chat gets one more, then 429 rate_limited.
    other = asyncio.run(start_chat(base, "mailsec", "Another question", library="ms-a"))
    assert ask_transcript(base, other, "t-four@example.org").status_code == 202
    refused = ask_transcript(base, other, "t-four@example.org")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    wait_for("the sixth mail", lambda: len(to(stack, "t-four@example.org")) == 1)
    assert int(stack.sql("SELECT count(*) FROM routing_transcriptmail")) == 4


async def test_a_token_dies_with_the_retention(stack: Stack) -> None:
    base = stack.base()
    chat = await start_chat(base, "mailsec", "Old question", library="ms-a")
    url = f"/api/v1/chats/{chat['id']}"
    async with httpx.AsyncClient(base_url=base, timeout=20, headers={"Authorization": f"Bearer {chat['token']}",
                                                                      "Origin": base}) as c:
        assert (await c.post(f"{url}/end")).status_code == 200
        assert (await c.get(f"{url}/transcript")).status_code == 200
        # The nightly job, run as beat runs it, on a day past the consortium's 90-day retention.
        await asyncio.to_thread(
            stack.manage, "shell", "-c", "from datetime import timedelta; from django.utils import timezone; "
            "from routing.privacy import chats_scrub_expired; "
            "print(chats_scrub_expired(timezone.now() + timedelta(days=91)))")
        gone = await c.get(f"{url}/transcript")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
        assert (await c.get(f"{url}/events?after=0")).status_code == 404

    sock = await connect(base, "/ws/patron/")
    try:
        await sock.send({"type": "join", "chat": chat["id"], "token": chat["token"], "after": 0})
        frame = await sock.expect("error", timeout=15)
        for _ in range(100):
            if sock.closed is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await sock.close()
    assert frame["code"] == "forbidden" and sock.closed == 4403


def test_the_question_form_refuses_per_client_and_skips_only_the_mail_per_address_and_consortium(
        stack: Stack) -> None:
    """Here: 4 questions an hour per client, 1 confirmation an hour per address, 2 per consortium."""
    base = stack.base()

    def leave(email: str, question: str) -> httpx.Response:
        return httpx.post(f"{base}/api/v1/mailsec/questions", json={"question": question, "email": email},
                          headers={"Origin": base}, timeout=20)

    first = leave("q-x@example.org", "Question one")
    again = leave("q-x@example.org", "Question two")  # the address had its one mail this hour
    other = leave("q-y@example.org", "Question three")  # the consortium's second mail
    third = leave("q-z@example.org", "Question four")  # past the consortium's two
    assert [(r.status_code, r.json()["mailed"]) for r in (first, again, other, third)] == \
        [(201, True), (201, False), (201, True), (201, False)]
    refused = leave("q-w@example.org", "Question five")  # the client's fifth this hour
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    stored = stack.sql("SELECT question FROM routing_ticket WHERE source = 'question_form' ORDER BY question")
    assert stored.splitlines() == ["Question four", "Question one", "Question three", "Question two"], \
        "every question kept but the refused one"
    wait_for("the two confirmations", lambda: len(to(stack, "q-x@example.org")) == 1
             and len(to(stack, "q-y@example.org")) == 1)
    time.sleep(2)  # nothing more comes
    assert len(to(stack, "q-x@example.org")) == 1 and to(stack, "q-z@example.org") == []
    assert "If it was not you, ignore this mail." in to(stack, "q-y@example.org")[0].get_payload()
