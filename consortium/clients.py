"""Who the client is: its address, and the key every per-client limit counts it by.

The address is the socket peer, never a header a client can write, unless the peer is one of
``TRUSTED_PROXIES`` (nginx on the machine itself, by default): then it is the nearest address in
``X-Forwarded-For`` that is not one of those proxies, and the scheme is the one ``X-Forwarded-Proto``
names. `TrustedProxyMiddleware` applies this once, around the whole ASGI application (consortium/asgi.py),
to HTTP requests and WebSocket handshakes alike, and takes both headers away: past it,
``scope["client"]`` (``request.META["REMOTE_ADDR"]``) and ``scope["scheme"]`` (``request.is_secure()``)
are the truth, and no later code can believe a forged header. (daphne's own ``--proxy-headers`` believed
``X-Forwarded-For`` from anyone who could reach it, which also opened ``/metrics``' allow-list.)

The key (`client_key`) is the address for IPv4 and the /64 network for IPv6: one household, phone or
office is handed a whole /64 and can pick a new address in it for every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_CLIENT_PREFIX = 64
_FORWARDED = {b"x-forwarded-for", b"x-forwarded-proto"}


def trusted_proxies() -> list[IpNetwork]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]


def is_proxy(address: str, proxies: list[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: str, proxies: list[IpNetwork]) -> str:
    """The client's address: `peer`, or for a peer in `proxies` the nearest `forwarded_for` hop that is not."""
    if not proxies or not is_proxy(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    # Read from the right: each proxy appends the address it was reached from, so the nearest hop that is
    # not one of ours is the client; anything to its left was written by the client itself.
    for hop in reversed(hops):
        if not is_proxy(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a proxy of ours that writes no address: count by the proxy, never by a guess
    return peer


def client_key(address: str) -> str:
    """What per-client limits count by: the IPv4 address, or the first address of the IPv6 /64.

    Always an address (so that django-axes can store it as one): ``2001:db8:1:2::`` stands for the
    whole ``2001:db8:1:2::/64``. An IPv4 address written as IPv6 (``::ffff:192.0.2.1``) is the IPv4 one.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False).network_address)
    return str(ip)


def request_address(request: HttpRequest) -> str:
    """The client's address. Behind the middleware REMOTE_ADDR already is (the headers are gone); the rule
    is applied here as well for requests that never passed it (Django's test client)."""
    return forwarded_client(str(request.META.get("REMOTE_ADDR") or ""),
                            str(request.META.get("HTTP_X_FORWARDED_FOR", "")), trusted_proxies())


def request_client_key(request: HttpRequest) -> str:
    """The key of the client behind an HTTP request, for every per-client limit."""
    return client_key(request_address(request))


def scope_client_key(scope: dict[str, Any]) -> str:
    """The key of the client behind a WebSocket (its scope, after the middleware)."""
    client = scope.get("client") or ("", 0)
    return client_key(str(client[0] or ""))


ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class TrustedProxyMiddleware:
    """Sets scope["client"] and scope["scheme"] from a trusted proxy's headers; drops those headers always."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = resolve_scope(scope, trusted_proxies())
        await self.app(scope, receive, send)


def resolve_scope(scope: dict[str, Any], proxies: list[IpNetwork]) -> dict[str, Any]:
    """A copy of `scope` with the client (and scheme) a trusted proxy names, and no forwarding headers."""
    headers = list(scope.get("headers") or [])
    named: dict[bytes, str] = {}
    for name, value in headers:
        if name.lower() in _FORWARDED:  # a header sent twice is one list (RFC 9110, 5.3)
            named[name.lower()] = ",".join(filter(None, [named.get(name.lower(), ""), value.decode("latin-1")]))
    scope = {**scope, "headers": [(n, v) for n, v in headers if n.lower() not in _FORWARDED]}
    peer = str((scope.get("client") or ("", 0))[0] or "")
    if not is_proxy(peer, proxies):
        return scope
    scope["client"] = (forwarded_client(peer, named.get(b"x-forwarded-for", ""), proxies), 0)
    if named.get(b"x-forwarded-proto", "").split(",")[0].strip().lower() == "https":
        scope["scheme"] = "wss" if scope["type"] == "websocket" else "https"
    return scope
