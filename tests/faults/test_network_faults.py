"""Network faults against the production stack (deploy/Procfile through tests/live/stack.py).

- A half-open connection: a librarian's console in a network namespace of the test's own loses its
  link without a FIN or an RST (a pulled cable, a laptop lid closed on Wi-Fi). Nothing tells the
  server; only daphne's pings can. The librarian must be shown offline, and their chat go back to
  routing, within the ping interval plus the ping timeout (deploy/Procfile) plus the reconnect grace.

The reconnect storm is tests/faults/test_storm.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faults.outages import Namespace, namespace
from tests.live.stack import PASSWORD, PY, ROOT, Stack, free_port, login, procfile, start_chat, world

pytestmark = pytest.mark.fault


def ping_settings() -> tuple[int, int]:
    """daphne's --ping-interval and --ping-timeout, as deploy/Procfile runs it."""
    web = procfile()["web"]
    interval = re.search(r"--ping-interval\s+(\d+)", web)
    timeout = re.search(r"--ping-timeout\s+(\d+)", web)
    assert interval and timeout, f"deploy/Procfile's web line sets no ping interval/timeout: {web}"
    return int(interval[1]), int(timeout[1])


# daphne checks every open socket for a due ping every 2 s (daphne.server.Server.timeout_checker), so a
# ping goes out up to 2 s after the interval has passed.
DAPHNE_CHECK_PERIOD = 2.0
# The timer sweeps every 0.25 s; on this shared, slow machine a tick, the disconnect's own database
# write and the poll below can each lag by a second or so.
SLACK = 5.0
GRACE = 3  # the consortium's reconnect grace (seconds) in this test's world


def start_web_on(stack: Stack, name: str, host: str) -> str:
    """One more web process of the stack, listening on `host` (Procfile honours HOST and PORT)."""
    port = free_port()
    stack.ports[name] = port
    env = dict(stack.env, HOST=host, PORT=str(port))
    log = (stack.workdir / f"{name}.log").open("ab")
    stack.procs[name] = subprocess.Popen(["bash", "-c", "exec " + procfile()["web"]], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{host}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return base
        time.sleep(0.2)
    raise RuntimeError(f"{name} on {base} did not answer:\n{stack.logs()}")


@pytest.fixture
def netns() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


async def next_event(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise AssertionError(f"the namespace client ended (exit {await proc.wait()})")
    return dict(json.loads(line))


async def test_a_half_open_connection_shows_the_librarian_offline_within_the_ping_bound(netns: Namespace) -> None:
    interval, ping_timeout = ping_settings()
    bound = interval + DAPHNE_CHECK_PERIOD + ping_timeout + GRACE + SLACK
    doc = world("halfopen", libraries=[{"slug": "alpha"}],
                staff=[{"username": "cut", "library": "alpha", "capacity": 5}],
                reconnect_grace=GRACE, local_timeout=600, offer_timeout=600, max_wait=3600, patron_grace=3600)
    stack = Stack.prepare([doc], ALLOWED_HOSTS=f"127.0.0.1,localhost,{netns.host_ip}")
    client: asyncio.subprocess.Process | None = None
    try:
        stack.start(webs=1)
        far = start_web_on(stack, "web_ns", netns.host_ip)  # the namespace reaches this host only here
        cookies = login(stack.base(), "cut", PASSWORD)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        client = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns.name, str(PY), "-m", "tests.faults.netns_librarian",
            "ws" + far[4:] + "/ws/staff/", far, cookie, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        assert (await next_event(client, 30))["event"] == "hello"
        assert (await next_event(client, 30))["event"] == "available"
        chat = await start_chat(stack.base(), "halfopen", "Held across a pulled cable", library="alpha")
        assert (await next_event(client, 30)) == {"event": "assigned", "chat": chat["id"]}
        librarian = "(SELECT p.id FROM libraries_staffprofile p JOIN auth_user u ON u.id = p.user_id " \
                    "WHERE u.username = 'cut')"
        assert stack.sql(f"SELECT online::text || status FROM routing_librarianpresence WHERE librarian_id = "
                         f"{librarian}") == "trueavailable"

        netns.cut()
        cut_at = time.monotonic()
        # No FIN, no RST: a few seconds on, the server still holds the socket (the test would
        # otherwise be about a clean close, which is noticed at once).
        await asyncio.sleep(5)
        assert stack.sql(f"SELECT count(*) FROM routing_connection WHERE librarian_id = {librarian}") == "1"

        closed_after = offline_after = None
        while time.monotonic() - cut_at < bound + 30:  # look past the bound, to report how late
            elapsed = time.monotonic() - cut_at
            if closed_after is None and stack.sql(
                    f"SELECT count(*) FROM routing_connection WHERE librarian_id = {librarian}") == "0":
                closed_after = elapsed
            if stack.sql(f"SELECT online FROM routing_librarianpresence WHERE librarian_id = {librarian}") == "f":
                offline_after = elapsed
                break
            await asyncio.sleep(0.25)
        print(f"half-open: socket closed by the server {closed_after} s after the cut, librarian offline "
              f"{offline_after} s after (bound {bound} s: ping {interval} + check {DAPHNE_CHECK_PERIOD} + "
              f"timeout {ping_timeout} + grace {GRACE} + slack {SLACK})")
        assert offline_after is not None, f"the librarian was still shown online {bound + 30:.0f} s after the cut"
        assert offline_after <= bound, f"offline only {offline_after:.1f} s after the cut (bound {bound} s)"
        # What the router sees: the chat the librarian held went back to routing, once.
        requeued = stack.sql(f"SELECT string_agg(data->>'reason', ',') FROM routing_traceevent "
                             f"WHERE chat_id = '{chat['id']}' AND kind = 'requeued'")
        assert requeued == "librarian_lost"
        assert stack.sql(f"SELECT state FROM routing_chat WHERE id = '{chat['id']}'") != "active"
    finally:
        if client is not None and client.returncode is None:
            client.kill()
            await client.wait()
        print(stack.logs()[-4000:])
        stack.stop()
