"""Screen and page sharing (issue 19): what a share is, the ICE servers a share's browsers are given,
and the checks on what a browser relays to the other side. Plain Python; the writes (request, consent,
end) are routing.services.shares, the socket frames routing.sockets.sharing.

A share is peer to peer: the service only carries the signalling (the WebRTC offer, answer and ICE
candidates) over the chat's sockets, and never sees, relays or stores a frame of the picture. What it
keeps is who asked, who consented, when, and for how long (the `Share` row and the chat's trace).

Kinds, named for what the librarian does:
- `show`: the librarian shows their screen to the patron ("Let me show you");
- `see`: the librarian asks to see the patron's screen ("Show me");
- `page`: the librarian asks which page of the library's site the patron is on (light co-browse).
Every kind starts only when the patron consents.

TURN credentials follow the TURN REST scheme that coturn implements (`use-auth-secret`): the username
is "<unix expiry>:<share id>" and the password base64(HMAC-SHA1(secret, username)). The secret stays
on the server; a credential opens the relay for one share until it expires, and names nobody.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from routing.validation import Fields

KINDS = ("show", "see", "page")
MEDIA_KINDS = ("show", "see")  # the kinds that carry a picture over WebRTC

# How long a browser waits for the peer connection before it gives up and suggests a screenshot
# (the issue: "a clear message within 15 s"); sent with every share, so a deployment can shorten it.
CONNECT_TIMEOUT_SECONDS = 12

# Signalling limits. A screen-share SDP is a few kilobytes; a socket frame is at most 64 KiB.
MAX_SDP = 32_000
MAX_CANDIDATE = 1_000
MAX_CANDIDATES = 50  # per share_ice frame: browsers batch what they gather
MAX_PAGE_URL = 2_000
MAX_PAGE_TITLE = 200


@dataclass(frozen=True)
class IceSettings:
    """The deployment's ICE servers (settings.ICE_SERVERS and friends, docs/deploy.md)."""

    urls: tuple[str, ...]
    turn_secret: str = ""
    credential_seconds: int = 3600
    relay_only: bool = False


def turn_credentials(secret: str, share_id: str, now: datetime, seconds: int) -> tuple[str, str]:
    """(username, password) for the TURN REST scheme: valid until `now` + `seconds`."""
    username = f"{int(now.timestamp()) + seconds}:{share_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_config(ice: IceSettings, share_id: str, now: datetime) -> dict[str, Any]:
    """The RTCConfiguration a share's browsers use: STUN servers as they are, TURN servers with a
    credential made for this share. Without TURN servers a strict network cannot connect, and the
    browsers say so (the screenshot suggestion)."""
    stun = [u for u in ice.urls if u.startswith(("stun:", "stuns:"))]
    turn = [u for u in ice.urls if u.startswith(("turn:", "turns:"))]
    servers: list[dict[str, Any]] = []
    if stun:
        servers.append({"urls": stun})
    if turn and ice.turn_secret:
        username, password = turn_credentials(ice.turn_secret, share_id, now, ice.credential_seconds)
        servers.append({"urls": turn, "username": username, "credential": password})
    return {"iceServers": servers, "iceTransportPolicy": "relay" if ice.relay_only and turn else "all",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS}


def ice_urls(raw: str) -> tuple[str, ...]:
    """ICE_SERVERS from the environment: URLs separated by spaces or commas; anything that is not a
    stun:, stuns:, turn: or turns: URL is refused at start-up rather than handed to browsers."""
    urls = tuple(u for u in raw.replace(",", " ").split() if u)
    bad = [u for u in urls if not u.startswith(("stun:", "stuns:", "turn:", "turns:"))]
    if bad:
        raise ValueError(f"ICE_SERVERS: not a STUN or TURN URL: {', '.join(bad)}")
    return urls


def web_address(f: Fields, name: str) -> str:
    """An http(s) address of at most MAX_PAGE_URL characters (a page shared or pushed)."""
    value = f.text(name, required=True, max_len=MAX_PAGE_URL)
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            f.problem(name, "must be an http or https address")
            return ""
    return value


def share_id_of(f: Fields) -> int:
    return f.integer("share", required=True, minimum=1)


def sdp_of(f: Fields) -> str:
    return f.text("sdp", required=True, max_len=MAX_SDP, strip=False)


def candidates_of(f: Fields) -> list[dict[str, Any]]:
    """`candidates`: a list of RTCIceCandidateInit objects, each checked and rebuilt from its known
    members only, so nothing else a browser put there travels to the other side."""
    value = f.data.get("candidates")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CANDIDATES:
        f.problem("candidates", f"must be a list of 1..{MAX_CANDIDATES} ICE candidates")
        return []
    out = []
    for c in value:
        if not isinstance(c, dict):
            f.problem("candidates", "each must be an object")
            return []
        text, mid, index = c.get("candidate"), c.get("sdpMid"), c.get("sdpMLineIndex")
        if (not isinstance(text, str) or len(text) > MAX_CANDIDATE or "\x00" in text
                or (mid is not None and (not isinstance(mid, str) or len(mid) > 64))
                or (index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                           or not 0 <= index <= 64))):
            f.problem("candidates", f"each must be {{candidate: string <= {MAX_CANDIDATE}, sdpMid, sdpMLineIndex}}")
            return []
        out.append({"candidate": text, "sdpMid": mid, "sdpMLineIndex": index})
    return out
