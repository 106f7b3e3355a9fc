"""The TURN credentials the service makes for each share (routing.sharing) against coturn itself, run with
the configuration deploy/ ships: coturn's documented REST scheme (`use-auth-secret`) must accept them,
and refuse one that has expired or was signed with another secret.

A TURN Allocate request is written here by hand (RFC 5766 over RFC 5389, about forty lines): the first
request is answered 401 with the realm and a nonce; the second carries USERNAME, REALM, NONCE and a
MESSAGE-INTEGRITY keyed with MD5(username:realm:password), and is answered with a relayed address or
an error code. This is the exchange a browser makes before it relays a shared screen.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routing import sharing
from tests.live.stack import free_port

# Runs a real coturn, as the live tests run real processes: in the PostgreSQL + Redis stage (.ci/run installs it).
pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "coturn" / "turnserver.conf"
SECRET = "shared-" + secrets.token_hex(8)
COOKIE = 0x2112A442
ALLOCATE, ALLOCATE_OK, ALLOCATE_ERROR = 0x0003, 0x0103, 0x0113
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
REQUESTED_TRANSPORT, XOR_RELAYED_ADDRESS = 0x0019, 0x0016


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _message(kind: int, tid: bytes, attrs: bytes, key: bytes | None = None) -> bytes:
    if key is None:
        return struct.pack("!HHI", kind, len(attrs), COOKIE) + tid + attrs
    # MESSAGE-INTEGRITY covers the header with its length already counting the integrity attribute.
    head = struct.pack("!HHI", kind, len(attrs) + 24, COOKIE) + tid
    digest = hmac.new(key, head + attrs, hashlib.sha1).digest()
    return head + attrs + _attr(MESSAGE_INTEGRITY, digest)


def _parse(data: bytes) -> tuple[int, dict[int, bytes]]:
    kind, length = struct.unpack("!HH", data[:4])
    attrs, at = {}, 20
    while at < 20 + length:
        a_kind, a_len = struct.unpack("!HH", data[at:at + 4])
        attrs[a_kind] = data[at + 4:at + 4 + a_len]
        at += 4 + a_len + (-a_len % 4)
    return kind, attrs


def allocate(port: int, username: str, password: str) -> tuple[bool, int]:
    """(allocated, error code) for a TURN Allocate over UDP with these long-term credentials."""
    transport = _attr(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))  # a UDP relay, as browsers ask
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(_message(ALLOCATE, secrets.token_bytes(12), transport), ("127.0.0.1", port))
        kind, attrs = _parse(s.recv(2048))
        assert kind == ALLOCATE_ERROR and REALM in attrs and NONCE in attrs, "coturn asks for credentials first"
        realm, nonce = attrs[REALM], attrs[NONCE]
        key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()  # RFC 5389: MD5
        body = transport + _attr(USERNAME, username.encode()) + _attr(REALM, realm) + _attr(NONCE, nonce)
        s.sendto(_message(ALLOCATE, secrets.token_bytes(12), body, key), ("127.0.0.1", port))
        kind, attrs = _parse(s.recv(2048))
    if kind == ALLOCATE_OK:
        assert XOR_RELAYED_ADDRESS in attrs
        return True, 0
    code = attrs.get(ERROR_CODE, b"\0\0\0\0")
    return False, code[2] * 100 + code[3]


@pytest.fixture(scope="module")
def coturn() -> Iterator[int]:
    """coturn with deploy/coturn/turnserver.conf, on loopback and a free port, TLS off (no certificate
    here): the authentication settings are the shipped file's."""
    turnserver = shutil.which("turnserver")
    if turnserver is None:
        pytest.fail("coturn's turnserver is needed: apt-get install coturn (.ci/run installs it)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="vr-coturn-"))
    proc = subprocess.Popen(
        [turnserver, "-c", str(CONFIG), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--no-tls", "--no-dtls", f"--static-auth-secret={SECRET}",
         f"--pidfile={workdir / 'turn.pid'}", "--log-file=stdout", "--min-port=50100", "--max-port=50199"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                allocate(port, "0:probe", "x")
                break
            except (TimeoutError, ConnectionRefusedError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("coturn did not answer on its port")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_shipped_configuration_uses_short_lived_rest_credentials_and_tls_on_443() -> None:
    lines = {line.split("=", 1)[0]: line.split("=", 1)[-1] for line in CONFIG.read_text().splitlines()
             if line and not line.startswith("#")}
    assert "use-auth-secret" in lines and "static-auth-secret" in lines
    assert lines["tls-listening-port"] == "443"
    assert "lt-cred-mech" not in lines and "user" not in lines, "no static users: per-share credentials only"
    assert "allow-loopback-peers" not in lines and lines.get("denied-peer-ip")


def test_coturn_accepts_the_credential_made_for_a_share_and_refuses_expired_or_foreign_ones(coturn: int) -> None:
    now = datetime.now(UTC)
    username, password = sharing.turn_credentials(SECRET, "1234", now, 3600)
    assert allocate(coturn, username, password) == (True, 0)
    # The ICE configuration the service sends a browser carries exactly that credential.
    ice = sharing.ice_config(sharing.IceSettings(urls=(f"turn:127.0.0.1:{coturn}",), turn_secret=SECRET), "77", now)
    turn = ice["iceServers"][0]
    assert allocate(coturn, turn["username"], turn["credential"]) == (True, 0)
    # Expired (made two hours ago for one hour), or signed with another secret: 401.
    old_user, old_password = sharing.turn_credentials(SECRET, "1234", now - timedelta(hours=2), 3600)
    assert allocate(coturn, old_user, old_password) == (False, 401)
    other_user, other_password = sharing.turn_credentials("not-the-secret", "1234", now, 3600)
    assert allocate(coturn, other_user, other_password) == (False, 401)
    # A credential is bound to its username: another share's name with this password fails.
    assert allocate(coturn, username.replace(":1234", ":1235"), password) == (False, 401)
