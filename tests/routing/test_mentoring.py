"""The mentor live view and the staff back-channel through the staff and patron sockets
(Channels' WebsocketCommunicator) and the HTTP API: watch, whisper, join, take over, `@name`
mentions and the staff room (routing.services.mentoring, routing.mentions, routing.staff_room)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.test import Client
from django.utils import timezone

from libraries.models import StaffProfile
from routing import access, privacy, staff_room
from routing.models import Chat, Mention, Message, StaffRoomLine, TraceEvent
from routing.services import chats, mentoring, offers, presence, sweeps
from routing.services.common import ServiceError
from routing.services.followups import transcript_text
from routing.sockets import base as socket_base
from tests.factories import PASSWORD, make_consortium, make_library, make_staff
from tests.routing.socket_helpers import (
    a1_holding_a_chat,
    available,
    expect,
    patron_socket,
    socket_world,
    staff_socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]

WHISPER = "Ask which edition they need before you search"


def mentor_world() -> dict[str, Any]:
    """socket_world, with b1 (library beta) a mentor, a coordinator at beta, and a librarian of
    another consortium."""
    w = socket_world()
    StaffProfile.objects.filter(pk=w["b1"].pk).update(is_mentor=True)
    w["b1"].refresh_from_db()
    w["coord"] = make_staff(w["beta"], "coord", role="coordinator")
    far = make_library(make_consortium("elsewhere"), "far")
    w["outsider"] = make_staff(far, "outsider", role="coordinator")
    return w


async def frames_until_quiet(comm: Any, seconds: float = 0.4) -> list[dict[str, Any]]:
    got = []
    while True:
        try:
            got.append(await comm.receive_json_from(timeout=seconds))
        except TimeoutError:
            return got


async def frames_so_far(comm: Any, seconds: float = 0.4) -> list[dict[str, Any]]:
    """The frames until `seconds` pass without one, leaving the socket open (frames_until_quiet's
    timeout ends the communicator's application)."""
    got = []
    while not await comm.receive_nothing(seconds):
        got.append(await comm.receive_json_from())
    return got


async def close_all(*comms: Any) -> None:
    for comm in comms:
        with contextlib.suppress(asyncio.CancelledError):  # a socket the server closed already
            await comm.disconnect()


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


async def test_a_whisper_reaches_the_librarian_and_never_the_patron_by_any_path() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w, email="pat@example.org")
    patron = await patron_socket(chat.pk, token)
    await expect(patron, "joined")
    mentor = await staff_socket(w["b1"])
    await expect(mentor, "hello")
    await mentor.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
    watching = await expect(mentor, "watching", chat=chat.pk)
    assert watching["librarian"]["name"] == "A1" and watching["may"] == {"whisper": True, "join": True,
                                                                       "take_over": True}
    assert watching["policy_url"] == "/staff/libraries/alpha/policy" and watching["trace"][-1]["kind"] == "watched"
    assert (await expect(mentor, "message", seq=1))["body"] == "Do you have museum passes?"

    await mentor.send_json_to({"type": "whisper", "chat": chat.pk, "body": WHISPER, "client_id": "w1"})
    told = await expect(a1, "message", client_id="w1")
    assert told["whisper"] is True and told["internal"] is True and told["name"] == "B1"
    assert (await expect(mentor, "message", client_id="w1"))["whisper"] is True
    await mentor.send_json_to({"type": "whisper", "chat": chat.pk, "body": WHISPER, "client_id": "w1"})
    assert (await expect(mentor, "message", client_id="w1"))["resent"] is True  # stored once
    # The patron's socket: the next thing it gets is the librarian's answer, not the whisper.
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Which edition?", "client_id": "l1"})
    seen = [f for f in await frames_until_quiet(patron) if f["type"] == "message"]
    assert [f["body"] for f in seen][-1] == "Which edition?" and WHISPER not in json.dumps(seen)
    # A patron who resumes (socket history, gap fill) gets everything but the whisper.
    again = await patron_socket(chat.pk, token, after=0)
    assert WHISPER not in json.dumps(await frames_until_quiet(again))
    await a1.send_json_to({"type": "end", "chat": chat.pk})
    await expect(a1, "unassigned", chat=chat.pk)

    def http_paths() -> None:
        client, auth = Client(), {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        assert WHISPER not in client.get(f"/api/v1/chats/{chat.pk}/events?after=0", **auth).content.decode()
        transcript = client.get(f"/api/v1/chats/{chat.pk}/transcript", **auth)
        assert transcript.status_code == 200 and WHISPER not in transcript.content.decode()
        mail.outbox.clear()
        asked = client.post(f"/api/v1/chats/{chat.pk}/transcript", data=json.dumps({"email": "pat@example.org"}),
                            content_type="application/json", **auth)
        assert asked.status_code == 202 and "Which edition?" in mail.outbox[0].body
        assert WHISPER not in mail.outbox[0].body
        assert WHISPER not in transcript_text(chat, for_patron=True)
        report = signed_in("coord").get("/api/v1/sock/reports/chats.csv?since=2000-01-01")
        rows = list(csv.DictReader(io.StringIO(report.content.decode())))
        assert [r["chat"] for r in rows] == [chat.pk] and WHISPER not in report.content.decode()
        # Staff read it, marked as the whisper it is.
        staff_copy = signed_in("a1").get(f"/api/v1/chats/{chat.pk}/transcript").json()["messages"]
        assert next(m for m in staff_copy if m["body"] == WHISPER)["whisper"] is True
        kinds = [e.kind for e in TraceEvent.objects.filter(chat=chat)]
        assert "watched" in kinds and kinds.count("whispered") == 1

    await database_sync_to_async(http_paths)()
    await close_all(a1, mentor, patron, again)


async def test_a_whisper_reaches_its_addressee_and_author_only_and_a_second_watcher_sees_no_gap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another mentor watching the same chat (the coordinator) never gets b1's whisper: not live, not
    in a watch's history, not in a gap filled from the database, not in any staff transcript; and the
    whisper's seq is accounted for on that socket, so its next message needs no gap fill."""
    gap_fills: list[tuple[int | None, int]] = []
    read = socket_base._messages_after

    def recorded(chat_id: str, after: int, *, for_patron: bool, reader: int | None,
                 upto: int | None = None) -> list[dict[str, Any]]:
        if upto is not None:  # only a gap fill reads up to a seq
            gap_fills.append((reader, upto))
        return read(chat_id, after, for_patron=for_patron, reader=reader, upto=upto)

    monkeypatch.setattr(socket_base, "_messages_after", recorded)
    w = await database_sync_to_async(mentor_world)()
    a1, chat, _token, _ = await a1_holding_a_chat(w)
    author, other = await staff_socket(w["b1"]), await staff_socket(w["coord"])
    for comm in (author, other):
        await expect(comm, "hello")
        await comm.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
        await expect(comm, "watching", chat=chat.pk)
    await frames_so_far(other)
    gap_fills.clear()  # from here on
    await author.send_json_to({"type": "whisper", "chat": chat.pk, "body": WHISPER + " @a2", "client_id": "w1"})
    whisper = await expect(a1, "message", client_id="w1")
    assert (await expect(author, "message", client_id="w1"))["seq"] == whisper["seq"]
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Which edition?", "client_id": "l1"})
    got = [f for f in await frames_so_far(other) if f["type"] == "message"]
    assert [(f["seq"], f["body"]) for f in got] == [(whisper["seq"] + 1, "Which edition?")]
    assert [f for f in gap_fills if f[0] == w["coord"].pk] == []  # the whisper's seq was accounted for

    # A line stored while the channel layer dropped its doorbell: each socket fills the gap with what
    # it may read, and b1's earlier whisper is in no history of the coordinator's.
    def whisper_unannounced() -> int:
        locked = Chat.objects.get(pk=chat.pk)
        Message.objects.create(chat=locked, seq=locked.last_seq + 1, sender="librarian", librarian=w["b1"],
                               name="B1", body="Lost whisper", at=timezone.now(), internal=True,
                               whisper_to=w["a1"])
        Chat.objects.filter(pk=chat.pk).update(last_seq=locked.last_seq + 1)
        return locked.last_seq + 1

    lost = await database_sync_to_async(whisper_unannounced)()
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "After the drop", "client_id": "l2"})
    assert [f["body"] for f in [await expect(a1, "message", seq=lost), await expect(a1, "message", seq=lost + 1)]] \
        == ["Lost whisper", "After the drop"]
    got = [f for f in await frames_so_far(other) if f["type"] == "message"]
    assert [(f["seq"], f["body"]) for f in got] == [(lost + 1, "After the drop")]
    assert (w["coord"].pk, lost) in gap_fills
    again = await staff_socket(w["coord"])
    await expect(again, "hello")
    await again.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
    history = [f for f in await frames_until_quiet(again) if f["type"] == "message"]
    assert "Lost whisper" not in json.dumps(history) and WHISPER not in json.dumps(history)
    assert "Which edition?" in json.dumps(history)

    def staff_paths() -> None:
        # A whisper names nobody: its words would reach a third colleague in the mention.
        assert not Mention.objects.filter(chat=chat).exists()
        for who, sees in (("a1", True), ("coord", False), ("a2", False)):
            rows = signed_in(who).get(f"/api/v1/chats/{chat.pk}/transcript").json()["messages"]
            assert (WHISPER in json.dumps(rows)) is sees, who
        admin = signed_in("coord")  # the admin's read-only record of the chat, for coordinators
        record = admin.get(f"/admin/routing/chat/{chat.pk}/change/").content.decode()
        assert "Which edition?" in record and WHISPER not in record and "Lost whisper" not in record
        for body, listed in (("Lost whisper", False), ("After the drop", True)):
            row = Message.objects.get(chat=chat, body=body)
            found = admin.get("/admin/routing/message/", {"q": body}).content.decode()
            assert (f"/admin/routing/message/{row.pk}/change/" in found) is listed, body
        assert "Which edition?" in transcript_text(chat, for_patron=False)
        assert WHISPER not in transcript_text(chat, for_patron=False)  # a follow-up's copy: anyone may claim it

    await database_sync_to_async(staff_paths)()
    await a1.send_json_to({"type": "end", "chat": chat.pk})
    await expect(a1, "unassigned", chat=chat.pk)

    def after_the_end() -> None:
        assert "Lost whisper" in signed_in("a1").get(f"/staff/history/{chat.pk}/").content.decode()
        assert "Lost whisper" not in signed_in("a2").get(f"/staff/history/{chat.pk}/").content.decode()
        assert chat.pk in signed_in("a1").get("/staff/history/?q=Lost+whisper").content.decode()
        assert chat.pk not in signed_in("a2").get("/staff/history/?q=Lost+whisper").content.decode()

    await database_sync_to_async(after_the_end)()
    await close_all(a1, author, other, again)


async def test_watching_is_for_mentors_and_colleagues_named_in_the_chat_only() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, _token, _ = await a1_holding_a_chat(w)
    for who in ("a2", "outsider"):
        other = await staff_socket(w[who])
        await expect(other, "hello")
        await other.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
        assert (await expect(other, "error"))["code"] == "not_found"
        await other.send_json_to({"type": "whisper", "chat": chat.pk, "body": "psst", "client_id": "x"})
        assert (await expect(other, "error"))["code"] == "not_found"
        await other.disconnect()
    assert await database_sync_to_async(Message.objects.filter(body="psst").count)() == 0
    a2 = await staff_socket(w["a2"])
    await expect(a2, "hello")
    await a2.send_json_to({"type": "take_over", "chat": chat.pk})
    assert (await expect(a2, "takeover_failed"))["reason"] == "not_found"
    await a2.disconnect()
    await a1.disconnect()


async def test_a_mention_reaches_a_colleague_of_another_library_and_nobody_outside_the_consortium() -> None:
    w = await database_sync_to_async(mentor_world)()
    beta2 = await database_sync_to_async(make_staff)(w["beta"], "b2")
    a1, chat, _token, _ = await a1_holding_a_chat(w)
    b2 = await staff_socket(beta2)
    await expect(b2, "hello")
    outsider = await staff_socket(w["outsider"])
    await expect(outsider, "hello")
    note = "@B2 do you know the museum pass rules? (cc @outsider and @nobody; not ask@a1.org)"
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": note, "client_id": "n1", "internal": True})
    told = await expect(b2, "mentioned", chat=chat.pk)
    assert told["url"] == f"/staff/mentor/{chat.pk}/" and told["by"]["name"] == "A1" and "museum" in told["excerpt"]
    assert [f for f in await frames_until_quiet(outsider) if f["type"] == "mentioned"] == []
    assert await database_sync_to_async(lambda: list(Mention.objects.values_list("librarian__user__username",
                                                                                  flat=True)))() == ["b2"]
    # The link opens the chat read-only with the right to whisper, and nothing more.
    await b2.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
    watching = await expect(b2, "watching", chat=chat.pk)
    assert watching["may"] == {"whisper": True, "join": False, "take_over": False}
    assert (await expect(b2, "message", client_id="n1"))["internal"] is True
    await b2.send_json_to({"type": "whisper", "chat": chat.pk, "body": "Ten a day per card.", "client_id": "b"})
    assert (await expect(a1, "message", client_id="b"))["whisper"] is True
    await b2.send_json_to({"type": "mentor_join", "chat": chat.pk})
    assert (await expect(b2, "error"))["code"] == "not_found"
    # Opened: not shown again at the next hello.
    again = await staff_socket(beta2)
    assert (await expect(again, "hello"))["mentions"] == []
    await close_all(a1, b2, outsider, again)


async def test_a_mentor_joins_and_the_patron_is_told_in_their_language() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    await database_sync_to_async(Chat.objects.filter(pk=chat.pk).update)(language="es")  # the patron's page
    patron = await patron_socket(chat.pk, token)
    mentor = await staff_socket(w["b1"])
    await expect(mentor, "hello")
    await mentor.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
    await expect(mentor, "watching")
    await mentor.send_json_to({"type": "mentor_join", "chat": chat.pk})
    await expect(mentor, "second_joined", chat=chat.pk)
    told = await expect(patron, "message", sender="system")
    while "A1" in told["body"]:  # a1's own joining first
        told = await expect(patron, "message", sender="system")
    assert told["body"] == "B1, bibliotecario/a sénior, se unió al chat."
    await mentor.send_json_to({"type": "message", "chat": chat.pk, "body": "Hello from me too", "client_id": "m"})
    assert (await expect(patron, "message", client_id="m"))["name"] == "B1"
    await mentor.send_json_to({"type": "typing", "chat": chat.pk})
    assert (await expect(mentor, "error"))["code"] == "invalid"  # watching: never typing to the patron
    await close_all(a1, mentor, patron)


async def test_take_over_with_consent_moves_the_chat_whole() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await patron_socket(chat.pk, token)
    mentor = await staff_socket(w["b1"])
    await expect(mentor, "hello")
    await mentor.send_json_to({"type": "take_over", "chat": chat.pk})
    asked = await expect(a1, "takeover_asked", chat=chat.pk)
    assert asked["by"]["name"] == "B1"
    await a1.send_json_to({"type": "takeover_answer", "chat": chat.pk, "consent": False})
    await expect(mentor, "takeover_declined", chat=chat.pk)
    await mentor.send_json_to({"type": "take_over", "chat": chat.pk})
    await expect(a1, "takeover_asked", chat=chat.pk)
    await a1.send_json_to({"type": "takeover_answer", "chat": chat.pk, "consent": True})
    assert (await expect(a1, "unassigned", chat=chat.pk))["reason"] == "taken_over"
    assigned = await expect(mentor, "assigned", chat=chat.pk)
    state = await expect(patron, "state", chat=chat.pk)
    while state["librarian"]["name"] != "B1":  # the states told before the take-over first
        state = await expect(patron, "state", chat=chat.pk)
    assert assigned["last_seq"] >= 2
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "still mine?", "client_id": "late"})
    assert (await expect(a1, "error"))["code"] == "forbidden"
    await a1.send_json_to({"type": "takeover_answer", "chat": chat.pk, "consent": True})
    assert (await expect(a1, "error"))["code"] == "not_found"
    saved = await database_sync_to_async(Chat.objects.get)(pk=chat.pk)
    assert saved.librarian_id == w["b1"].pk and saved.takeover_asked_by_id is None
    kinds = await database_sync_to_async(lambda: [e.kind for e in TraceEvent.objects.filter(chat=chat)])()
    assert kinds[-4:] == ["takeover_asked", "takeover_declined", "takeover_asked", "taken_over"]
    await close_all(a1, mentor, patron)


def test_a_coordinator_takes_over_at_once_and_a_take_over_after_the_end_is_refused() -> None:
    w = mentor_world()
    now = timezone.now()
    sweeps.process_heartbeat("p", now)
    presence.staff_connected(w["a1"], "chan-a1", "p", now)
    presence.presence_set(w["a1"], "available", now)
    chat, _ = chats.chat_start(consortium=w["consortium"], question="Q?", library_slug="alpha", now=now)
    offers.chat_accept(w["a1"], chat.pk, now)
    assert mentoring.takeover_ask(w["coord"], chat.pk, now) == "taken"
    chat.refresh_from_db()
    assert chat.librarian_id == w["coord"].pk
    assert TraceEvent.objects.get(chat=chat, kind="taken_over").data["by"] == "coordinator"
    chats.chat_end(chat.pk, now, by="librarian", librarian=w["coord"])
    with pytest.raises(ServiceError) as refused:
        mentoring.takeover_ask(w["b1"], chat.pk, now)
    assert refused.value.reason == "ended"
    with pytest.raises(ServiceError):
        mentoring.takeover_ask(w["outsider"], chat.pk, now)


async def test_the_staff_room_gives_each_line_once_in_order_across_a_reconnect() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1 = await staff_socket(w["a1"])
    b1 = await staff_socket(w["b1"])
    outsider = await staff_socket(w["outsider"])
    for comm in (a1, b1, outsider):
        await (available(comm) if comm is not outsider else expect(comm, "hello"))  # on duty, to write
        await comm.send_json_to({"type": "room_join", "after": 0})
    await a1.send_json_to({"type": "room_message", "body": "Anyone covering statewide at noon?", "client_id": "r1"})
    line = await expect(b1, "room_message", seq=1)
    assert line["name"] == "A1" and line["library"] == "Alpha Library"
    await expect(a1, "room_message", seq=1)
    await a1.send_json_to({"type": "room_message", "body": "Anyone covering statewide at noon?", "client_id": "r1"})
    assert (await expect(a1, "room_message", seq=1))["resent"] is True
    await b1.send_json_to({"type": "room_message", "body": "I am.", "client_id": "r2"})
    await expect(a1, "room_message", seq=2)
    await b1.disconnect()
    back = await staff_socket(w["b1"])
    await expect(back, "hello")
    await back.send_json_to({"type": "room_join", "after": 1})
    got = [f for f in await frames_until_quiet(back) if f["type"] == "room_message"]
    assert [(f["seq"], f["body"]) for f in got] == [(2, "I am.")]
    assert [f for f in await frames_until_quiet(outsider) if f["type"] == "room_message"] == []
    await close_all(a1, back, outsider)


async def test_the_staff_room_is_written_by_staff_on_duty_and_read_only_for_those_away() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, _token, _ = await a1_holding_a_chat(w)
    a2 = await staff_socket(w["a2"])  # a console opens away
    await expect(a2, "hello")
    for comm in (a1, a2):
        await comm.send_json_to({"type": "room_join", "after": 0})
    # Away, a2 reads the room but cannot write in it: told why, with the line's client_id, nothing stored.
    await a2.send_json_to({"type": "room_message", "body": "Can anyone cover?", "client_id": "away1"})
    refused = await expect(a2, "error", client_id="away1")
    assert refused["code"] == "forbidden" and "on duty" in refused["detail"]
    # Busy: away so as to get no new offer, still answering a chat, a1 is on duty.
    await a1.send_json_to({"type": "presence", "status": "away"})
    await expect(a1, "presence", status="away")
    await a1.send_json_to({"type": "room_message", "body": "Busy, but here.", "client_id": "busy1"})
    assert (await expect(a2, "room_message", seq=1))["body"] == "Busy, but here."
    await a2.send_json_to({"type": "presence", "status": "available"})
    await expect(a2, "presence", status="available")
    await a2.send_json_to({"type": "room_message", "body": "Can anyone cover?", "client_id": "away1"})
    assert (await expect(a1, "room_message", seq=2))["body"] == "Can anyone cover?"
    await a1.send_json_to({"type": "end", "chat": chat.pk})
    await expect(a1, "unassigned", chat=chat.pk)
    await a1.send_json_to({"type": "room_message", "body": "Off now.", "client_id": "off1"})
    assert (await expect(a1, "error", client_id="off1"))["code"] == "forbidden"  # away, no chat: off duty
    assert await database_sync_to_async(lambda: list(StaffRoomLine.objects.order_by("seq").values_list(
        "body", flat=True)))() == ["Busy, but here.", "Can anyone cover?"]
    await close_all(a1, a2)
    # Signed out (offline), available or not, nobody is on duty.
    offline = await database_sync_to_async(lambda: staff_room.on_duty(w["b1"]))()
    assert offline is False


def test_the_board_lists_every_live_chat_for_mentors_and_the_watch_page_only_for_those_who_may() -> None:
    w = mentor_world()
    now = timezone.now()
    sweeps.process_heartbeat("p", now)
    presence.staff_connected(w["a1"], "chan-a1", "p", now)
    presence.presence_set(w["a1"], "available", now)  # present: the chat waits for them
    waiting, _ = chats.chat_start(consortium=w["consortium"], question="Where are the tax forms?",
                                  library_slug="alpha", now=now)
    far_consortium = w["outsider"].library.consortium
    elsewhere, _ = chats.chat_start(consortium=far_consortium, question="Elsewhere's question", now=now)
    board = signed_in("b1").get("/staff/mentor/")
    assert board.status_code == 200 and "Where are the tax forms?" in board.content.decode()
    assert "Elsewhere" not in board.content.decode()
    assert "Where are the tax forms?" in signed_in("coord").get("/staff/mentor/?rows=1").content.decode()
    assert signed_in("a1").get("/staff/mentor/").status_code == 403
    assert signed_in("b1").get(f"/staff/mentor/{waiting.pk}/").status_code == 200
    assert signed_in("a2").get(f"/staff/mentor/{waiting.pk}/").status_code == 404
    assert signed_in("b1").get(f"/staff/mentor/{elsewhere.pk}/").status_code == 404
    assert "Live chats" in signed_in("b1").get("/staff/").content.decode()
    assert "Live chats" not in signed_in("a1").get("/staff/").content.decode()


def test_the_patron_privacy_notice_says_staff_may_read_chats_in_english_and_spanish() -> None:
    mentor_world()
    english = Client().get("/ask/sock/").content.decode()
    assert "may be read by the consortium" in english and "staff, live or afterwards" in english
    spanish = Client(HTTP_ACCEPT_LANGUAGE="es").get("/ask/sock/").content.decode()
    assert "El personal del consorcio puede leer los chats" in spanish


def test_coordinators_set_the_mentor_flag_for_their_consortium_only() -> None:
    w = mentor_world()
    coord = signed_in("coord")
    page = coord.get("/coordinator/sock/mentors/")
    assert page.status_code == 200 and "A1" in page.content.decode()
    chosen = [w["a1"].pk, w["outsider"].pk]  # the outsider is of another consortium: ignored
    saved = coord.post("/coordinator/sock/mentors/", {"mentor": chosen})
    assert saved.status_code == 302
    flags = dict(StaffProfile.objects.values_list("user__username", "is_mentor"))
    assert flags["a1"] is True and flags["b1"] is False and flags["outsider"] is False
    assert signed_in("a1").get("/staff/mentor/").status_code == 200
    assert signed_in("a1").get("/coordinator/sock/mentors/").status_code == 403
    assert signed_in("outsider").get("/coordinator/sock/mentors/").status_code == 404


def test_staff_room_lines_past_the_retention_are_deleted_with_the_nightly_scrub() -> None:
    w = mentor_world()
    now = timezone.now()
    days = w["consortium"].transcript_retention_days
    sweeps.process_heartbeat("p", now)
    for who in ("a1", "outsider"):  # on duty, to write in their rooms
        presence.staff_connected(w[who], f"chan-{who}", "p", now)
        presence.presence_set(w[who], "available", now)
    staff_room.room_post(w["a1"], "Old talk", client_id="o", now=now - timedelta(days=days + 1))
    staff_room.room_post(w["a1"], "Today's talk", client_id="t", now=now)
    staff_room.room_post(w["outsider"], "Elsewhere, old", client_id="e", now=now - timedelta(days=days + 1))
    assert privacy.staff_room_delete_expired(w["consortium"], now) == 1
    assert sorted(StaffRoomLine.objects.values_list("body", flat=True)) == ["Elsewhere, old", "Today's talk"]


def test_an_ended_chat_can_be_opened_for_a_day_and_no_longer() -> None:
    w = mentor_world()
    chat, _ = chats.chat_start(consortium=w["consortium"], question="Q?", library_slug="alpha", now=timezone.now())
    chat.refresh_from_db()
    assert chat.state == "unstaffed" and chat.ended_at is None
    now = chat.last_activity_at
    assert access.may_watch(w["b1"], chat, now + timedelta(hours=23))
    assert not access.may_watch(w["b1"], chat, now + timedelta(hours=25))
    assert signed_in("b1").get(f"/staff/mentor/{chat.pk}/").status_code == 200


async def test_a_watcher_resuming_gets_each_line_once_and_in_order() -> None:
    w = await database_sync_to_async(mentor_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await patron_socket(chat.pk, token)
    mentor = await staff_socket(w["b1"])
    await expect(mentor, "hello")
    await mentor.send_json_to({"type": "watch", "chat": chat.pk, "after": 0})
    watching = await expect(mentor, "watching")
    seen = [f["seq"] for f in await frames_until_quiet(mentor) if f["type"] == "message"]
    assert seen == list(range(1, watching["last_seq"] + 1))
    await close_all(mentor)
    for i in range(3):  # while the mentor is away
        await patron.send_json_to({"type": "message", "body": f"line {i}", "client_id": f"p{i}"})
        await expect(a1, "message", client_id=f"p{i}")
    back = await staff_socket(w["b1"])
    await expect(back, "hello")
    await back.send_json_to({"type": "watch", "chat": chat.pk, "after": seen[-1]})
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "live while resuming", "client_id": "l"})
    got = [f for f in await frames_until_quiet(back) if f["type"] == "message"]
    assert [f["seq"] for f in got] == list(range(seen[-1] + 1, seen[-1] + 5))
    assert [f["body"] for f in got] == ["line 0", "line 1", "line 2", "live while resuming"]
    await close_all(a1, patron, back)
