"""Issue 15, "Done when": texting through the production stack (real daphne, Celery worker, timer,
PostgreSQL, Redis) and a local fake of Twilio's REST API (tests/texting/fake_twilio.py), with webhooks
signed as Twilio signs them, by the twilio package's own RequestValidator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.live.stack import PASSWORD, Stack, free_port, librarian, world
from tests.texting.fake_twilio import FakeTwilio

SID = "AC" + "1" * 32
TOKEN = "live-auth-token-" + "x" * 16
LIB_NUMBER = "+13055550100"
QUIET_NUMBER = "+13055550200"  # a library nobody answers for
CONSORTIUM_NUMBER = "+18505550100"

WORLD = world("smslive", libraries=[{"slug": "sl-a", "sms_number": LIB_NUMBER},
                                    {"slug": "sl-b", "sms_number": QUIET_NUMBER}],
              staff=[{"username": "sl1", "library": "sl-a"}])
WORLD["consortium"]["sms_number"] = CONSORTIUM_NUMBER


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(SID, TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(fake: FakeTwilio) -> Iterator[Stack]:
    # Retries sooner than the default 3, 15, 60... s, as an operator may set them: the test waits less.
    s = Stack.prepare([WORLD], TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_API_BASE=fake.base_url,
                      TWILIO_TIMEOUT="2", TWILIO_RETRY_DELAYS="1,2,4,8,16")
    s.ports["web1"] = free_port()
    s.env["PUBLIC_URL"] = f"http://127.0.0.1:{s.ports['web1']}"  # the address Twilio calls, and signs
    with s.running() as running:
        yield running


_sids = iter(range(1, 1_000_000))


def text(stack: Stack, body: str, *, phone: str, to: str = LIB_NUMBER, sid: str | None = None,
         token: str = TOKEN) -> tuple[httpx.Response, str]:
    sid = sid or f"SMlive{next(_sids):026d}"
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": SID, "From": phone, "To": to, "Body": body,
              "NumMedia": "0", "ApiVersion": "2010-04-01"}
    url = stack.env["PUBLIC_URL"] + "/sms/twilio/"
    signature = RequestValidator(token).compute_signature(url, params)
    response = httpx.post(stack.base() + "/sms/twilio/", data=params, headers={"X-Twilio-Signature": signature},
                          timeout=20)
    return response, sid


def count(stack: Stack, table: str, where: str = "true") -> int:
    return int(stack.sql(f"SELECT count(*) FROM {table} WHERE {where}"))


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_text_reaches_the_librarian_and_the_reply_reaches_the_phone_once(stack: Stack, fake: FakeTwilio) -> None:
    phone = "+13055550101"

    async def scenario() -> None:
        sock, _hello, _ = await librarian(stack.base(), "sl1", PASSWORD)
        response, sid = await asyncio.to_thread(text, stack, "Do you have museum passes?", phone=phone)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
        offer = await sock.expect("offer", timeout=15)
        assert offer["channel"] == "sms" and offer["patron"]["name"] == "...0101"
        assert offer["home_library"]["slug"] == "sl-a" and offer["question"] == "Do you have museum passes?"
        chat = offer["chat"]

        # Twilio retries the same MessageSid (it did not see our answer): stored once.
        again, _ = await asyncio.to_thread(text, stack, "Do you have museum passes?", phone=phone, sid=sid)
        assert again.status_code == 200
        assert count(stack, "texting_inboundtext", f"message_sid = '{sid}'") == 1
        assert count(stack, "routing_chat", "channel = 'sms'") == 1
        assert count(stack, "routing_message", f"chat_id = '{chat}'") == 1

        await sock.send({"type": "accept", "chat": chat})
        assigned = await sock.expect("assigned", chat=chat, timeout=10)
        assert assigned["channel"] == "sms"
        before = len(fake.sent)
        await sock.send({"type": "message", "chat": chat, "body": "Yes, at the front desk.", "client_id": "r1"})
        await sock.send({"type": "message", "chat": chat, "body": "Yes, at the front desk.", "client_id": "r1"})
        delivered = await sock.expect("delivery", chat=chat, timeout=20)
        assert delivered["status"] == "delivered"
        got = await asyncio.to_thread(fake.wait_for, before + 1)
        assert (got[before].to, got[before].from_, got[before].body) == (phone, LIB_NUMBER, "Yes, at the front desk.")

        # Too long for a text: refused, with an error frame the console shows.
        await sock.send({"type": "message", "chat": chat, "body": "x" * 1601, "client_id": "r2"})
        error = await sock.expect("error", timeout=10)
        assert error["code"] == "invalid" and error["client_id"] == "r2"  # the protocol's code; the console
        assert "at most 1600 characters" in error["detail"]  # shows the detail on the refused line

        # The provider answers 500 twice, then 201: the reply reaches the phone once.
        fake.answer_next(500, 500)
        requests = fake.requests
        await sock.send({"type": "message", "chat": chat, "body": "Anything else?", "client_id": "r3"})
        delivered = await sock.expect("delivery", chat=chat, timeout=30)
        assert delivered["status"] == "delivered"
        assert fake.requests - requests == 3
        await asyncio.sleep(2)  # nothing more comes
        assert [t.body for t in fake.sent[before:]] == ["Yes, at the front desk.", "Anything else?"]
        assert stack.sql("SELECT status || ' ' || tries FROM texting_outboundtext WHERE body = 'Anything else?'") \
            == "sent 3"

        # STOP: the chat ends (opted_out) and the number is silenced.
        await asyncio.to_thread(text, stack, "STOP", phone=phone)
        unassigned = await sock.expect("unassigned", chat=chat, timeout=10)
        assert unassigned["reason"] == "ended"
        assert stack.sql(f"SELECT state || ' ' || end_reason FROM routing_chat WHERE id = '{chat}'") \
            == "ended opted_out"
        sent_before = len(fake.sent)
        await asyncio.to_thread(text, stack, "HELP", phone=phone)
        wait_for("the HELP answer suppressed", lambda: stack.sql(
            "SELECT status FROM texting_outboundtext WHERE kind = 'help'") == "suppressed")
        await asyncio.sleep(1)
        assert len(fake.sent) == sent_before
        await sock.close()

    asyncio.run(scenario())


def test_an_invalid_signature_is_403_and_nothing_is_stored(stack: Stack) -> None:
    before = [count(stack, t) for t in ("texting_inboundtext", "texting_smspatron", "routing_chat")]
    response, _ = text(stack, "Hello?", phone="+13055550102", token="not-the-auth-token")
    assert response.status_code == 403
    unsigned = httpx.post(stack.base() + "/sms/twilio/", data={"MessageSid": "SMx", "From": "+1305", "To": LIB_NUMBER,
                                                               "Body": "hi"}, timeout=20)
    assert unsigned.status_code == 403
    assert [count(stack, t) for t in ("texting_inboundtext", "texting_smspatron", "routing_chat")] == before


def test_a_text_when_nobody_is_on_duty_gets_the_hours_and_becomes_a_follow_up(stack: Stack,
                                                                                fake: FakeTwilio) -> None:
    phone = "+13055550103"
    before = len(fake.sent)
    response, _ = text(stack, "Can I renew by text?", phone=phone, to=QUIET_NUMBER)
    assert response.status_code == 200
    got = fake.wait_for(before + 1)
    reply = got[before]
    assert (reply.to, reply.from_) == (phone, QUIET_NUMBER)
    assert "nobody can answer right now" in reply.body and "/ask/smslive/sl-b/" in reply.body
    assert stack.sql("SELECT c.state || ' ' || t.source || ' ' || l.slug FROM routing_ticket t "
                     "JOIN routing_chat c ON c.id = t.chat_id JOIN libraries_library l ON l.id = t.library_id "
                     "WHERE t.question = 'Can I renew by text?'") == "unstaffed sms sl-b"
