"""Patron HTTP endpoints beyond docs/protocol.md's core: the HTTP fallback transport (long-polling
plus POST, for networks that block WebSockets) and chat files. Thin: parse, check access, call
routing.patron.polling / routing.files / routing.services, answer in JSON."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from consortium import ratelimit
from consortium.middleware import api_error
from consortium.queries import only_row
from routing import access, files, frames, validation
from routing.api.base import ApiError, api_view, bearer, chat_for, cors, json_body, not_found, patron_chat, staff
from routing.events import chat_group, to_chat
from routing.models import Chat
from routing.patron import polling
from routing.services import chats, common
from routing.validation import Fields, Invalid

logger = logging.getLogger(__name__)

def _after(request: HttpRequest) -> int:
    raw = request.GET.get("after", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "invalid", "after must be a whole number >= 0", {"after": ["not a whole number"]})
    return int(raw)


# --- long-polling ----------------------------------------------------------------------------------


def _open_poll(request: HttpRequest, chat_id: str) -> Chat:
    chat = patron_chat(request, chat_id)
    polling.seen(chat_id, timezone.now())
    return chat


def _check(chat_id: str, after: int, known: str, *, touch: bool) -> polling.News | None:
    if touch:
        polling.seen(chat_id, timezone.now())
    return polling.news(chat_id, after, known)


def _origin_ok(chat_id: str, origin: str | None) -> bool:
    chat = only_row(Chat.objects.select_related("consortium").filter(pk=chat_id))
    return chat is None or access.origin_allowed(origin, chat.consortium)


AsyncView = Callable[..., Coroutine[Any, Any, HttpResponse]]


def async_api(view: AsyncView) -> AsyncView:
    """api_view's contract (JSON errors, CORS for allowed origins) for the one async endpoint."""

    @wraps(view)
    async def handler(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            if not await database_sync_to_async(_origin_ok)(kwargs.get("chat_id", ""), origin):
                return api_error(403, "forbidden", "this site may not use the chat service")
            return cors(HttpResponse(status=204), origin)
        if request.method != "GET":
            return api_error(405, "method_not_allowed", "use GET")
        try:
            response = await view(request, **kwargs)
        except ApiError as e:
            response = api_error(e.status, e.code, e.detail, e.fields)
            if e.status == 403:
                return response
        return cors(response, origin)

    return csrf_exempt(handler)


@async_api
async def chat_events(request: HttpRequest, chat_id: str) -> HttpResponse:
    """Long-poll: answer at once with anything new, else wait up to WAIT_SECONDS for it."""
    after = _after(request)
    known = request.GET.get("state", "")[:32]
    chat = await database_sync_to_async(_open_poll)(request, chat_id)
    layer, channel = get_channel_layer(), None
    if layer is not None:
        try:
            channel = await layer.new_channel()
            # Subscribe before reading the database, so nothing falls between the read and the wait.
            await layer.group_add(chat_group(chat.pk), channel)
        except Exception:  # Redis restarting: the database alone still answers, only later
            logger.warning("poll without the channel layer", exc_info=True)
            layer = channel = None
    receiving: asyncio.Future[Any] | None = None
    try:
        news = await database_sync_to_async(_check)(chat.pk, after, known, touch=False)
        if news is None:
            raise not_found()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + polling.WAIT_SECONDS
        touched = loop.time()
        while not news.frames:
            left = deadline - loop.time()
            if left <= 0:
                break
            if layer is not None and channel is not None:
                # One receive for the whole wait: cancelling a receive unsubscribes the channel.
                receiving = receiving or asyncio.ensure_future(layer.receive(channel))
                done, _ = await asyncio.wait({receiving}, timeout=min(left, polling.RECHECK_SECONDS))
                if receiving in done:
                    event = receiving.result()
                    receiving = None
                    frame = event.get("frame") or {}
                    if frame.get("type") == "typing":
                        if frame.get("sender") == "librarian":
                            news.frames = [frame]
                        continue
            else:
                await asyncio.sleep(min(left, 0.5))
            # Heart-beat the poller's connection now and then, not on every doorbell.
            touch = loop.time() - touched >= polling.RECHECK_SECONDS
            touched = loop.time() if touch else touched
            news = await database_sync_to_async(_check)(chat.pk, after, known, touch=touch) or news
    finally:
        if receiving is not None:
            receiving.cancel()
            with contextlib.suppress(BaseException):
                await receiving
        if layer is not None and channel is not None:
            with contextlib.suppress(Exception):
                await layer.group_discard(chat_group(chat.pk), channel)
    response = JsonResponse(news.as_json())
    response["Cache-Control"] = "no-store"
    return response


# --- sending over HTTP --------------------------------------------------------------------------


@api_view({"POST"}, consortium_from="chat")
def chat_message(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = patron_chat(request, chat_id)
    f = Fields(json_body(request))
    body, client_id = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
    try:
        f.check()
    except Invalid as e:  # as the socket says it: a body over the limit is too large, not malformed
        raise ApiError(413 if e.code == "too_large" else 400, e.code, e.detail, e.fields) from e
    try:
        message, created = chats.message_post(chat.pk, sender="patron", body=body, client_id=client_id,
                                              now=timezone.now(), counted=True)  # the socket's count too
    except chats.RateLimited as e:
        raise ApiError(429, "rate_limited", e.detail, headers={"Retry-After": str(e.retry_after)}) from e
    except common.ServiceError as e:
        if e.reason == "ended":
            raise ApiError(409, "ended", "this chat is over") from e
        raise
    return JsonResponse(frames.message_frame(message), status=201 if created else 200)


@api_view({"POST"}, consortium_from="chat")
def chat_typing(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = patron_chat(request, chat_id)
    if not ratelimit.POLL_TYPING.hit(chat.pk):  # past the rate, typing is dropped quietly
        to_chat(chat.pk, frames.typing_frame(chat.pk, "patron"))
    return JsonResponse({"ok": True}, status=202)


@api_view({"POST"}, consortium_from="chat")
def chat_end(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = patron_chat(request, chat_id)
    now = timezone.now()
    ended = chats.chat_end(chat.pk, now, by="patron")
    polling.gone(chat.pk, now)
    ended.refresh_from_db()
    return JsonResponse(frames.patron_state_frame(ended))


# --- files --------------------------------------------------------------------------------------


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Session-authenticated uploads must pass Django's CSRF check (api_view exempts the API)."""
    return CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})  # type: ignore[arg-type]


@api_view({"POST", "GET"}, consortium_from="chat")
def chat_files(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    if request.method == "GET":
        raise ApiError(405, "method_not_allowed", "use POST")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > files.MAX_BYTES + files.MULTIPART_SLACK:
        raise ApiError(413, "too_large", f"files are limited to {files.MAX_BYTES // (1024 * 1024)} MB")
    librarian = None
    if bearer(request) is not None:
        chat = patron_chat(request, chat_id)
        sender = "patron"
    else:
        librarian = staff(request)
        held = only_row(Chat.objects.select_related("consortium").filter(pk=chat_id))
        if librarian is None or held is None or held.librarian_id != librarian.pk:
            raise not_found()
        chat = held
        if _csrf_failure(request) is not None:
            raise ApiError(403, "forbidden", "the CSRF check failed: send the X-CSRFToken header")
        sender = "librarian"
    retry = ratelimit.CHAT_FILE_UPLOAD.hit(chat.pk)
    if retry:
        raise ApiError(429, "rate_limited", "too many files: wait a moment", headers={"Retry-After": str(retry)})
    upload = request.FILES.get("file")
    if upload is None:
        raise ApiError(400, "invalid", "send the file as the multipart field 'file'", {"file": ["required"]})
    f = Fields({"client_id": request.POST.get("client_id") or None})
    client_id = f.client_id()
    f.check()
    try:
        checked = files.check(upload)
        message, created = files.post(chat, checked, sender=sender, librarian=librarian, client_id=client_id)
    except files.FileRefused as e:
        raise ApiError(e.status, e.code, e.detail, {"file": [e.detail]}) from e
    except common.ServiceError as e:
        if e.reason == "ended":
            raise ApiError(409, "ended", "this chat is over") from e
        raise
    return JsonResponse(frames.message_frame(message), status=201 if created else 200)


@api_view({"GET"}, consortium_from="chat")
def chat_file(request: HttpRequest, chat_id: str, file_id: str, **_: Any) -> HttpResponse:
    chat, _patron = chat_for(request, chat_id)
    stored = files.find(chat, file_id)
    if stored is None or not stored.data:
        raise ApiError(404, "not_found", "no such file")
    return files.download(stored)
