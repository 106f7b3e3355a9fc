"""consortium.clients: who the client is (socket peer, or what a trusted proxy names) and the key every
per-client limit counts it by (an IPv6 client's /64), for HTTP requests and WebSocket scopes alike."""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from consortium import asgi
from consortium.clients import (
    TrustedProxyMiddleware,
    client_key,
    forwarded_client,
    resolve_scope,
    scope_client_key,
)
from consortium.signin import client_address
from tests.asgi_requests import request
from tests.factories import make_consortium

PROXIES = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::/64")]


def test_ipv6_clients_are_keyed_by_their_64_and_ipv4_by_the_address() -> None:
    assert client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::"
    assert client_key("2001:db8:1:2::1") == client_key("2001:0DB8:1:2:ffff::9") == "2001:db8:1:2::"
    assert client_key("2001:db8:1:3::1") == "2001:db8:1:3::", "the next /64 is another client"
    assert client_key("192.0.2.7") == "192.0.2.7" and client_key("192.0.2.8") == "192.0.2.8"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7", "IPv4 written as IPv6 is the IPv4 client"
    assert client_key("") == "unknown"
    assert scope_client_key({"client": ("2001:db8:9:9::5", 4242)}) == "2001:db8:9:9::"
    assert scope_client_key({"client": None}) == "unknown"


def test_the_forwarded_address_is_believed_from_a_trusted_proxy_only() -> None:
    assert forwarded_client("203.0.113.7", "198.51.100.1", PROXIES) == "203.0.113.7"
    assert forwarded_client("10.0.0.5", "198.51.100.1", PROXIES) == "198.51.100.1"
    # The client wrote the left one itself; our proxies appended the rest.
    assert forwarded_client("10.0.0.5", "1.2.3.4, 198.51.100.9, 10.0.0.6", PROXIES) == "198.51.100.9"
    assert forwarded_client("fd00::1", "2001:db8::7", PROXIES) == "2001:db8::7"
    assert forwarded_client("10.0.0.5", "", PROXIES) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", "10.0.0.6", PROXIES) == "10.0.0.5", "only proxies: the peer"
    assert forwarded_client("10.0.0.5", "not-an-address", PROXIES) == "10.0.0.5", "never a guess"
    assert forwarded_client("10.0.0.5", "198.51.100.1", []) == "10.0.0.5"


def scope(peer: str, *headers: tuple[bytes, bytes], kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "scheme": "ws" if kind == "websocket" else "http", "client": (peer, 50000),
            "headers": [(b"host", b"chat.example.org"), *headers]}


def test_the_scope_gets_the_client_and_scheme_a_proxy_names_and_loses_the_headers() -> None:
    forged = scope("203.0.113.7", (b"x-forwarded-for", b"127.0.0.1"), (b"X-Forwarded-Proto", b"https"))
    out = resolve_scope(forged, PROXIES)
    assert out["client"] == ("203.0.113.7", 50000) and out["scheme"] == "http"
    assert out["headers"] == [(b"host", b"chat.example.org")], "nothing later can believe a forged header"
    via = resolve_scope(scope("10.0.0.5", (b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")),
                        PROXIES)
    assert via["client"] == ("198.51.100.1", 0) and via["scheme"] == "https"
    ws = resolve_scope(scope("10.0.0.5", (b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"198.51.100.2"),
                             (b"x-forwarded-proto", b"https"), kind="websocket"), PROXIES)
    assert ws["client"] == ("198.51.100.2", 0) and ws["scheme"] == "wss", "a repeated header is one list"
    plain = resolve_scope(scope("10.0.0.5", (b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"http")),
                          PROXIES)
    assert plain["scheme"] == "http"


def test_the_whole_asgi_application_is_behind_the_middleware() -> None:
    assert isinstance(asgi.application, TrustedProxyMiddleware)


async def metrics_status(peer: str, *headers: tuple[bytes, bytes]) -> int:
    status, _, _ = await request(asgi.application, "GET", "/metrics", peer=peer, headers=list(headers))
    return status


@pytest.mark.django_db(transaction=True)
@override_settings(TRUSTED_PROXIES=["10.0.0.0/24"], METRICS_ALLOWED_IPS=["198.51.100.50"])
async def test_metrics_through_asgi_believes_a_trusted_proxy_and_no_one_else() -> None:
    assert await metrics_status("203.0.113.7", (b"x-forwarded-for", b"198.51.100.50")) == 404
    assert await metrics_status("10.0.0.5", (b"x-forwarded-for", b"198.51.100.50")) == 200
    assert await metrics_status("10.0.0.5", (b"x-forwarded-for", b"198.51.100.51")) == 404


@pytest.mark.django_db(transaction=True)
def test_chat_starts_from_one_ipv6_64_share_one_limit(settings: Any) -> None:
    settings.CHAT_START_RATE = "2/h"
    make_consortium("six")
    # A fresh /64 each run: in CI the counters live in Redis, shared by every process.
    prefix = "2001:db8:" + ":".join(f"{secrets.randbelow(65535) + 1:x}" for _ in range(2))

    def start(address: str) -> int:
        return Client().post("/api/v1/six/chats", data=json.dumps({"question": "hi"}), content_type="application/json",
                             HTTP_ORIGIN="http://127.0.0.1:8000", REMOTE_ADDR=address).status_code

    assert [start(f"{prefix}::1"), start(f"{prefix}:1:2:3:4")] == [201, 201]
    assert start(f"{prefix}:ffff:ffff:ffff:ffff") == 429, "a new address in the same /64 is the same client"
    other = "2001:db8:" + ":".join(f"{secrets.randbelow(65535) + 1:x}" for _ in range(2))
    assert other == prefix or start(f"{other}::1") == 201, "another /64 is another client"
    assert client_address(RequestFactory().get("/", REMOTE_ADDR=f"{prefix}::9")) == f"{prefix}::", \
        "the sign-in limits count the same key"
