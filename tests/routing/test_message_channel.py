"""`channel` on message frames (docs/sms.md: "Chats and messages carry `channel`" in the staff frames;
docs/protocol.md, "Additions (issue 15: texting)"): live, in the history a join asks for, in a gap the
socket fills from the database, and in the stored line a service hands back for a resend; without a query
per message."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from routing import frames
from routing.models import Channel, Chat, Message
from routing.selectors import messages_after
from routing.services import chats, common
from tests.routing.routing_helpers import T0, Sent, at, held_by_lena, start, world
from tests.routing.socket_helpers import a1_holding_a_chat, expect, patron_socket, socket_world

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_frame_takes_the_channel_given_annotated_or_of_a_loaded_chat_and_never_reads_it(
        django_assert_num_queries: Any) -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home", channel=Channel.SMS)
    bare = Message.objects.get(chat=chat, seq=1)
    with django_assert_num_queries(0):
        assert frames.message_frame(bare, "sms")["channel"] == "sms"
        assert "channel" not in frames.message_frame(bare)  # unknown: left out, not guessed
    loaded = Message.objects.select_related("chat").get(chat=chat, seq=1)
    with django_assert_num_queries(0):
        assert frames.message_frame(loaded)["channel"] == "sms"
    with django_assert_num_queries(1):  # the history's one read, channel and all
        history = messages_after(chat.pk, 0, for_patron=False)
    with django_assert_num_queries(0):
        assert [frames.message_frame(m)["channel"] for m in history] == ["sms"]


def test_live_message_frames_carry_the_chats_channel_without_a_query_more(
        sent: Sent, django_assert_num_queries: Any) -> None:
    w = world()
    lena, chat = held_by_lena(w, sent)
    message, created = chats.message_post(chat.pk, sender="librarian", body="Hello", client_id="l1", now=at(3),
                                          librarian=lena)
    assert created
    common.system_message_post(Chat.objects.get(pk=chat.pk), "a note from the system", at(4))
    assert [f["channel"] for f in sent.to_chat(chat, "message")] == ["web", "web"]
    with django_assert_num_queries(0):  # the message a service returns carries it: an echo needs no query
        assert frames.message_frame(message)["channel"] == "web"
    again, created = chats.message_post(chat.pk, sender="librarian", body="Hello", client_id="l1", now=at(5),
                                        librarian=lena)
    assert not created
    with django_assert_num_queries(0):
        assert frames.message_frame(again)["channel"] == "web"

    sms = start(w.consortium, at(6), library_slug="home", channel=Channel.SMS)
    sent.clear()
    chats.message_post(sms.pk, sender="patron", body="Thanks", client_id="SM1", now=at(7))
    assert [f["channel"] for f in sent.to_chat(sms, "message")] == ["sms"]


def test_transcripts_and_polls_carry_the_channel(client: Client) -> None:
    w = world()
    chat, token = chats.chat_start(consortium=w.consortium, question="By text?", library_slug="home",
                                   now=timezone.now(), channel=Channel.SMS)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    transcript = client.get(f"/api/v1/chats/{chat.pk}/transcript", **auth).json()
    assert [m["channel"] for m in transcript["messages"]] == ["sms"]
    from routing.patron.polling import news

    found = news(chat.pk, 0, "")
    assert found is not None
    assert [f["channel"] for f in found.frames if f["type"] == "message"] == ["sms"]


async def test_a_staff_socket_gets_the_channel_live_in_history_and_in_a_gap(
        fresh_process: None) -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, _token, assigned = await a1_holding_a_chat(w, channel=Channel.SMS)
    assert assigned["channel"] == "sms"
    await a1.send_json_to({"type": "join", "chat": chat.pk, "after": 0})  # the history, as the console asks
    assert (await expect(a1, "message", seq=1))["channel"] == "sms"

    await database_sync_to_async(chats.message_post)(chat.pk, sender="patron", body="two", client_id="SM2",
                                                     now=timezone.now())
    live = await expect(a1, "message", client_id="SM2")
    assert live["channel"] == "sms"

    # Two messages stored without the doorbell, as if the channel layer had dropped both events.
    n = live["seq"]
    await database_sync_to_async(lambda: [
        Message.objects.create(chat_id=chat.pk, seq=s, sender="system", body=f"lost {s}", at=timezone.now())
        for s in (n + 1, n + 2)])()
    await database_sync_to_async(Chat.objects.filter(pk=chat.pk).update)(last_seq=n + 2)
    await database_sync_to_async(chats.message_post)(chat.pk, sender="patron", body="next", client_id="SM5",
                                                     now=timezone.now())
    got = [await expect(a1, "message") for _ in range(3)]
    assert [(g["seq"], g["channel"]) for g in got] == [(n + 1, "sms"), (n + 2, "sms"), (n + 3, "sms")]

    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Hi", "client_id": "l1", "internal": True})
    first = await expect(a1, "message", client_id="l1")
    # Sent again: the stored line again (marked `resent`: this socket sent it already), channel and all.
    await a1.send_json_to({"type": "message", "chat": chat.pk, "body": "Hi", "client_id": "l1", "internal": True})
    echo = await expect(a1, "message", client_id="l1")
    assert (first["channel"], echo["channel"], echo["seq"], echo["resent"]) == ("sms", "sms", first["seq"], True)
    await a1.disconnect()


async def test_a_patron_socket_gets_the_field_too(fresh_process: None) -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _assigned = await a1_holding_a_chat(w)
    patron = await patron_socket(chat.pk, token)
    assert (await expect(patron, "message", seq=1))["channel"] == "web"
    await patron.send_json_to({"type": "message", "body": "hi", "client_id": "p1"})
    assert (await expect(patron, "message", client_id="p1"))["channel"] == "web"
    assert (await expect(a1, "message", client_id="p1"))["channel"] == "web"
    await patron.disconnect()
    await a1.disconnect()
