"""Screen and page sharing (issue 19) through the sockets: request, consent or refusal, the relay of the
signalling to the one socket bound on the other side, the end from either side or by the server, and
the trace (who, when, how long: never content). The browsers' side is tests/browser/test_sharing_browser.py;
the TURN credentials against coturn itself, tests/deploy/test_turn_credentials.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.utils import timezone

from routing import sharing
from routing.models import Chat, Share, TraceEvent
from routing.patron.i18n import script_strings
from routing.services import chats
from tests.routing.socket_helpers import (
    a1_holding_a_chat,
    available,
    expect,
    patron_socket,
    socket_world,
    staff_socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


# --- the ICE configuration and TURN credentials ---------------------------------------------------


def test_turn_credentials_are_the_rest_scheme_expiry_colon_id_and_hmac_sha1_of_it() -> None:
    now = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    username, password = sharing.turn_credentials("s3cret", "42", now, 600)
    assert username == f"{int(now.timestamp()) + 600}:42"
    assert base64.b64decode(password) == hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    # Another share, another credential; the secret never appears in either.
    other = sharing.turn_credentials("s3cret", "43", now, 600)
    assert other[1] != password and "s3cret" not in username + password


def test_ice_config_gives_turn_a_per_share_credential_and_stun_none() -> None:
    now = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    urls = sharing.ice_urls("stun:stun.example.org:3478, turns:turn.example.org:443?transport=tcp")
    ice = sharing.IceSettings(urls=urls, turn_secret="s3cret", credential_seconds=3600)
    config = sharing.ice_config(ice, "7", now)
    assert config["iceServers"][0] == {"urls": ["stun:stun.example.org:3478"]}
    turn = config["iceServers"][1]
    assert turn["urls"] == ["turns:turn.example.org:443?transport=tcp"] and turn["username"].endswith(":7")
    assert config["iceTransportPolicy"] == "all" and config["connect_timeout"] <= 15
    relay = sharing.ice_config(sharing.IceSettings(urls=ice.urls, turn_secret="s3cret", relay_only=True), "7", now)
    assert relay["iceTransportPolicy"] == "relay"
    # TURN without a secret is left out (a browser cannot use it), and a typo in ICE_SERVERS is refused.
    assert sharing.ice_config(sharing.IceSettings(urls=ice.urls), "7", now)["iceServers"] == [
        {"urls": ["stun:stun.example.org:3478"]}]
    with pytest.raises(ValueError, match="not a STUN or TURN URL"):
        sharing.ice_urls("https://turn.example.org")


# --- the sockets ----------------------------------------------------------------------------------


async def nothing_more(comm: WebsocketCommunicator, kind: str) -> None:
    """No frame of this type is waiting on `comm` (a short wait: the in-memory layer is immediate)."""
    while not await comm.receive_nothing(timeout=0.2):
        frame = await comm.receive_json_from()
        assert frame.get("type") != kind, frame


def trace_of(chat: Chat) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.data) for e in TraceEvent.objects.filter(chat=chat, kind__startswith="share")]


async def joined(chat: Chat, token: str) -> WebsocketCommunicator:
    comm = await patron_socket(chat.pk, token)
    await expect(comm, "joined")
    return comm


@override_settings(ICE_SERVERS="stun:stun.example.org:3478 turn:turn.example.org:3478", TURN_SECRET="s3cret")
async def test_show_me_consent_then_signalling_reaches_only_the_bound_socket_and_either_side_stops() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron, other_tab = await joined(chat, token), await joined(chat, token)

    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "see"})
    requested = await expect(a1, "share_requested", chat=chat.pk)
    share = requested["share"]
    assert requested["ice"]["iceServers"][1]["username"].endswith(f":{share}")
    asked = await expect(patron, "share_request", share=share)
    # The consent names who asks and for which library; every tab of the patron is asked.
    assert asked["kind"] == "see" and asked["librarian"]["library"]["name"] == w["alpha"].name
    assert asked["ice"]["iceServers"][1]["credential"]
    await expect(other_tab, "share_request", share=share)
    await nothing_more(a1, "share_request")  # the librarian's own socket is not asked

    # Signalling before consent is refused: no socket of the patron is bound yet.
    await patron.send_json_to({"type": "share_offer", "share": share, "sdp": OFFER})
    assert (await expect(patron, "error"))["code"] == "invalid"

    await patron.send_json_to({"type": "share_consent", "share": share, "consent": True})
    await expect(a1, "share_started", share=share)
    await expect(other_tab, "share_started", share=share)  # the other tab puts its prompt away
    await patron.send_json_to({"type": "share_offer", "share": share, "sdp": OFFER})
    offer = await expect(a1, "share_offer", share=share)
    assert offer == {"type": "share_offer", "chat": chat.pk, "share": share, "from": "patron", "sdp": OFFER}
    await a1.send_json_to({"type": "share_answer", "share": share, "sdp": "v=0\r\nanswer"})
    assert (await expect(patron, "share_answer", share=share))["sdp"] == "v=0\r\nanswer"
    await a1.send_json_to({"type": "share_ice", "share": share, "candidates": [{**CANDIDATE, "extra": "dropped"}]})
    ice = await expect(patron, "share_ice", share=share)
    assert ice["candidates"] == [CANDIDATE]
    await nothing_more(other_tab, "share_answer")  # the tab that did not consent hears none of it
    await nothing_more(patron, "share_offer")  # nor does the sender hear its own

    # The patron's "Stop": both sides told; the trace says who, when and how long, never content.
    await patron.send_json_to({"type": "share_end", "share": share})
    ended = await expect(a1, "share_ended", share=share)
    assert ended["by"] == "patron" and ended["reason"] == "stopped"
    kinds = await database_sync_to_async(trace_of)(chat)
    assert [k for k, _ in kinds] == ["share_requested", "share_started", "share_ended"]
    end = kinds[-1][1]
    assert end["by"] == "patron" and end["share_kind"] == "see" and end["seconds"] >= 0
    assert OFFER not in str(kinds) and "candidate" not in str(kinds)
    # Ended is ended, for the librarian's socket too: no more relaying; and a second stop is no error.
    await a1.send_json_to({"type": "share_answer", "share": share, "sdp": "v=0"})
    assert (await expect(a1, "error"))["code"] == "invalid"
    await a1.send_json_to({"type": "share_end", "chat": chat.pk, "share": share})
    await a1.send_json_to({"type": "ping"})
    while (frame := await a1.receive_json_from(timeout=3))["type"] != "pong":
        assert frame["type"] != "error", frame
    for comm in (a1, patron, other_tab):
        await comm.disconnect()


async def test_a_refusal_ends_the_request_and_the_librarian_can_stop_a_show() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await joined(chat, token)
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "show"})
    share = (await expect(a1, "share_requested"))["share"]
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "show"})
    assert "already open" in (await expect(a1, "error"))["detail"]
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": False})
    refused = await expect(a1, "share_ended", share=share)
    assert refused["reason"] == "refused" and refused["by"] == "patron"
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": True})  # too late
    assert "answered already" in (await expect(patron, "error"))["detail"]
    assert await database_sync_to_async(lambda: Share.objects.get(pk=share).state)() == "refused"
    # A browser that cannot capture a screen (a phone) says so: not the patron's no.
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "see"})
    share = (await expect(a1, "share_requested"))["share"]
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": False, "reason": "unsupported"})
    assert (await expect(a1, "share_ended", share=share))["reason"] == "unsupported"

    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "show"})
    share = (await expect(a1, "share_requested"))["share"]
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": True})
    await expect(a1, "share_started", share=share)
    await a1.send_json_to({"type": "share_end", "chat": chat.pk, "share": share})
    ended = await expect(patron, "share_ended", share=share)
    assert ended["by"] == "librarian"
    for comm in (a1, patron):
        await comm.disconnect()


async def test_only_the_chats_own_librarian_asks_and_nobody_else_answers() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    # No patron socket (away, or on the long-poll fallback): the request could not reach them.
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "see"})
    assert "ask for a screenshot" in (await expect(a1, "error"))["detail"]
    patron = await joined(chat, token)
    a2 = await staff_socket(w["a2"])
    await expect(a2, "hello")
    await a2.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "see"})
    assert (await expect(a2, "error"))["code"] == "not_found"
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "everything"})
    assert (await expect(a1, "error"))["code"] == "invalid"
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "see"})
    share = (await expect(a1, "share_requested"))["share"]
    # The patron of another chat cannot consent to it, nor learn it exists.
    other, other_token = await database_sync_to_async(chats.chat_start)(
        consortium=w["consortium"], question="Another", now=timezone.now(), library_slug="beta")
    stranger = await joined(other, other_token)
    await stranger.send_json_to({"type": "share_consent", "share": share, "consent": True})
    assert (await expect(stranger, "error"))["code"] == "not_found"
    await nothing_more(stranger, "share_request")
    for comm in (a1, a2, stranger, patron):
        await comm.disconnect()


async def test_page_sharing_goes_only_to_the_librarian_and_a_pushed_page_only_to_the_patron() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await joined(chat, token)
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "page"})
    share = (await expect(a1, "share_requested"))["share"]
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": True})
    await expect(a1, "share_started", share=share)
    # The widget's socket is new on every page: a socket that did not consent may report the page.
    await patron.disconnect()
    patron = await joined(chat, token)
    await patron.send_json_to({"type": "share_page", "share": share, "url": "https://library.example.org/hours",
                               "title": "Opening hours"})
    page = await expect(a1, "share_page", share=share)
    assert page["url"] == "https://library.example.org/hours" and page["title"] == "Opening hours"
    await patron.send_json_to({"type": "share_page", "share": share, "url": "javascript:alert(1)", "title": "x"})
    assert "http or https" in (await expect(patron, "error"))["detail"]
    # The page share survived the patron's page load (only media shares end with a socket).
    assert await database_sync_to_async(lambda: Share.objects.get(pk=share).state)() == "active"

    await a1.send_json_to({"type": "page_push", "chat": chat.pk, "url": "https://catalog.example.org/search?q=passes",
                           "title": "Museum passes in the catalogue"})
    card = await expect(patron, "page_push")
    assert card["title"] == "Museum passes in the catalogue" and card["librarian"]["name"]
    await nothing_more(a1, "page_push")
    await a1.send_json_to({"type": "page_push", "chat": chat.pk, "url": "data:text/html,hi", "title": "x"})
    assert (await expect(a1, "error"))["code"] == "invalid"
    kinds = await database_sync_to_async(
        lambda: list(TraceEvent.objects.filter(chat=chat, kind="page_pushed").values_list("data", flat=True)))()
    assert len(kinds) == 1 and "catalog" not in str(kinds), "the trace says a page was pushed, not which"
    for comm in (a1, patron):
        await comm.disconnect()


async def test_a_screen_share_ends_when_a_bound_socket_closes_and_every_share_when_the_chat_ends() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await joined(chat, token)
    shares = {}
    for kind in ("see", "page"):
        await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": kind})
        shares[kind] = (await expect(a1, "share_requested"))["share"]
        await patron.send_json_to({"type": "share_consent", "share": shares[kind], "consent": True})
        await expect(a1, "share_started", share=shares[kind])
    await patron.disconnect()
    ended = await expect(a1, "share_ended", share=shares["see"])
    assert ended["by"] == "server" and ended["reason"] == "disconnected"

    def states() -> dict[str, str]:
        return {s.kind: s.state for s in Share.objects.filter(chat=chat)}

    assert await database_sync_to_async(states)() == {"see": "ended", "page": "active"}
    await database_sync_to_async(chats.chat_end)(chat.pk, timezone.now(), by="patron")
    assert (await expect(a1, "share_ended", share=shares["page"]))["reason"] == "chat_ended"
    assert await database_sync_to_async(states)() == {"see": "ended", "page": "ended"}
    await a1.disconnect()


async def test_bad_signalling_is_refused_with_a_clear_error() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await joined(chat, token)
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "show"})
    share = (await expect(a1, "share_requested"))["share"]
    # Four bad frames (each costs the socket's frame budget five frames: docs/protocol.md, "Sockets").
    await a1.send_json_to({"type": "share_offer", "share": share, "sdp": "x" * (sharing.MAX_SDP + 1)})
    assert "sdp must be at most" in (await expect(a1, "error"))["detail"]
    for candidates in ([{"candidate": 1}], [CANDIDATE] * (sharing.MAX_CANDIDATES + 1)):
        await a1.send_json_to({"type": "share_ice", "share": share, "candidates": candidates})
        assert "candidates" in (await expect(a1, "error"))["detail"]
    await a1.send_json_to({"type": "share_offer", "share": "7", "sdp": OFFER})
    assert "share" in (await expect(a1, "error"))["detail"]
    await a1.disconnect()
    await patron.disconnect()


def test_every_sharing_text_the_patron_reads_is_in_spanish_too() -> None:
    english, spanish = script_strings("en"), script_strings("es")
    keys = [k for k in english if k.startswith(("share_", "page_"))]
    assert len(keys) >= 20 and all(spanish[k] != english[k] for k in keys)
    # The placeholders the script fills survive the translation.
    assert all(set(re.findall(r"\{\w+\}", spanish[k])) == set(re.findall(r"\{\w+\}", english[k])) for k in keys)
    assert spanish["share_ask_see"].startswith("{name}, de {library}, le pide ver su pantalla")


async def test_a_transfer_ends_the_chats_shares_so_the_next_librarian_sees_nothing_of_them() -> None:
    w = await database_sync_to_async(socket_world)()
    a1, chat, token, _ = await a1_holding_a_chat(w)
    patron = await joined(chat, token)
    a2 = await staff_socket(w["a2"])
    await available(a2)
    await a1.send_json_to({"type": "share_request", "chat": chat.pk, "kind": "page"})
    share = (await expect(a1, "share_requested"))["share"]
    await patron.send_json_to({"type": "share_consent", "share": share, "consent": True})
    await expect(a1, "share_started", share=share)
    await a1.send_json_to({"type": "transfer", "chat": chat.pk, "to": {"librarian": "a2"}})
    ended = await expect(a1, "share_ended", share=share)
    assert ended["reason"] == "transferred" and ended["by"] == "server"
    await expect(patron, "share_ended", share=share)
    # The page the patron goes on to report reaches neither librarian.
    await patron.send_json_to({"type": "share_page", "share": share, "url": "https://library.example.org/",
                               "title": "x"})
    await nothing_more(a1, "share_page")
    await nothing_more(a2, "share_page")
    for comm in (a1, a2, patron):
        await comm.disconnect()
