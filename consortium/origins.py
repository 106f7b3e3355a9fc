"""Web origins (scheme, host, port), written one way so that two spellings of one origin compare equal.

Browsers send ``Origin: https://www.example.org`` (lower case, no default port, no path); a consortium's
allowed origins are typed by people (``https://WWW.Example.org:443/``). Both are normalised here before
they are compared (routing/access.py), and stored normalised by the admin and the consortium file import.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str  # lower case; an IPv6 address in brackets
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS[self.scheme]
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")


def parse_origin(text: str) -> Origin | None:
    """``'HTTPS://Example.org:443/'`` -> Origin('https', 'example.org', 443); None for what is not an http(s)
    origin (a path, a query, credentials, ``null``, another scheme, a bad port)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query
            or parts.fragment or parts.username is not None or parts.password is not None):
        return None
    host = parts.hostname.lower()  # urlsplit lowers it too; said here, since the comparison relies on it
    if ":" in host:
        host = f"[{host}]"
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def normalize_origin(text: str) -> str | None:
    """The form browsers send (``https://example.org``), or None for what is not an origin."""
    origin = parse_origin(text)
    return str(origin) if origin else None
