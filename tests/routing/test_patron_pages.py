"""Patron pages and their endpoints: the ask pages, the widget (served files and its size budget),
the HTTP fallback transport (long-polling + POST) and chat files."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import AsyncClient, Client
from django.utils import timezone

from routing import files
from routing.models import Chat, ChatFile, Connection, Message, ServerProcess
from routing.patron import polling
from routing.services import chats, offers, presence, sweeps
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "http://127.0.0.1:8000"
ALLOWED = "https://www.alpha-library.org"
EVIL = "https://evil.example.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
WIDGET_BUDGET = 15 * 1024  # gzipped JS + CSS of the widget (the budget)


@pytest.fixture
def world() -> dict[str, Any]:
    consortium = make_consortium("pat", name="Sunshine Libraries", allowed_origins=[ALLOWED])
    statewide = make_shared_queue(consortium, "statewide")
    alpha = make_library(consortium, "alpha", name="Alpha County Library", city="Tampa", zip_codes=["33601"])
    beta = make_library(consortium, "beta", name="Beta Public Library", city="Orlando")
    make_library(consortium, "gone", name="Closed Down Library", is_active=False)
    other = make_consortium("elsewhere")
    far = make_library(other, "far")
    return {"consortium": consortium, "alpha": alpha, "beta": beta, "statewide": statewide,
            "a1": make_staff(alpha, "a1", queues=[statewide]), "b1": make_staff(beta, "b1"),
            "coord": make_staff(beta, "coord", role="coordinator"),
            "outsider": make_staff(far, "outsider", role="coordinator")}


def present(profile: Any) -> None:
    """A librarian with a live staff connection, available: chats queue rather than go unstaffed."""
    now = timezone.now()
    sweeps.process_heartbeat("proc-test", now)
    presence.staff_connected(profile, f"staff.{profile.pk}", "proc-test", now)
    presence.presence_set(profile, "available", now)


def new_chat(w: dict[str, Any], **fields: Any) -> tuple[Chat, str]:
    fields.setdefault("library_slug", "alpha")
    return chats.chat_start(consortium=w["consortium"], question="Museum passes?", now=timezone.now(), **fields)


def config_of(html: str) -> dict[str, Any]:
    start = html.index('<script id="vrchat-config" type="application/json">') + len(
        '<script id="vrchat-config" type="application/json">')
    return dict(json.loads(html[start:html.index("</script>", start)]))


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def auth(token: str) -> dict[str, dict[str, str]]:
    """The same for AsyncClient, which takes headers by name."""
    return {"headers": {"Authorization": f"Bearer {token}"}}


# --- the ask pages -------------------------------------------------------------------------------


def test_consortium_ask_page_has_the_picker_and_the_privacy_notice(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/ask/pat/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Sunshine Libraries" in html and 'role="combobox"' in html and "Privacy:" in html
    assert 'role="log"' in html and "I'm not sure" in html
    config = config_of(html)
    assert config["consortium"] == "pat" and config["library"] == ""
    assert config["libraries"] == [
        {"slug": "alpha", "name": "Alpha County Library", "city": "Tampa"},
        {"slug": "beta", "name": "Beta Public Library", "city": "Orlando"},
    ], "active libraries only, by name, with their city for type-ahead"
    assert config["strings"]["queued"] == "You are number {position} in line."
    csp = r["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp


def test_library_ask_page_skips_the_picker(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/ask/pat/beta/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Beta Public Library" in html and 'role="combobox"' not in html
    assert config_of(html)["library"] == "beta" and config_of(html)["libraries"] == []


def test_unknown_consortium_or_library_is_404(client: Client, world: dict[str, Any]) -> None:
    assert client.get("/ask/nope/").status_code == 404
    assert client.get("/ask/pat/nope/").status_code == 404
    assert client.get("/ask/pat/gone/").status_code == 404
    assert client.get("/ask/pat/far/").status_code == 404, "a library of another consortium"


def test_spanish_by_toggle_or_by_the_browser(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/ask/pat/?lang=es")
    html = r.content.decode()
    assert r["Content-Language"] == "es" and '<html lang="es">' in html
    assert "Pregunte a un bibliotecario" in html and "Iniciar el chat" in html
    assert config_of(html)["strings"]["queued"] == "Usted es el número {position} en la fila."
    assert 'href="?lang=en"' in html, "the toggle leads back to English"
    r = client.get("/ask/pat/", HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5")
    assert r["Content-Language"] == "es"
    r = client.get("/ask/pat/", HTTP_ACCEPT_LANGUAGE="fr-FR")
    assert r["Content-Language"] == "en"


def test_every_script_string_has_a_spanish_translation(world: dict[str, Any]) -> None:
    from routing.patron.i18n import script_strings

    english, spanish = script_strings("en"), script_strings("es")
    same = {k for k in english if english[k] == spanish[k] and k not in {"minutes"}}
    assert not same, f"untranslated: {same}"
    for key, text in spanish.items():
        assert set(_braces(text)) == set(_braces(english[key])), f"placeholders of {key} differ"


def _braces(text: str) -> list[str]:
    import re

    return re.findall(r"\{(\w+)\}", text)


# --- the widget -----------------------------------------------------------------------------------


def _gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def _static(client: Client, path: str) -> bytes:
    r = client.get(path)
    assert r.status_code == 200, path
    return b"".join(r.streaming_content) if r.streaming else r.content  # type: ignore[attr-defined]


def test_widget_loader_is_served_as_script_and_the_widget_fits_its_budget(client: Client) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/javascript")
    assert "max-age" in r["Cache-Control"]
    loader = r.content
    panel_js = _static(client, "/static/routing/patron/chat.js")
    panel_css = _static(client, "/static/routing/patron/chat.css")
    total = _gz(loader) + _gz(panel_js) + _gz(panel_css)
    print(f"widget gzipped: loader {_gz(loader)} B, chat.js {_gz(panel_js)} B, chat.css {_gz(panel_css)} B, "
          f"total {total} B")
    assert _gz(loader) < 3072, "only the launcher loads with the page: keep it tiny"
    assert total < WIDGET_BUDGET
    assert b"document.cookie" not in loader + panel_js, "the widget sets no cookie"


def test_the_sharing_code_loads_only_when_a_share_starts_and_stays_small(client: Client) -> None:
    panel_js = _static(client, "/static/routing/patron/chat.js")
    share_js = _static(client, "/static/routing/patron/share.js")
    share_css = _static(client, "/static/routing/patron/share.css")
    # chat.js names the file only to load it with the first sharing frame; none of its code is in chat.js.
    assert b"share.js" in panel_js and b"RTCPeerConnection" not in panel_js and b"getDisplayMedia" not in panel_js
    assert b"window.open" not in share_js, "a pushed page opens from the patron's click on its card, never by script"
    print(f"sharing, loaded on demand: share.js {_gz(share_js)} B, share.css {_gz(share_css)} B gzipped")
    assert _gz(share_js) + _gz(share_css) < 6 * 1024


def test_widget_panel_for_an_allowed_site_and_a_clear_refusal_for_others(client: Client,
                                                                        world: dict[str, Any]) -> None:
    r = client.get("/api/v1/pat/widget?library=alpha&lang=es", HTTP_ORIGIN=ALLOWED)
    assert r.status_code == 200 and r["Access-Control-Allow-Origin"] == ALLOWED
    body = r.json()
    assert body["library"] == "alpha" and body["lang"] == "es" and 'data-vr-root' in body["html"]
    assert "Iniciar el chat" in body["html"] and body["strings"]["you"] == "Usted"
    r = client.get("/api/v1/pat/widget", HTTP_ORIGIN=EVIL)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert r["Access-Control-Allow-Origin"] == EVIL, "the refusal is readable, so the widget can say why"
    assert client.get("/api/v1/nope/widget", HTTP_ORIGIN=ALLOWED).status_code == 404
    assert client.get("/api/v1/pat/widget?library=far", HTTP_ORIGIN=ALLOWED).status_code == 404
    # And the API itself refuses that site: no chat can be created from it.
    r = client.post("/api/v1/pat/chats", data=json.dumps({"question": "hi"}), content_type="application/json",
                    HTTP_ORIGIN=EVIL)
    assert r.status_code == 403 and not Chat.objects.exists()


# --- the HTTP fallback transport ------------------------------------------------------------------


def events(client: Client, chat: Chat, token: str, after: int = 0, state: str = "", **extra: str) -> Any:
    return client.get(f"/api/v1/chats/{chat.pk}/events", {"after": after, "state": state}, **bearer(token), **extra)


def test_events_answer_at_once_with_state_and_history_then_only_what_is_new(client: Client,
                                                                             world: dict[str, Any]) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    chats.message_post(chat.pk, sender="patron", body="second", client_id="c2", now=timezone.now())
    r = events(client, chat, token)
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    body = r.json()
    kinds = [f["type"] for f in body["frames"]]
    assert kinds == ["state", "message", "message"]
    assert [f["seq"] for f in body["frames"][1:]] == [1, 2] and body["after"] == 2
    assert body["frames"][0]["state"] == "queued" and body["frames"][0]["position"] == 1
    chats.message_post(chat.pk, sender="patron", body="third", client_id="c3", now=timezone.now())
    r = events(client, chat, token, after=2, state=body["state_key"])
    frames = r.json()["frames"]
    assert [(f["type"], f.get("seq")) for f in frames] == [("message", 3)], "state unchanged: not sent again"


def test_events_need_the_chats_token_and_an_allowed_origin(client: Client, world: dict[str, Any]) -> None:
    chat, token = new_chat(world)
    _other, other_token = new_chat(world)
    assert events(client, chat, other_token).status_code == 404
    assert client.get(f"/api/v1/chats/{chat.pk}/events").status_code == 404
    assert client.get("/api/v1/chats/nope/events", **bearer(token)).status_code == 404
    r = events(client, chat, token, HTTP_ORIGIN=EVIL)
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r
    r = events(client, chat, token, HTTP_ORIGIN=ALLOWED)
    assert r.status_code == 200 and r["Access-Control-Allow-Origin"] == ALLOWED
    assert client.get(f"/api/v1/chats/{chat.pk}/events", {"after": "x"}, **bearer(token)).status_code == 400
    r = client.options(f"/api/v1/chats/{chat.pk}/events", HTTP_ORIGIN=ALLOWED)
    assert r.status_code == 204 and "Authorization" in r["Access-Control-Allow-Headers"]
    assert client.options(f"/api/v1/chats/{chat.pk}/events", HTTP_ORIGIN=EVIL).status_code == 403


def test_a_poll_makes_the_patron_present_and_a_stale_poller_counts_as_gone(client: Client,
                                                                           world: dict[str, Any]) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    assert events(client, chat, token).status_code == 200
    name = polling.poller_name(chat.pk)
    assert Connection.objects.filter(channel_name=name, kind="patron", chat=chat).exists()
    chat.refresh_from_db()
    assert chat.patron_joined and chat.patron_left_at is None
    # The patron stops polling: once the heartbeat is stale, the timer's reaper closes the connection.
    later = timezone.now() + sweeps.PROCESS_DEAD_AFTER + timedelta(seconds=5)
    sweeps.dead_processes_reap(later)
    chat.refresh_from_db()
    assert chat.patron_left_at == later and not Connection.objects.filter(channel_name=name).exists()
    assert not ServerProcess.objects.filter(pk=name).exists()
    # Polling again brings the patron back.
    assert events(client, chat, token).status_code == 200
    chat.refresh_from_db()
    assert chat.patron_left_at is None and Connection.objects.filter(channel_name=name).exists()
    # An ended chat can still be read, but nobody waits on its patron: no connection is kept.
    chats.chat_end(chat.pk, timezone.now(), by="patron")
    sweeps.dead_processes_reap(timezone.now() + sweeps.PROCESS_DEAD_AFTER + timedelta(seconds=5))
    assert events(client, chat, token).status_code == 200
    assert not Connection.objects.filter(channel_name=name).exists()


def test_messages_over_http_are_idempotent_by_client_id(client: Client, world: dict[str, Any]) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    url = f"/api/v1/chats/{chat.pk}/messages"
    send = {"body": "Are you there?", "client_id": "m-1"}
    r = client.post(url, json.dumps(send), content_type="application/json", **bearer(token))
    assert r.status_code == 201, r.content
    first = r.json()
    assert first["type"] == "message" and first["seq"] == 2 and first["client_id"] == "m-1"
    r = client.post(url, json.dumps(send), content_type="application/json", **bearer(token))
    assert r.status_code == 200 and r.json()["seq"] == 2, "the same client_id again: the stored message"
    assert Message.objects.filter(chat=chat, client_id="m-1").count() == 1
    r = client.post(url, json.dumps({"body": "", "client_id": "m-2"}), content_type="application/json",
                    **bearer(token))
    assert r.status_code == 400 and "body" in r.json()["error"]["fields"]
    r = client.post(url, json.dumps({"body": "x" * 4001}), content_type="application/json", **bearer(token))
    assert r.status_code == 413
    assert client.post(url, json.dumps(send), content_type="application/json").status_code == 404
    chats.chat_end(chat.pk, timezone.now(), by="patron")
    r = client.post(url, json.dumps({"body": "late", "client_id": "m-3"}), content_type="application/json",
                    **bearer(token))
    assert r.status_code == 409 and r.json()["error"]["code"] == "ended"


def test_typing_and_end_over_http(client: Client, world: dict[str, Any]) -> None:
    chat, token = new_chat(world)
    assert client.post(f"/api/v1/chats/{chat.pk}/typing", **bearer(token)).status_code == 202
    assert client.post(f"/api/v1/chats/{chat.pk}/typing").status_code == 404
    r = client.post(f"/api/v1/chats/{chat.pk}/end", **bearer(token))
    assert r.status_code == 200 and r.json()["type"] == "state"
    chat.refresh_from_db()
    assert chat.state in {"ended", "unstaffed"}


async def test_a_waiting_poll_wakes_for_a_new_message_and_returns_it(world: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    a1 = world["a1"]
    await database_sync_to_async(present)(a1)
    chat, token = await database_sync_to_async(new_chat)(world)
    client = AsyncClient()
    first = (await client.get(f"/api/v1/chats/{chat.pk}/events", {"after": 0}, **auth(token))).json()
    assert first["frames"][0]["state"] == "queued" and first["frames"][0]["position"] == 1
    waiting = asyncio.ensure_future(client.get(f"/api/v1/chats/{chat.pk}/events",
                                               {"after": first["after"], "state": first["state_key"]},
                                               **auth(token)))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "nothing new: the poll waits"
    # Not thread-sensitive: in the test client the waiting request holds the thread-sensitive thread
    # (a sync-only middleware wraps the async view), as it holds its own request thread in daphne.
    await sync_to_async(offers.chat_accept, thread_sensitive=False)(a1, chat.pk, timezone.now())
    r = await asyncio.wait_for(waiting, 10)
    frames = r.json()["frames"]
    assert any(f["type"] == "message" and f["sender"] == "system" for f in frames), frames
    assert r.json()["after"] > first["after"]


async def test_a_poll_with_nothing_new_answers_empty_after_the_wait(world: dict[str, Any],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    await database_sync_to_async(present)(world["a1"])
    monkeypatch.setattr(polling, "WAIT_SECONDS", 0.6)
    monkeypatch.setattr(polling, "RECHECK_SECONDS", 0.2)
    chat, token = await database_sync_to_async(new_chat)(world)
    client = AsyncClient()
    first = (await client.get(f"/api/v1/chats/{chat.pk}/events", {"after": 0}, **auth(token))).json()
    r = await client.get(f"/api/v1/chats/{chat.pk}/events", {"after": first["after"], "state": first["state_key"]},
                         **auth(token))
    assert r.status_code == 200 and r.json()["frames"] == [] and r.json()["after"] == first["after"]


# --- files ------------------------------------------------------------------------------------------


def upload(client: Client, chat: Chat, data: bytes, name: str = "photo.png", token: str | None = None,
           **extra: Any) -> Any:
    payload = io.BytesIO(data)
    payload.name = name
    headers = bearer(token) if token else {}
    return client.post(f"/api/v1/chats/{chat.pk}/files", {"file": payload, "client_id": "f-" + name},
                       **headers, **extra)


def test_sniffing_goes_by_content_not_by_name() -> None:
    assert files.sniff(PNG) == "image/png"
    assert files.sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert files.sniff(b"GIF89a\x01\x00") == "image/gif"
    assert files.sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert files.sniff(PDF) == "application/pdf"
    assert files.sniff(b"<svg onload=alert(1)>") is None
    assert files.sniff(b"<html><script>") is None
    assert files.clean_name('..\\..\\evil"name<>.png.exe', "image/png") == "evil_name__.png.png"


def test_patron_sends_an_image_and_it_is_posted_into_the_chat(client: Client, world: dict[str, Any]) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    r = upload(client, chat, PNG, "photo.png", token)
    assert r.status_code == 201, r.content
    frame = r.json()
    assert frame["type"] == "message" and frame["sender"] == "patron"
    assert frame["file"]["type"] == "image/png" and frame["file"]["size"] == len(PNG)
    assert frame["file"]["name"] == "photo.png" and frame["file"]["url"].startswith(f"/api/v1/chats/{chat.pk}/files/")
    r = upload(client, chat, PNG, "photo.png", token)
    assert r.status_code == 200 and r.json()["seq"] == frame["seq"], "same client_id: stored once"
    assert ChatFile.objects.filter(chat=chat).count() == 1
    # The transcript and the poll carry it too.
    body = events(client, chat, token).json()
    assert any(f.get("file", {}).get("id") == frame["file"]["id"] for f in body["frames"])


def test_a_file_is_checked_by_content_and_size(client: Client, world: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    r = upload(client, chat, b"<script>alert(1)</script>", "innocent.png", token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_type"
    r = upload(client, chat, PDF, "notes.exe", token)
    assert r.status_code == 201 and r.json()["file"]["type"] == "application/pdf"
    assert r.json()["file"]["name"] == "notes.pdf", "the name ends in the type the content shows"
    monkeypatch.setattr(files, "MAX_BYTES", 1000)
    monkeypatch.setattr(files, "MULTIPART_SLACK", 100000)
    r = upload(client, chat, PNG + b"\x00" * 2000, "big.png", token)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    monkeypatch.setattr(files, "MULTIPART_SLACK", 10)
    r = upload(client, chat, PNG + b"\x00" * 2000, "big2.png", token)
    assert r.status_code == 413, "refused by Content-Length before reading"
    r = client.post(f"/api/v1/chats/{chat.pk}/files", {}, **bearer(token))
    assert r.status_code == 400 and "file" in r.json()["error"]["fields"]


def test_a_file_is_served_only_to_the_chats_participants_and_transcript_readers(client: Client,
                                                                               world: dict[str, Any]) -> None:
    a1 = world["a1"]
    present(a1)
    chat, token = new_chat(world)
    offers.chat_accept(a1, chat.pk, timezone.now())
    other, other_token = new_chat(world)
    url = upload(client, chat, PNG, "photo.png", token).json()["file"]["url"]
    r = client.get(url, **bearer(token))
    assert r.status_code == 200 and r.content == PNG and r["Content-Type"] == "image/png"
    assert r["X-Content-Type-Options"] == "nosniff" and r["Content-Disposition"].startswith("inline")
    assert "sandbox" in r["Content-Security-Policy"]
    assert client.get(url, **bearer(other_token)).status_code == 404, "another chat's patron"
    assert client.get(url).status_code == 404, "nobody"
    assert client.get(url.replace(chat.pk, other.pk), **bearer(other_token)).status_code == 404
    for username, status in [("a1", 200), ("coord", 200), ("b1", 404), ("outsider", 404)]:
        staff = Client()
        assert staff.login(username=username, password=PASSWORD)
        assert staff.get(url).status_code == status, username
    pdf = upload(client, chat, PDF, "notes.pdf", token).json()["file"]["url"]
    assert client.get(pdf, **bearer(token))["Content-Disposition"].startswith("attachment")


def test_the_chats_librarian_sends_a_file_with_session_and_csrf(world: dict[str, Any]) -> None:
    a1 = world["a1"]
    present(a1)
    chat, _token = new_chat(world)
    offers.chat_accept(a1, chat.pk, timezone.now())
    staff = Client(enforce_csrf_checks=True)
    assert staff.login(username="a1", password=PASSWORD)
    r = upload(staff, chat, PNG, "map.png")
    assert r.status_code == 403, "no CSRF token"
    staff.get("/accounts/login/")  # sets the CSRF cookie
    csrf = staff.cookies["csrftoken"].value
    r = upload(staff, chat, PNG, "map.png", HTTP_X_CSRFTOKEN=csrf, HTTP_ORIGIN="http://testserver")
    assert r.status_code == 201, r.content
    assert r.json()["sender"] == "librarian" and r.json()["file"]["name"] == "map.png"
    other = Client(enforce_csrf_checks=True)
    assert other.login(username="b1", password=PASSWORD)
    other.get("/accounts/login/")
    r = upload(other, chat, PNG, "x.png", HTTP_X_CSRFTOKEN=other.cookies["csrftoken"].value,
               HTTP_ORIGIN="http://testserver")
    assert r.status_code == 404, "not this librarian's chat"


def test_a_refused_file_is_explained_in_the_librarians_language(world: dict[str, Any]) -> None:
    """The console shows a refused file's `detail` after its name: a Spanish librarian reads it in Spanish;
    its code, which clients act on, stays the same."""
    a1 = world["a1"]
    a1.language = "es"
    a1.save(update_fields=["language"])
    present(a1)
    chat, _token = new_chat(world)
    offers.chat_accept(a1, chat.pk, timezone.now())
    staff = Client()
    assert staff.login(username="a1", password=PASSWORD)
    r = upload(staff, chat, b"<svg onload=alert(1)>", "x.png", HTTP_ORIGIN="http://testserver")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_type"
    assert r.json()["error"]["detail"] == "solo se pueden enviar imágenes (PNG, JPEG, GIF, WebP) y archivos PDF"


@pytest.mark.django_db
def test_the_root_address_is_the_ask_page_of_a_deployment_of_one_consortium(client: Client) -> None:
    """A patron who types the bare host name lands on the ask page (the README's promise: the demo runs
    on http://127.0.0.1:8000/), in the language asked for; a fresh install has nothing there yet."""
    assert client.get("/").status_code == 404
    make_consortium("solo", name="Solo Libraries")
    r = client.get("/")
    assert r.status_code == 302 and r["Location"] == "/ask/solo/"
    assert client.get("/?lang=es")["Location"] == "/ask/solo/?lang=es"
    assert client.get("/?lang=xx")["Location"] == "/ask/solo/", "only a supported language is carried"
    assert client.get("/", follow=True).status_code == 200


def test_the_root_address_lists_the_ask_pages_of_several_consortia(client: Client, world: dict[str, Any]) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r["Content-Language"] == "en"
    html = r.content.decode()
    assert '<a href="/ask/pat/?lang=en">Sunshine Libraries</a>' in html
    assert '<a href="/ask/elsewhere/?lang=en">' in html
    assert html.index("/ask/elsewhere/") < html.index("/ask/pat/"), "by name"
    spanish = client.get("/", HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9")
    assert spanish["Content-Language"] == "es"
    assert "Pregunte a un bibliotecario" in spanish.content.decode()
    assert '<a href="/ask/pat/?lang=es">' in spanish.content.decode()
    assert "unsafe-inline" not in spanish["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_ask_page_wears_the_consortium_colours(client: Client) -> None:
    from tests.factories import make_consortium

    make_consortium("colourful", accent_color="#0b5e7e", accent_text_color="#fffff0")
    page = client.get("/ask/colourful/")
    assert page.status_code == 200
    assert 'href="/ask/colourful/theme.css"' in page.content.decode()
    css = client.get("/ask/colourful/theme.css")
    assert css["Content-Type"].startswith("text/css")
    assert css.content.decode() == ":root{--vr-accent:#0b5e7e;--vr-accent-text:#fffff0}\n"
    assert client.get("/ask/nope/theme.css").status_code == 404
