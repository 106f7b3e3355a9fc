"""Content-Security-Policy for this service's own HTML pages: the ask page, the staff console, sign-in, admin.

What the policy allows, and why:

- scripts only from this origin, plus a per-request nonce (``request.csp_nonce``, ``{{ csp_nonce }}`` in
  templates) for an inline ``<script nonce="...">`` should one ever be needed. No 'unsafe-inline', no
  'unsafe-eval', no inline event handlers. ``{{ value|json_script }}`` is a data block, not a script: the
  browser never executes it, so the policy does not need to allow it.
- styles from this origin, plus the exact inline ``<style>`` blocks and ``style="..."`` attributes written
  literally in our templates (and Django admin's), allowed by their SHA-256 hashes. The hashes are computed
  from the template files at start-up, so editing such a block keeps working; text injected into a page can
  never match one of them.
- ``connect-src``: this origin over https and wss (ws on plain-http loopback), for fetch() and the sockets.
  'self' covers wss in current browsers; the host is named as well for those that read 'self' narrowly.
- images also from ``blob:`` (the patron's chat shows images fetched with the chat's token as blobs) and
  ``data:``.
- no plugins, no ``<base>``, forms post only here, and no other site may frame our pages (as X-Frame-Options).
- screen sharing (routing/sharing.py) needs nothing more from this policy: its script and style come from
  this origin, the picture arrives as a MediaStream (``srcObject``, which ``media-src`` does not govern), and
  WebRTC's connections are not ``connect-src``'s. ``media-src`` is named all the same, as 'self', so a
  ``<video src>`` from anywhere else cannot appear. With it goes a ``Permissions-Policy``: screen capture for
  this origin only (not for any frame inside it), and no camera, microphone or location: sharing uses
  none of them.

The widget runs on *other* sites: there the host page's policy applies, not this one. This header is sent
only with ``text/html`` responses, so ``/widget.js``, the JSON API and static files are untouched; a
response that already has its own policy (chat files are sandboxed) keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import cast

from django.apps import apps
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

# A literal inline block or attribute: hashed only when it holds no template syntax (its rendered text is
# then exactly the file's text). A block with {{ }} or {% %} inside cannot be hashed: use the nonce.
_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.S | re.I)
_SCRIPT_BLOCK = re.compile(r"<script>(.*?)</script>", re.S | re.I)
_STYLE_ATTR = re.compile(r"""\sstyle=(?:"([^"]*)"|'([^']*)')""", re.I)


def _template_files() -> Iterable[Path]:
    dirs = [Path(d) for backend in settings.TEMPLATES for d in cast(list[str], backend.get("DIRS", []))]
    dirs += [Path(app.path) / "templates" for app in apps.get_app_configs()]
    for folder in dirs:
        if folder.is_dir():
            yield from sorted(folder.rglob("*.html"))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _literal(text: str) -> bool:
    return "{{" not in text and "{%" not in text


@cache
def inline_hashes() -> dict[str, tuple[str, ...]]:
    """Hashes of every literal inline style block, style attribute and script block in the templates."""
    found: dict[str, set[str]] = {"style": set(), "style-attr": set(), "script": set()}
    for path in _template_files():
        source = path.read_text(errors="replace")
        found["style"].update(_sha256(b) for b in _STYLE_BLOCK.findall(source) if _literal(b))
        found["script"].update(_sha256(b) for b in _SCRIPT_BLOCK.findall(source) if _literal(b) and b.strip())
        for double, single in _STYLE_ATTR.findall(source):
            value = double or single
            if _literal(value):
                found["style-attr"].add(_sha256(value))
    return {kind: tuple(sorted(values)) for kind, values in found.items()}


def policy(nonce: str, host: str | None, *, https: bool) -> str:
    hashes = inline_hashes()
    connect = ["'self'"]
    if host:
        connect += [f"wss://{host}"] if https else [f"ws://{host}", f"wss://{host}"]
    style_attr = ["'unsafe-hashes'", *hashes["style-attr"]] if hashes["style-attr"] else ["'none'"]
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", f"'nonce-{nonce}'", *hashes["script"]]),
        " ".join(["style-src 'self'", f"'nonce-{nonce}'", *hashes["style"]]),
        " ".join(["style-src-attr", *style_attr]),
        "img-src 'self' blob: data:",
        "media-src 'self'",
        "font-src 'self'",
        " ".join(["connect-src", *connect]),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    if https:
        directives.append("upgrade-insecure-requests")
    return "; ".join(directives)


# Sharing a screen is this origin's own (getDisplayMedia from the ask page and the console); the devices it
# never uses are refused to every frame, so nothing injected could ask for them.
PERMISSIONS_POLICY = "display-capture=(self), camera=(), microphone=(), geolocation=()"


class ContentSecurityPolicyMiddleware:
    """Gives each request a nonce and each HTML response the policy above."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" in response or not response.get("Content-Type", "").startswith("text/html"):
            return response
        try:
            host: str | None = request.get_host()  # validated against ALLOWED_HOSTS: safe to echo
        except DisallowedHost:
            host = None
        response["Content-Security-Policy"] = policy(nonce, host, https=bool(getattr(settings, "HTTPS", False)))
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def csp_nonce(request: HttpRequest) -> dict[str, str]:
    """Template context processor: ``<script nonce="{{ csp_nonce }}">``."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
