"""routing.access: one rule for who may read a chat, and a deactivated librarian refused everywhere.

Every entry point a librarian reaches a chat through is tried twice: first active (it answers),
then with the staff profile switched off, and with the user account switched off (it refuses).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from django.utils import timezone

from libraries.models import StaffProfile
from routing import access, files
from routing.models import Chat, ChatState, Offer
from routing.services import chats
from routing.ws_urls import websocket_urlpatterns
from tests.factories import make_consortium, make_library, make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]
OWN = "http://127.0.0.1:8000"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def world() -> dict[str, Any]:
    consortium = make_consortium("acc", allowed_origins=["https://library.example.org"])
    alpha = make_library(consortium, "alpha")
    beta = make_library(consortium, "beta")
    far = make_library(make_consortium("far"), "far")
    a1 = make_staff(alpha, "a1")
    chat, token = chats.chat_start(consortium=consortium, question="Museum passes?", library_slug="alpha",
                                      now=timezone.now())
    Chat.objects.filter(pk=chat.pk).update(state=ChatState.ACTIVE, librarian=a1, answered_by=a1)
    chat.refresh_from_db()
    stored, _ = files.post(chat, files.Upload(data=PNG, name="p.png", content_type="image/png"), sender="patron")
    return {"consortium": consortium, "chat": chat, "token": token, "file": stored.file_id, "a1": a1,
            "a2": make_staff(alpha, "a2"), "b1": make_staff(beta, "b1"),
            "coord": make_staff(beta, "coord", role="coordinator"),
            "far_coord": make_staff(far, "farc", role="coordinator")}


@pytest.fixture
def w() -> dict[str, Any]:
    return world()


def deactivate(profile: StaffProfile, what: str) -> None:
    if what == "profile":
        StaffProfile.objects.filter(pk=profile.pk).update(is_active=False)
    else:
        User.objects.filter(pk=profile.user_id).update(is_active=False)


def signed_in(profile: StaffProfile) -> Client:
    client = Client()
    client.force_login(profile.user)
    return client


# --- the rules --------------------------------------------------------------------------------------


def test_staff_of_answers_for_active_librarians_only(w: dict[str, Any]) -> None:
    a1 = w["a1"]
    assert access.staff_of(a1.user) == a1
    assert access.staff_of(AnonymousUser()) is None and access.staff_of(None) is None
    assert access.staff_of(User.objects.create_user("walkin", password="x-Very-long-pw-1")) is None
    stale = User.objects.get(pk=a1.user_id)
    deactivate(a1, "user")
    assert stale.is_active, "a user object read before the account was switched off"
    assert access.staff_of(stale) is None
    a2 = w["a2"]
    deactivate(a2, "profile")
    assert access.staff_of(a2.user) is None


def test_may_read_took_part_home_library_or_coordinator_never_across_consortia(w: dict[str, Any]) -> None:
    chat = w["chat"]
    assert access.may_read(w["a1"], chat)  # holds it
    assert access.may_read(w["a2"], chat)  # the patron is their library's
    assert access.may_read(w["coord"], chat)  # coordinates the consortium
    assert not access.may_read(w["b1"], chat)  # another library, never took part
    assert not access.may_read(w["far_coord"], chat)  # a coordinator elsewhere
    assert not access.may_read(None, chat)
    Offer.objects.create(chat=chat, librarian=w["b1"], step_serial=99, step="partners", queue="beta",
                         mode="broadcast", created_at=timezone.now(), status=Offer.Status.ACCEPTED)
    assert access.may_read(w["b1"], chat), "accepted it once (before a transfer)"


def test_may_trace_leaves_out_the_home_library(w: dict[str, Any]) -> None:
    chat = w["chat"]
    assert access.may_trace(w["a1"], chat) and access.may_trace(w["coord"], chat)
    assert not access.may_trace(w["a2"], chat) and not access.may_trace(w["far_coord"], chat)


def test_patron_chat_checks_the_token_and_the_origin(w: dict[str, Any]) -> None:
    chat, token = w["chat"], w["token"]
    assert access.patron_chat(chat.pk, token, None) == chat
    assert access.patron_chat(chat.pk, token, OWN) == chat
    assert access.patron_chat(chat.pk, token, "https://library.example.org/") == chat
    with pytest.raises(access.NoSuchChat):
        access.patron_chat(chat.pk, "not-the-token", OWN)
    with pytest.raises(access.NoSuchChat):
        access.patron_chat(chat.pk, None, OWN)
    with pytest.raises(access.NoSuchChat):
        access.patron_chat("no-such-chat", token, OWN)
    with pytest.raises(access.OriginRefused):
        access.patron_chat(chat.pk, token, "https://evil.example.com")


# --- a deactivated librarian, at every door -------------------------------------------------------

GETS = [
    ("a1", "/api/v1/chats/{chat}/transcript", 200, 404),
    ("a1", "/api/v1/chats/{chat}/trace", 200, 404),
    ("a1", "/api/v1/chats/{chat}/files/{file}", 200, 404),
    ("coord", "/api/v1/acc/reports/chats.csv", 200, 403),
    ("a1", "/staff/", 200, 403),
    ("a1", "/staff/api/presence", 200, 403),
    ("a1", "/staff/api/chats/{chat}", 200, 403),
    ("a1", "/staff/history/{chat}/", 200, 403),
    ("a1", "/staff/tickets/", 200, 403),
]


@pytest.mark.parametrize(("who", "path", "active", "refused"), GETS)
def test_a_deactivated_staff_profile_is_refused(w: dict[str, Any], who: str, path: str, active: int,
                                                refused: int) -> None:
    url = path.format(chat=w["chat"].pk, file=w["file"])
    client = signed_in(w[who])
    assert client.get(url, HTTP_ORIGIN=OWN).status_code == active
    deactivate(w[who], "profile")
    assert client.get(url, HTTP_ORIGIN=OWN).status_code == refused


@pytest.mark.parametrize(("who", "path", "active", "refused"), GETS)
def test_a_deactivated_user_account_is_refused(w: dict[str, Any], who: str, path: str, active: int,
                                               refused: int) -> None:
    url = path.format(chat=w["chat"].pk, file=w["file"])
    client = signed_in(w[who])
    assert client.get(url, HTTP_ORIGIN=OWN).status_code == active
    deactivate(w[who], "user")
    # Signed out by Django (an inactive account has no session user): a page redirects to sign-in,
    # the staff JSON API answers 401, the chat API 404 or 403 as for anyone else.
    assert client.get(url, HTTP_ORIGIN=OWN).status_code in {refused, 302, 401}


@pytest.mark.parametrize("what", ["profile", "user"])
def test_a_deactivated_librarian_cannot_send_a_file(w: dict[str, Any], what: str) -> None:
    chat, client = w["chat"], signed_in(w["a1"])

    def send(name: str) -> int:
        payload = io.BytesIO(PNG)
        payload.name = name
        return client.post(f"/api/v1/chats/{chat.pk}/files", {"file": payload, "client_id": name}).status_code

    assert send("one.png") == 201
    deactivate(w["a1"], what)
    assert send("two.png") == 404


@pytest.mark.parametrize("what", ["profile", "user"])
async def test_a_deactivated_librarian_is_refused_by_the_staff_socket(what: str) -> None:
    w = await database_sync_to_async(world)()
    user = await database_sync_to_async(lambda: w["a1"].user)()

    async def connect() -> WebsocketCommunicator:
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/staff/",
                                     headers=[(b"origin", OWN.encode())])
        comm.scope["user"] = user  # the user as the session middleware read it, before any change
        connected, _ = await comm.connect()
        assert connected
        return comm

    comm = await connect()
    assert (await comm.receive_json_from(timeout=3))["type"] == "hello"
    await comm.disconnect()
    await database_sync_to_async(deactivate)(w["a1"], what)
    comm = await connect()
    refusal = await comm.receive_json_from(timeout=3)
    assert refusal["type"] == "error" and refusal["code"] == "forbidden"
    assert (await comm.receive_output())["code"] == 4403
