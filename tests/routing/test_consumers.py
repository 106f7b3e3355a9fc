"""The patron and staff sockets, frame by frame, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from consortium.asgi import application as asgi_application
from routing.models import Chat, Message
from routing.services import chats, sweeps
from routing.ws_urls import websocket_urlpatterns
from tests.routing.socket_helpers import (
    ORIGIN,
    a1_holding_a_chat,
    accept_offer,
    available,
    expect,
    patron_socket,
    socket_world,
    staff_socket,
    start_chat,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]


async def test_patron_join_gets_joined_state_and_history() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    comm = await patron_socket(chat.pk, token)
    assert await comm.receive_json_from() == {"type": "joined", "chat": chat.pk}
    state = await comm.receive_json_from()
    assert state["type"] == "state" and state["state"] == "unstaffed"
    first = await comm.receive_json_from()
    assert first["type"] == "message" and first["seq"] == 1 and first["body"] == "Do you have museum passes?"
    await comm.disconnect()


async def test_wrong_token_and_frames_before_join_are_refused_with_4403() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, _token = await start_chat(w)
    comm = await patron_socket(chat.pk, "not-the-token")
    assert (await comm.receive_json_from())["code"] == "forbidden"
    assert (await comm.receive_output())["code"] == 4403
    early = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/patron/", headers=[ORIGIN])
    await early.connect()
    await early.send_json_to({"type": "message", "body": "hi", "client_id": "x"})
    assert (await early.receive_json_from())["code"] == "forbidden"
    assert (await early.receive_output())["code"] == 4403


async def test_patron_from_an_origin_the_consortium_does_not_allow_is_refused() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    evil = await patron_socket(chat.pk, token, origin=b"https://evil.example.com")
    assert (await evil.receive_json_from())["code"] == "forbidden"
    allowed = await patron_socket(chat.pk, token, origin=b"https://library.example.org")
    assert (await allowed.receive_json_from())["type"] == "joined"
    await allowed.disconnect()


async def test_bad_frames_get_errors_and_the_socket_stays_open() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    comm = await patron_socket(chat.pk, token)
    await expect(comm, "message", seq=1)
    await comm.send_to(text_data="not json")
    assert (await expect(comm, "error"))["code"] == "invalid"
    await comm.send_json_to({"type": "nope"})
    assert (await expect(comm, "error"))["code"] == "invalid"
    await comm.send_json_to({"type": "message", "client_id": "c1"})
    err = await expect(comm, "error")
    assert err["code"] == "invalid" and err["client_id"] == "c1" and "body" in err["detail"]
    await comm.send_json_to({"type": "message", "body": "x" * 4001, "client_id": "c2"})
    assert (await expect(comm, "error"))["code"] == "too_large"
    await comm.send_to(text_data=json.dumps({"type": "message", "body": "y" * 70000}))
    assert (await expect(comm, "error"))["code"] == "too_large"
    await comm.send_json_to({"type": "ping"})
    await expect(comm, "pong")
    assert await database_sync_to_async(Message.objects.filter(chat_id=chat.pk).count)() == 1
    await comm.disconnect()


async def test_a_flooding_client_is_rate_limited_then_closed_with_4429() -> None:
    w = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    comm = await patron_socket(chat.pk, token)
    await expect(comm, "message", seq=1)
    for _ in range(200):
        await comm.send_to(text_data="garbage")
    codes = []
    while True:
        out = await comm.receive_output(timeout=3)
        if out["type"] == "websocket.close":
            assert out["code"] == 4429
            break
        codes.append(json.loads(out["text"])["code"])
    assert "rate_limited" in codes


async def test_staff_socket_needs_a_session_and_an_allowed_origin() -> None:
    w = await database_sync_to_async(socket_world)()
    anonymous = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/staff/", headers=[ORIGIN])
    await anonymous.connect()
    assert (await anonymous.receive_json_from())["code"] == "forbidden"
    assert (await anonymous.receive_output())["code"] == 4401
    foreign = await staff_socket(w["a1"], origin=b"https://evil.example.com")
    assert (await foreign.receive_json_from())["code"] == "forbidden"
    assert (await foreign.receive_output())["code"] == 4403


async def test_hello_then_offer_accept_and_a_conversation_both_ways() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    hello = await available(a1)
    assert hello["librarian"]["library"] == "alpha" and hello["presence"] == "away" and hello["queues"] == ["alpha"]
    chat, token = await start_chat(w, name="Pat")
    offer = await expect(a1, "offer", chat=chat.pk)
    assert offer["step"] == "local" and offer["mode"] == "broadcast" and offer["home_library"]["slug"] == "alpha"
    patron = await patron_socket(chat.pk, token)
    await expect(patron, "message", seq=1)
    await a1.send_json_to({"type": "accept", "chat": chat.pk})
    assigned = await expect(a1, "assigned", chat=chat.pk)
    assert assigned["patron"] == {"name": "Pat"} and assigned["home_library"]["slug"] == "alpha"
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": 0})  # as the console does: the history
    assert (await expect(a1, "message", seq=1))["sender"] == "patron"  # the question, first
    state = await expect(patron, "state", state="active")
    assert state["librarian"]["library"]["slug"] == "alpha"

    await patron.send_json_to({"type": "message", "body": "<b>hi</b>", "client_id": "p1"})
    mine = await expect(patron, "message", client_id="p1")
    theirs = await expect(a1, "message", client_id="p1")
    assert mine["seq"] == theirs["seq"] and theirs["body"] == "<b>hi</b>" and theirs["sender"] == "patron"
    await patron.send_json_to({"type": "message", "body": "<b>hi</b>", "client_id": "p1"})
    # Sent again (a client that missed the echo): stored once, and the stored message sent again as
    # the contract says; since this socket sent that seq already, marked `resent` (docs/protocol.md).
    again = await patron.receive_json_from(timeout=3)
    assert again == {**mine, "resent": True}
    await a1.send_json_to({"type": "typing", "chat": chat.pk})
    assert (await expect(patron, "typing"))["sender"] == "librarian"
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Hello!", "client_id": "l1"})
    reply = await expect(patron, "message", client_id="l1")
    assert reply["sender"] == "librarian" and reply["seq"] > mine["seq"]
    count = await database_sync_to_async(Message.objects.filter(chat_id=chat.pk, client_id="p1").count)()
    assert count == 1
    await patron.disconnect()
    await a1.disconnect()


async def test_two_accepts_one_winner_and_the_loser_is_told() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, a2 = await staff_socket(w["a1"]), await staff_socket(w["a2"])
    await available(a1)
    await available(a2)
    chat, _ = await start_chat(w)
    await expect(a1, "offer", chat=chat.pk)
    await expect(a2, "offer", chat=chat.pk)
    await a1.send_json_to({"type": "accept", "chat": chat.pk})
    await expect(a1, "assigned", chat=chat.pk)
    assert (await expect(a2, "offer_withdrawn", chat=chat.pk))["reason"] == "accepted"
    await a2.send_json_to({"type": "accept", "chat": chat.pk})
    assert (await expect(a2, "accept_failed", chat=chat.pk))["reason"] == "taken"
    await a1.disconnect()
    await a2.disconnect()


async def test_decline_withdraws_the_offer_for_that_librarian() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)
    chat, _ = await start_chat(w)
    await expect(a1, "offer", chat=chat.pk)
    await a1.send_json_to({"type": "decline", "chat": chat.pk})
    assert (await expect(a1, "offer_withdrawn", chat=chat.pk))["reason"] == "declined"
    await a1.send_json_to({"type": "accept", "chat": chat.pk})
    assert (await expect(a1, "accept_failed", chat=chat.pk))["reason"] == "not_offered"
    await a1.disconnect()


async def test_librarian_resumes_with_join_after_and_gets_exactly_what_was_missed() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, assigned = await a1_holding_a_chat(w)
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": assigned["last_seq"]})  # as the console does
    patron = await patron_socket(chat.pk, token)
    await patron.send_json_to({"type": "message", "body": "one", "client_id": "m1"})
    seen = await expect(a1, "message", client_id="m1")
    await a1.disconnect()
    for i in (2, 3):
        await patron.send_json_to({"type": "message", "body": f"n{i}", "client_id": f"m{i}"})
        await expect(patron, "message", client_id=f"m{i}")
    back = await staff_socket(w["a1"])
    hello = await expect(back, "hello")
    assert hello["presence"] == "available", "presence is kept across a reconnect within the grace"
    assert [c["chat"] for c in hello["chats"]] == [chat.pk]
    await back.send_json_to({"type": "join", "chat": chat.pk, "after": seen["seq"]})
    missed = [await expect(back, "message"), await expect(back, "message")]
    assert [m["body"] for m in missed] == ["n2", "n3"]
    assert [m["seq"] for m in missed] == [seen["seq"] + 1, seen["seq"] + 2]
    assert await back.receive_nothing(0.3)
    await patron.disconnect()
    await back.disconnect()


async def test_a_gap_in_live_messages_is_filled_from_the_database() -> None:
    """The channel layer may drop an event: the consumer notices the seq gap and sends what is missing."""
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)
    chat, token = await start_chat(w)
    patron = await patron_socket(chat.pk, token)
    await expect(patron, "message", seq=1)
    # Store two messages without ringing the doorbell, as if the layer had dropped both events.
    await database_sync_to_async(lambda: [
        Message.objects.create(chat_id=chat.pk, seq=s, sender="system", body=f"lost {s}", at=timezone.now())
        for s in (2, 3)])()
    await database_sync_to_async(Chat.objects.filter(pk=chat.pk).update)(last_seq=3)
    await database_sync_to_async(chats.message_post)(chat.pk, sender="patron", body="four", client_id="c4",
                                                        now=timezone.now())
    got = [await expect(patron, "message") for _ in range(3)]
    assert [g["seq"] for g in got] == [2, 3, 4]
    await patron.disconnect()
    await a1.disconnect()


async def test_transfer_refused_when_nobody_is_there_and_the_chat_stays() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, _, _ = await a1_holding_a_chat(w)
    await a1.send_json_to({"type": "transfer", "chat": chat.pk, "to": {"queue": "beta"}, "note": "n"})
    assert (await expect(a1, "transfer_failed", chat=chat.pk))["reason"] == "nobody"
    await a1.send_json_to({"type": "transfer", "chat": chat.pk, "to": {"queue": "nowhere"}})
    assert (await expect(a1, "transfer_failed", chat=chat.pk))["reason"] == "not_found"
    await a1.send_json_to({"type": "transfer", "chat": chat.pk, "to": {"queue": "alpha"}})
    assert (await expect(a1, "transfer_failed", chat=chat.pk))["reason"] == "same_queue"
    refreshed = await database_sync_to_async(Chat.objects.get)(pk=chat.pk)
    assert refreshed.state == "active" and refreshed.librarian_id == w["a1"].pk
    await a1.disconnect()


async def test_transfer_to_a_present_librarian_with_a_note_only_they_see() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, b1 = await staff_socket(w["a1"]), await staff_socket(w["b1"])
    await available(a1)
    await available(b1)
    chat, token = await start_chat(w)
    await accept_offer(a1, chat)
    patron = await patron_socket(chat.pk, token)
    await a1.send_json_to({"type": "transfer", "chat": chat.pk, "to": {"librarian": "b1"}, "note": "wants ILL"})
    offer = await expect(b1, "offer", chat=chat.pk)
    assert offer["transfer_note"] == "wants ILL" and offer["step"] == "transfer"
    told = await expect(patron, "message", sender="system")
    while "joined" in told["body"]:
        told = await expect(patron, "message", sender="system")
    assert "transferred" in told["body"] and "ILL" not in told["body"]
    await b1.send_json_to({"type": "accept", "chat": chat.pk})
    await expect(b1, "assigned", chat=chat.pk)
    await patron.disconnect()
    await a1.disconnect()
    await b1.disconnect()


async def test_refer_answers_with_a_ticket_and_end_ends() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w, email="pat@example.org")
    await a1.send_json_to({"type": "refer", "chat": chat.pk, "note": "needs the archivist"})
    referred = await expect(a1, "referred", chat=chat.pk)
    assert referred["ticket"]
    patron = await patron_socket(chat.pk, token)
    await patron.send_json_to({"type": "end"})
    assert (await expect(patron, "state", state="ended"))["chat"] == chat.pk
    await patron.disconnect()
    await a1.disconnect()


async def test_unknown_staff_frame_and_acting_on_a_chat_not_held() -> None:
    w = await database_sync_to_async(socket_world)()
    a1 = await staff_socket(w["a1"])
    await available(a1)
    chat, _ = await start_chat(w, library_slug="beta")
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "sneaky", "client_id": "s1"})
    assert (await expect(a1, "error"))["code"] == "forbidden"
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": 0})
    assert (await expect(a1, "error"))["code"] == "not_found"
    await a1.send_json_to({"type": "presence", "status": "asleep"})
    assert (await expect(a1, "error"))["code"] == "invalid"
    await a1.disconnect()


async def _signed_in_socket(username: str) -> tuple[WebsocketCommunicator, Any]:
    from django.test import Client

    client = Client()
    assert await database_sync_to_async(client.login)(username=username, password="Test-password-1")
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(asgi_application, "/ws/staff/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await comm.connect()
    assert connected
    await expect(comm, "hello")
    return comm, client


async def test_signing_out_closes_that_sessions_staff_sockets() -> None:
    w = await database_sync_to_async(socket_world)()
    comm, client = await _signed_in_socket(w["a1"].user.username)
    other, _ = await _signed_in_socket(w["a1"].user.username)  # the same librarian on another device
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert (await expect(comm, "error"))["detail"] == "signed out"
    assert (await comm.receive_output(timeout=5))["code"] == 4401
    await other.send_json_to({"type": "ping"})
    await expect(other, "pong")
    await other.disconnect()


async def test_a_session_that_expires_closes_the_socket() -> None:
    from django.contrib.sessions.models import Session

    w = await database_sync_to_async(socket_world)()
    comm, client = await _signed_in_socket(w["a1"].user.username)
    soon = timezone.now() + timezone.timedelta(seconds=1)
    await database_sync_to_async(Session.objects.filter(session_key=client.session.session_key).update)(
        expire_date=soon)
    # A session's expiry is fixed when it is written; the socket reads it when it connects.
    await comm.disconnect()
    comm2 = WebsocketCommunicator(asgi_application, "/ws/staff/",
                                  headers=[ORIGIN, (b"cookie", f"sessionid={client.session.session_key}".encode())])
    await comm2.connect()
    await expect(comm2, "hello")
    assert (await expect(comm2, "error", timeout=5))["detail"] == "your session has ended"
    assert (await comm2.receive_output(timeout=5))["code"] == 4401


# --- the end of the shift -----------------------------------------------------------------------------


def _off_duty_on_the_rota(w: dict[str, Any]) -> None:
    """b1 has a rota shift, but not today nor tomorrow: available now is overtime, for shift_extension."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from libraries import rota
    from libraries.models import Queue

    consortium = w["consortium"]
    consortium.shift_extension = 600
    consortium.save(update_fields=["shift_extension"])
    statewide = Queue.objects.get(consortium=consortium, slug="statewide")
    weekday = (timezone.now().astimezone(ZoneInfo(statewide.timezone)).weekday() + 3) % 7
    shift = rota.shift_create(statewide, timezone.now() - timedelta(days=8), weekday=weekday,
                              start_minute=600, end_minute=660)
    rota.shift_assign(shift, w["b1"], timezone.now() - timedelta(days=8))


def _seconds_from_now(iso: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(iso) - timezone.now()).total_seconds()


async def test_shift_frames_stay_on_the_timers_warning_and_away_and_hello_after_a_reconnect() -> None:
    from datetime import datetime, timedelta

    w = await database_sync_to_async(socket_world)()
    await database_sync_to_async(_off_duty_on_the_rota)(w)
    b1 = await staff_socket(w["b1"])
    hello = await expect(b1, "hello")
    assert hello["presence"] == "away" and hello["shift"] == {"type": "shift", "ends_at": None}
    await b1.send_json_to({"type": "presence", "status": "available"})
    await expect(b1, "presence", status="available")
    shift = await b1.receive_json_from()  # right after the answer
    assert shift["type"] == "shift" and 590 < _seconds_from_now(shift["ends_at"]) <= 600

    await b1.send_json_to({"type": "stay_on", "minutes": 30})
    stayed = await expect(b1, "shift")
    assert 1790 < _seconds_from_now(stayed["ends_at"]) <= 1800
    end = datetime.fromisoformat(stayed["ends_at"])

    # The timer, at the warning and at the end (its clock injected), tells every console of hers.
    await database_sync_to_async(sweeps.due_sweep)(end - timedelta(seconds=300))
    warning = await expect(b1, "shift_ending")
    assert warning == {"type": "shift_ending", "ends_at": stayed["ends_at"], "extend_by": 600}
    again = await staff_socket(w["b1"])
    assert (await expect(again, "hello"))["shift"] == warning, "a console connecting now shows the warning"
    await database_sync_to_async(sweeps.due_sweep)(end)
    for comm in (b1, again):
        gone = await expect(comm, "presence")
        assert gone == {"type": "presence", "status": "away", "reason": "shift_end", "ends_at": stayed["ends_at"]}
    await again.disconnect()
    await b1.disconnect()


async def test_a_bad_or_pointless_stay_on_gets_an_invalid_error_and_the_socket_stays_open() -> None:
    w = await database_sync_to_async(socket_world)()
    await database_sync_to_async(_off_duty_on_the_rota)(w)
    b1 = await staff_socket(w["b1"])
    await expect(b1, "hello")
    await b1.send_json_to({"type": "stay_on"})
    away = await expect(b1, "error")
    assert away["code"] == "invalid" and "away" in away["detail"]
    await b1.send_json_to({"type": "presence", "status": "available"})
    await expect(b1, "shift")
    for minutes in ("lots", 0, 241, True):  # a bad frame costs 5 of the 30 tokens: few enough here
        await b1.send_json_to({"type": "stay_on", "minutes": minutes})
        err = await expect(b1, "error")
        assert err["code"] == "invalid" and "minutes" in err["detail"], minutes
    await b1.send_json_to({"type": "ping"})
    await expect(b1, "pong")
    await b1.disconnect()
    # Nothing known of when a1 works (her library is open around the clock, no rota): nothing to extend.
    a1 = await staff_socket(w["a1"])
    await available(a1)
    assert (await expect(a1, "shift")) == {"type": "shift", "ends_at": None}
    await a1.send_json_to({"type": "stay_on"})
    err = await expect(a1, "error")
    assert err["code"] == "invalid" and "no end of shift" in err["detail"]
    await a1.disconnect()


async def test_a_spanish_librarian_is_told_why_in_spanish_the_codes_stay() -> None:
    """A refusal's `detail` on the staff socket reads in the librarian's language (StaffProfile.language);
    its `reason` / `code` is the protocol's and does not change; an English colleague reads English."""
    w = await database_sync_to_async(socket_world)()
    w["a2"].language = "es"
    await database_sync_to_async(w["a2"].save)(update_fields=["language"])
    a1, a2 = await staff_socket(w["a1"]), await staff_socket(w["a2"])
    await available(a1)
    await available(a2)
    chat, _ = await start_chat(w)
    await expect(a2, "offer", chat=chat.pk)
    await a1.send_json_to({"type": "accept", "chat": chat.pk})
    await expect(a1, "assigned", chat=chat.pk)
    await a2.send_json_to({"type": "accept", "chat": chat.pk})
    refused = await expect(a2, "accept_failed", chat=chat.pk)
    assert (refused["reason"], refused["detail"]) == ("taken", "otro bibliotecario aceptó este chat")
    await a2.send_json_to({"type": "end", "chat": chat.pk})  # not theirs: an error frame, from the base consumer
    error = await expect(a2, "error")
    assert (error["code"], error["detail"]) == ("forbidden", "usted no atiende este chat")
    await a1.send_json_to({"type": "stay_on", "minutes": 30})  # available, but no shift: refused in English
    error = await expect(a1, "error")
    assert (error["code"], error["detail"]) == (
        "invalid", "no end of shift is scheduled for you: nothing to stay on past")
    await a1.disconnect()
    await a2.disconnect()
