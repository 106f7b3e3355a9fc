"""Issue 13.7: JSON nested too deep is refused as any bad input is (400, an `invalid` error frame),
never a 500, a dropped socket or a traceback, wherever the service reads JSON from a client."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from routing.validation import MAX_JSON_DEPTH
from routing.ws_urls import websocket_urlpatterns
from tests.factories import PASSWORD, make_consortium, make_library, make_staff
from tests.routing.socket_helpers import ORIGIN, expect, patron_socket, socket_world, staff_socket, start_chat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]
OWN = "http://127.0.0.1:8000"
DEEP = "[" * 50_000 + "]" * 10  # under the 64 KiB of a body or frame, far past the parser's recursion limit
DEEP_FIELD = '{"type": "message", "client_id": "d", "body": ' + "[" * 40 + "]" * 40 + "}"
NESTED = f"nests deeper than {MAX_JSON_DEPTH} levels"


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_deep_body_is_a_400_on_the_patron_and_staff_apis(caplog: pytest.LogCaptureFixture) -> None:
    consortium = make_consortium("deep")
    library = make_library(consortium, "deep-a")
    client = Client()
    for body in (DEEP, '{"question": ' + "{" * 40 + "}" * 40 + "}"):
        r = client.post("/api/v1/deep/chats", data=body, content_type="application/json", HTTP_ORIGIN=OWN)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid", r.content
        assert NESTED in r.json()["error"]["detail"]
    r = client.post("/api/v1/deep/chats", data=json.dumps({"question": "Still here?", "library": "deep-a"}),
                    content_type="application/json", HTTP_ORIGIN=OWN)
    assert r.status_code == 201, "nothing lost: the next good request works"
    chat = r.json()
    r = client.post(f"/api/v1/chats/{chat['id']}/messages", data=DEEP, content_type="application/json",
                    HTTP_ORIGIN=OWN, HTTP_AUTHORIZATION=f"Bearer {chat['token']}")
    assert r.status_code == 400 and NESTED in r.json()["error"]["detail"]
    staff = Client()
    make_staff(library, "deeplib")
    assert staff.login(username="deeplib", password=PASSWORD)
    r = staff.post(f"/staff/api/chats/{chat['id']}/classify", data=DEEP, content_type="application/json")
    assert r.status_code == 400 and NESTED in r.json()["error"]["detail"]
    no_errors_logged(caplog)


async def test_a_deep_frame_is_an_invalid_error_frame_and_the_socket_stays(caplog: pytest.LogCaptureFixture) -> None:
    w: dict[str, Any] = await database_sync_to_async(socket_world)()
    chat, token = await start_chat(w)
    # Before join: read like any bad frame (answered, socket open), then the join still works.
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/patron/", headers=[ORIGIN])
    assert (await comm.connect())[0]
    await comm.send_to(text_data=DEEP)
    error = await comm.receive_json_from()
    assert error["type"] == "error" and error["code"] == "invalid" and NESTED in error["detail"]
    await comm.send_json_to({"type": "join", "chat": chat.pk, "token": token, "after": 0})
    await expect(comm, "joined")
    for frame in (DEEP, DEEP_FIELD):
        await comm.send_to(text_data=frame)
        error = await expect(comm, "error")
        assert error["code"] == "invalid" and NESTED in error["detail"]
    await comm.send_json_to({"type": "ping"})
    await expect(comm, "pong")
    await comm.disconnect()
    staff = await staff_socket(w["a1"])
    await expect(staff, "hello")
    await staff.send_to(text_data=DEEP)
    assert (await expect(staff, "error"))["code"] == "invalid"
    await staff.send_json_to({"type": "ping"})
    await expect(staff, "pong")
    await staff.disconnect()
    joined = await patron_socket(chat.pk, token)
    await expect(joined, "joined")
    await joined.disconnect()
    no_errors_logged(caplog)


async def test_the_coordinator_socket_ignores_a_deep_frame_and_still_answers_a_ping(
        caplog: pytest.LogCaptureFixture) -> None:
    consortium = await database_sync_to_async(make_consortium)("deepc")
    library = await database_sync_to_async(make_library)(consortium, "deepc-a")
    coordinator = await database_sync_to_async(make_staff)(library, "deepcora", role="coordinator")
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/coordinator/", headers=[ORIGIN])
    comm.scope["user"] = await database_sync_to_async(lambda: coordinator.user)()
    assert (await comm.connect())[0]
    await comm.send_to(text_data=DEEP)
    await comm.send_json_to({"type": "ping"})
    await expect(comm, "pong", timeout=5)
    await comm.disconnect()
    no_errors_logged(caplog)
