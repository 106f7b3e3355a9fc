"""Input schemathesis found answered 500 (tests/live/test_openapi.py): a NUL byte, which PostgreSQL
refuses in a query, in a chat id, a JSON text field or the widget's library; a multipart body
Django cannot parse. Each is now the documented 4xx. (The NUL cases fail on PostgreSQL only.)"""

from __future__ import annotations

import json
import random

import pytest
from django.core.exceptions import RequestDataTooBig
from django.http.multipartparser import MultiPartParserError
from django.test import Client, RequestFactory

from consortium.middleware import ApiErrorMiddleware
from tests.factories import make_consortium, make_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    make_library(make_consortium("nul"), "nul-a")
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("path", ["/api/v1/chats/a%00b/transcript", "/api/v1/chats/a%00b/events",
                                  "/api/v1/chats/a%00b/files/f%00"])
def test_a_nul_in_a_chat_id_is_an_unknown_chat(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("field", ["question", "library", "name", "zip"])
def test_a_nul_in_a_text_field_is_invalid(client: Client, field: str) -> None:
    body = {"question": "Where are the maps?", field: "a\x00b"}
    response = client.post("/api/v1/nul/chats", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_nul_in_a_client_id_is_invalid(client: Client) -> None:
    # A fresh address: in CI the chat-start counters live in Redis, shared by every process.
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.7"
    started = client.post("/api/v1/nul/chats", json.dumps({"question": "Maps?"}), content_type="application/json",
                          REMOTE_ADDR=address)
    assert started.status_code == 201, started.content
    chat = started.json()
    response = client.post(f"/api/v1/chats/{chat['id']}/messages", json.dumps({"body": "hi", "client_id": "a\x00"}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {chat['token']}")
    assert response.status_code == 400
    assert "client_id" in response.json()["error"]["fields"]


def test_a_nul_in_the_widgets_library_is_an_unknown_library(client: Client) -> None:
    response = client.get("/api/v1/nul/widget", {"library": "nul-a\x00"})
    assert response.status_code == 404
    assert client.get("/api/v1/nul/widget", {"library": "nul-a"}).status_code == 200


@pytest.mark.parametrize(("error", "status"), [(MultiPartParserError("Invalid boundary in multipart: None"), 400),
                                               (RequestDataTooBig("too big"), 413)])
def test_a_body_django_cannot_parse_is_a_json_4xx_not_a_500(error: Exception, status: int) -> None:
    request = RequestFactory().post("/api/v1/chats/abc/files")
    response = ApiErrorMiddleware(lambda r: None).process_exception(request, error)
    assert response is not None and response.status_code == status
    assert json.loads(response.content)["error"]["code"] in {"invalid", "too_large"}
