"""The Content-Security-Policy: our pages send it, what they need is allowed, and nothing more."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from consortium import security
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def world() -> dict[str, Any]:
    consortium = make_consortium("csp", allowed_origins=["https://www.library.example"])
    statewide = make_shared_queue(consortium, "statewide")
    library = make_library(consortium, "alpha")
    return {"consortium": consortium, "ana": make_staff(library, "ana", queues=[statewide])}


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def test_ask_page_sends_a_policy_that_allows_its_script_and_its_socket(client: Client,
                                                                       world: dict[str, Any]) -> None:
    r = client.get("/ask/csp/")
    assert r.status_code == 200
    policy = directives(r["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    scripts = policy["script-src"]
    assert "'self'" in scripts and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    # Its own socket (ws on plain-http loopback in tests) and its API on this origin.
    assert "'self'" in policy["connect-src"] and "ws://testserver" in policy["connect-src"]
    assert "blob:" in policy["img-src"]  # pictures in the chat are fetched with the token and shown as blobs
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    html = r.content.decode()
    # Every script the page loads comes from this origin; the config is a JSON data block, never run.
    assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)(?![^>]*application/json)[^>]*>", html) == []


def test_each_request_gets_its_own_nonce(client: Client, world: dict[str, Any]) -> None:
    nonces = {next(s for s in directives(client.get("/accounts/login/")["Content-Security-Policy"])["script-src"]
                   if s.startswith("'nonce-")) for _ in range(3)}
    assert len(nonces) == 3


def test_a_view_that_sets_its_own_policy_keeps_it(rf: Any) -> None:
    from django.http import HttpResponse

    def view(request: Any) -> HttpResponse:
        response = HttpResponse("<p>file</p>", content_type="text/html")
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    r = security.ContentSecurityPolicyMiddleware(view)(rf.get("/"))
    assert r["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_staff_console_and_its_pages_send_the_policy(world: dict[str, Any]) -> None:
    client = signed_in("ana")
    for path in ("/staff/", "/staff/tickets/", "/staff/history/", "/staff/canned/"):
        r = client.get(path)
        assert r.status_code == 200, path
        policy = directives(r["Content-Security-Policy"])
        assert "'unsafe-inline'" not in policy["script-src"], path
        assert "ws://testserver" in policy["connect-src"], path


def test_sign_in_page_keeps_its_inline_style_by_hash(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/accounts/login/")
    assert r.status_code == 200
    blocks = re.findall(r"<style>(.*?)</style>", r.content.decode(), re.S)
    assert blocks, "the sign-in page has an inline style block"
    allowed = directives(r["Content-Security-Policy"])["style-src"]
    assert all(sha256(block) in allowed for block in blocks)
    assert "'unsafe-inline'" not in allowed


def test_admin_pages_send_the_policy(world: dict[str, Any]) -> None:
    User.objects.create_superuser("root", "root@example.org", "pw-Root-123")
    client = Client()
    client.force_login(User.objects.get(username="root"))
    r = client.get("/admin/")
    assert r.status_code == 200
    assert "'unsafe-inline'" not in directives(r["Content-Security-Policy"])["script-src"]


def test_widget_loader_api_and_chat_files_are_not_given_our_page_policy(client: Client,
                                                                       world: dict[str, Any]) -> None:
    # The widget runs on other sites: its loader, its panel and the API are not pages of ours.
    r = client.get("/widget.js")
    assert r.status_code == 200 and "Content-Security-Policy" not in r
    r = client.get("/api/v1/csp/widget", HTTP_ORIGIN="https://www.library.example")
    assert r.status_code == 200 and "Content-Security-Policy" not in r
    r = client.post("/api/v1/csp/chats", {"question": "hours?"}, content_type="application/json",
                    HTTP_ORIGIN="https://www.library.example")
    assert r.status_code == 201 and "Content-Security-Policy" not in r
    r = client.get("/healthz")
    assert "Content-Security-Policy" not in r


def test_https_policy_names_wss_and_upgrades_requests() -> None:
    policy = directives(security.policy("n0nce", "ask.example.org", https=True))
    assert policy["connect-src"] == ["'self'", "wss://ask.example.org"]
    assert "upgrade-insecure-requests" in policy
    assert "ws://ask.example.org" not in policy["connect-src"]


def test_no_template_has_an_inline_event_handler_or_an_unhashable_inline_script() -> None:
    """Inline handlers (onclick=...) would need 'unsafe-inline' or 'unsafe-hashes' for scripts: none allowed.
    An inline <script> must be literal (it is then allowed by hash) or carry nonce="{{ csp_nonce }}"."""
    handlers, scripts = [], []
    for path in sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]):
        source = path.read_text()
        rel = path.relative_to(ROOT)
        handlers += [f"{rel}: {m}" for m in re.findall(r"<[^>]*\son[a-z]+\s*=[^>]*>", source, re.I)]
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", source, re.S | re.I):
            if "src=" in attrs or "application/json" in attrs or "csp_nonce" in attrs:
                continue
            if "{{" in body or "{%" in body:
                scripts.append(f"{rel}: inline script with template syntax needs the nonce")
    assert handlers == [] and scripts == []


def test_pages_allow_screen_capture_for_this_origin_only_and_no_devices_sharing_never_uses(
        client: Client, world: dict[str, Any]) -> None:
    for r in (client.get("/ask/csp/"), signed_in("ana").get("/staff/")):
        assert r.status_code == 200
        allowed = dict(part.strip().split("=", 1) for part in r["Permissions-Policy"].split(","))
        assert allowed["display-capture"] == "(self)"
        assert allowed["camera"] == allowed["microphone"] == allowed["geolocation"] == "()"
        policy = directives(r["Content-Security-Policy"])
        assert policy["media-src"] == ["'self'"]  # a shared screen is a MediaStream, not a media URL
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    # The sharing code is a file of this origin, loaded by chat.js only when a share starts.
    assert client.get("/static/routing/patron/share.js").status_code == 200
