"""Issue 13.6 and 13.14, black-box through the production stack (real daphne without --proxy-headers,
workers, PostgreSQL and Redis): who the client is, and which pages may use the chat service.

The stack's "nginx" is 127.0.0.2 (TRUSTED_PROXIES): a client bound to that source address plays the
proxy. Any other loopback address (the whole of 127.0.0.0/8 reaches daphne on 127.0.0.1) is a client
that reached daphne directly, whatever headers it writes."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live.stack import Stack, connect, start_chat, world

PROXY = "127.0.0.2"
METRICS_READER = "198.51.100.50"  # Prometheus, as the proxy names it
WORLD = world("keys", libraries=[{"slug": "keys-a"}], staff=[{"username": "keys1", "library": "keys-a"}])
WORLD["consortium"]["allowed_origins"] = ["https://Library.Example.org:443/"]  # stored normalised
START_RATE = 3  # an hour, per client


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD], TRUSTED_PROXIES=f"{PROXY}/32", METRICS_ALLOWED_IPS=METRICS_READER,
                       CHAT_START_RATE=f"{START_RATE}/h").running() as s:
        yield s


def direct_address() -> str:
    """A loopback address of its own for each test run: the limits' counts live in Redis for an hour."""
    while True:
        address = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(254) + 1}.{secrets.randbelow(253) + 2}"
        if address != PROXY:
            return address


def client(base: str, source: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=20, transport=httpx.HTTPTransport(local_address=source))


def start(c: httpx.Client, **headers: str) -> int:
    r = c.post("/api/v1/keys/chats", content=json.dumps({"question": "Key test?", "library": "keys-a"}),
               headers={"Content-Type": "application/json", "Origin": str(c.base_url).rstrip("/"), **headers})
    assert r.status_code in {201, 429}, r.text
    return r.status_code


def an_hour_apart(first: float) -> bool:
    return int(first // 3600) != int(time.time() // 3600)  # the fixed window turned over mid-test: try again


def test_metrics_believe_the_proxy_and_no_one_else(stack: Stack) -> None:
    base = stack.base()
    with client(base, direct_address()) as direct:
        assert direct.get("/metrics", headers={"X-Forwarded-For": METRICS_READER}).status_code == 404
        assert direct.get("/metrics", headers={"X-Forwarded-For": f"203.0.113.9, {METRICS_READER}"}).status_code == 404
    with client(base, PROXY) as proxy:
        r = proxy.get("/metrics", headers={"X-Forwarded-For": METRICS_READER})
        assert r.status_code == 200 and "vr_" in r.text
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
        assert proxy.get("/metrics").status_code == 404, "the proxy itself is not the reader"


def test_a_direct_client_cannot_choose_its_rate_limit_key(stack: Stack) -> None:
    for _ in range(2):
        began = time.time()
        with client(stack.base(), direct_address()) as direct:
            codes = [start(direct, **{"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"})
                     for n in range(START_RATE + 1)]
        if not an_hour_apart(began):
            break
    assert codes == [201] * START_RATE + [429], "every forged address counted as the one peer"


def test_behind_the_proxy_an_ipv6_client_is_one_64(stack: Stack) -> None:
    for _ in range(2):
        began = time.time()
        net = "2001:db8:" + ":".join(f"{secrets.randbelow(65535) + 1:x}" for _ in range(2))
        other = "2001:db8:" + ":".join(f"{secrets.randbelow(65535) + 1:x}" for _ in range(2))
        with client(stack.base(), PROXY) as proxy:
            # A new address of the same /64 for every request: still one client.
            codes = [start(proxy, **{"X-Forwarded-For": f"{net}:{n + 1:x}::{n + 7:x}"}) for n in range(START_RATE)]
            # What the client wrote itself is on the left, the proxy appended the real one: counted by that.
            codes.append(start(proxy, **{"X-Forwarded-For": f"203.0.113.77, {net}:ffff::1"}))
            fresh = start(proxy, **{"X-Forwarded-For": f"{other}::1"})
        if not an_hour_apart(began):
            break
    assert codes == [201] * START_RATE + [429]
    assert fresh == 201 or other.startswith(net), "another /64 is another client"


async def test_origins_are_compared_by_scheme_host_and_port(stack: Stack) -> None:
    """The consortium file said https://Library.Example.org:443/; the browser sends it as below."""
    base = stack.base()
    library = "https://library.example.org"
    with client(base, PROXY) as proxy:
        def widget(origin: str) -> int:
            return proxy.get("/api/v1/keys/widget", headers={"Origin": origin}).status_code

        assert widget(library) == 200 and widget(library + ":443") == 200
        assert widget(library + ":8443") == 403, "another port is another site"
        assert widget("http://library.example.org") == 403, "plain http is another site"
        assert widget("https://library.example.org.evil.example") == 403
    chat = await start_chat(base, "keys", "Which origin?", library="keys-a")
    for origin, allowed in ((library + ":8443", False), ("http://library.example.org", False), (library, True)):
        sock = await connect(base, "/ws/patron/", {"Origin": origin})
        await sock.send({"type": "join", "chat": chat["id"], "token": chat["token"], "after": 0})
        if allowed:
            await sock.expect("joined", timeout=15)
        else:
            assert (await sock.expect("error", timeout=15))["code"] == "forbidden"
        await sock.close()
