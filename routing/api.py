"""The HTTP API of docs/protocol.md: parse, check access, call a service, answer in JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import validate_host
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from consortium import csv_safe
from consortium.middleware import api_error
from consortium.models import Consortium
from libraries.models import StaffProfile
from routing import privacy, services
from routing.frames import library_ref, message_frame
from routing.models import Chat, Offer, Survey
from routing.ratelimit import hit
from routing.tasks import mail_transcript

View = Callable[..., HttpResponse]
MAX_JSON_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.fields, self.headers = status, code, detail, fields, headers or {}


def not_found() -> ApiError:
    return ApiError(404, "not_found", "no such chat")


def own_origin(origin: str) -> bool:
    return validate_host(urlparse(origin).hostname or "", settings.ALLOWED_HOSTS)


def origin_allowed(origin: str | None, consortium: Consortium | None) -> bool:
    if not origin:
        return True  # not a browser
    if own_origin(origin):
        return True
    return consortium is not None and origin.rstrip("/") in (consortium.allowed_origins or [])


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin and not own_origin(origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


def api_view(methods: set[str], *, consortium_from: str = "") -> Callable[[View], View]:
    """JSON in and out, CORS for the consortium's allowed origins only, errors as docs/protocol.md says."""

    def wrap(view: View) -> View:
        @wraps(view)
        @csrf_exempt
        def handler(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            origin = request.headers.get("Origin")
            consortium: Consortium | None = None
            try:
                if consortium_from == "slug":
                    consortium = Consortium.objects.filter(slug=kwargs["consortium_slug"], is_active=True).first()
                    if consortium is None:
                        raise ApiError(404, "not_found", "no such consortium")
                elif consortium_from == "chat":
                    chat = Chat.objects.select_related("consortium").filter(pk=kwargs["chat_id"]).first()
                    consortium = chat.consortium if chat else None
                if not origin_allowed(origin, consortium):
                    raise ApiError(403, "forbidden", "this site may not use the chat service")
                if request.method == "OPTIONS":
                    return _cors(HttpResponse(status=204), origin)
                if request.method not in methods:
                    raise ApiError(405, "method_not_allowed", f"use {' or '.join(sorted(methods))}")
                response = view(request, consortium=consortium, **kwargs)
            except ApiError as e:
                response = api_error(e.status, e.code, e.detail, e.fields)
                for key, value in e.headers.items():
                    response[key] = value
            except services.ServiceError as e:
                status = {"not_found": 404, "forbidden": 403}.get(e.reason, 400)
                response = api_error(status, e.reason, e.detail)
            if consortium is not None and origin_allowed(origin, consortium):
                _cors(response, origin)
            return response

        return handler

    return wrap


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"the body is limited to {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "invalid", "the body is not valid JSON") from e
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "the body must be a JSON object")
    return data


class Fields:
    """Collects every problem with a request body, so the client hears of all of them at once."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: dict[str, list[str]] = {}

    def text(self, name: str, *, required: bool = False, max_len: int = 200) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self.problems.setdefault(name, []).append("this field is required")
            return ""
        if not isinstance(value, str):
            self.problems.setdefault(name, []).append("must be a string")
            return ""
        value = value.strip()
        if required and not value:
            self.problems.setdefault(name, []).append("this field is required")
        if len(value) > max_len:
            self.problems.setdefault(name, []).append(f"at most {max_len} characters")
        return value

    def email(self, name: str, *, required: bool = False) -> str:
        value = self.text(name, required=required, max_len=254)
        if value:
            try:
                validate_email(value)
            except ValidationError:
                self.problems.setdefault(name, []).append("not an email address")
        return value

    def check(self) -> None:
        if self.problems:
            raise ApiError(400, "invalid", "some fields are not valid", self.problems)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _limit(request: HttpRequest) -> None:
    retry = hit("start", client_ip(request) or "unknown", settings.CHAT_START_RATE)
    if retry:
        raise ApiError(429, "rate_limited", "too many chats from this address; try again shortly",
                       headers={"Retry-After": str(retry)})


@api_view({"POST"}, consortium_from="slug")
def chat_create(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponse:
    f = Fields(json_body(request))
    question = f.text("question", required=True, max_len=2000)
    library = f.text("library", max_len=50)
    zip_code = f.text("zip", max_len=10)
    name = f.text("name", max_len=100)
    email = f.email("email")
    language = f.text("language", max_len=16)
    f.check()
    _limit(request)
    chat, token = services.chat_start(consortium=consortium, question=question, library_slug=library or None,
                                      zip_code=zip_code or None, name=name, email=email, language=language,
                                      ip=client_ip(request), now=timezone.now())
    return JsonResponse({"id": chat.pk, "token": token, "state": chat.state,
                         "home_library": library_ref(chat.home_library), "ws": "/ws/patron/"}, status=201)


@api_view({"POST"}, consortium_from="slug")
def question_create(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponse:
    f = Fields(json_body(request))
    question = f.text("question", required=True, max_len=4000)
    email = f.email("email", required=True)
    name = f.text("name", max_len=100)
    library = f.text("library", max_len=50)
    zip_code = f.text("zip", max_len=10)
    chat_id = f.text("chat", max_len=32)
    token = f.text("token", max_len=200)
    f.check()
    chat = None
    if chat_id:
        chat = Chat.objects.filter(pk=chat_id, consortium=consortium).first()
        if chat is None or not services.token_matches(chat, token):
            raise ApiError(403, "forbidden", "the chat and token do not match")
    _limit(request)
    ticket = services.question_leave(consortium=consortium, question=question, email=email, name=name,
                                     library_slug=library or None, zip_code=zip_code or None, chat=chat,
                                     now=timezone.now())
    return JsonResponse({"id": ticket.pk}, status=201)


def _bearer(request: HttpRequest) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else None


def _staff(request: HttpRequest) -> StaffProfile | None:
    if not request.user.is_authenticated:
        return None
    return StaffProfile.objects.select_related("library").filter(user=request.user, is_active=True).first()


def took_part(profile: StaffProfile, chat: Chat) -> bool:
    return chat.librarian_id == profile.pk or Offer.objects.filter(
        chat=chat, librarian=profile, status=Offer.Status.ACCEPTED).exists()


def is_coordinator_of(profile: StaffProfile, chat: Chat) -> bool:
    return profile.role == StaffProfile.Role.COORDINATOR and profile.library.consortium_id == chat.consortium_id


def chat_for(request: HttpRequest, chat_id: str, *, transcript: bool) -> tuple[Chat, bool]:
    """The chat, if this request may read it (patron by token, or staff by role); else 404."""
    chat = Chat.objects.select_related("consortium", "home_library").filter(pk=chat_id).first()
    if chat is None:
        raise not_found()
    token = _bearer(request)
    if token is not None:
        if services.token_matches(chat, token):
            return chat, True
        raise not_found()
    profile = _staff(request)
    if profile is not None and (is_coordinator_of(profile, chat) or took_part(profile, chat) or (
            transcript and chat.home_library_id == profile.library_id)):
        return chat, False
    raise not_found()


@api_view({"GET", "POST"}, consortium_from="chat")
def transcript(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat, patron = chat_for(request, chat_id, transcript=True)
    if request.method == "POST":
        f = Fields(json_body(request))
        email = f.email("email", required=True)
        f.check()
        transaction.on_commit(lambda: mail_transcript.delay(chat.pk, email))
        return JsonResponse({"sent": True}, status=202)
    rows = chat.messages.select_related("file").order_by("seq")
    if patron:
        rows = rows.filter(internal=False)
    return JsonResponse({"id": chat.pk, "home_library": library_ref(chat.home_library),
                         "messages": [message_frame(m) for m in rows], "state": chat.state})


@api_view({"DELETE"}, consortium_from="chat")
def chat_delete(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    """The patron asks for their chat to be deleted (docs/privacy.md): only the chat's token may."""
    chat = Chat.objects.filter(pk=chat_id).first()
    token = _bearer(request)
    if chat is None or token is None or not services.token_matches(chat, token):
        raise not_found()
    privacy.chat_forget(chat.pk, timezone.now())
    return HttpResponse(status=204)


@api_view({"POST"}, consortium_from="chat")
def survey(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat, patron = chat_for(request, chat_id, transcript=True)
    if not patron:
        raise not_found()
    data = json_body(request)
    f = Fields(data)
    rating = data.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        f.problems["rating"] = ["a whole number from 1 to 5"]
    comment = f.text("comment", max_len=2000)
    f.check()
    assert isinstance(rating, int)
    with transaction.atomic():
        _answer, created = Survey.objects.get_or_create(
            chat=chat, defaults={"rating": rating, "comment": comment, "created_at": timezone.now()})
    if not created:
        raise ApiError(409, "conflict", "this chat's survey was answered already")
    return JsonResponse({"ok": True}, status=201)


@api_view({"GET"}, consortium_from="chat")
def trace(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = Chat.objects.filter(pk=chat_id).first()
    profile = _staff(request)
    if chat is None or profile is None or not (is_coordinator_of(profile, chat) or took_part(profile, chat)):
        raise not_found()
    events = [{"at": e.at.isoformat(), "kind": e.kind, **e.data} for e in chat.trace.order_by("at", "id")]
    return JsonResponse({"chat": chat.pk, "events": events})


def _date(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as e:
        raise ApiError(400, "invalid", f"{name} must be a date (YYYY-MM-DD)", {name: ["not a date"]}) from e
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@api_view({"GET"}, consortium_from="slug")
def report_chats(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponse:
    profile = _staff(request)
    if profile is None or profile.role != StaffProfile.Role.COORDINATOR or \
            profile.library.consortium_id != consortium.pk:
        raise ApiError(403, "forbidden", "reports are for the consortium's coordinators")
    since = _date(request.GET.get("since"), "since")
    until = _date(request.GET.get("until"), "until")
    rows = Chat.objects.filter(consortium=consortium).select_related(
        "home_library", "answered_by__library", "answered_by__user").order_by("created_at")
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until + dt.timedelta(days=1))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{consortium.slug}-chats.csv"'
    writer = csv_safe.writer(response)  # cells a spreadsheet would run as formulas are quoted
    writer.writerow(["chat", "created_at", "home_library", "answering_library", "librarian", "step_answered",
                     "wait_seconds", "duration_seconds", "outcome", "end_reason", "language"])
    for chat in rows.iterator():
        answered = chat.answered_by
        wait = int((chat.first_accepted_at - chat.arrived_at).total_seconds()) if chat.first_accepted_at else ""
        duration = int((chat.ended_at - chat.first_accepted_at).total_seconds()) \
            if chat.ended_at and chat.first_accepted_at else ""
        writer.writerow([chat.pk, chat.created_at.isoformat(), chat.home_library.slug if chat.home_library else "",
                         answered.library.slug if answered else "", answered.user.username if answered else "",
                         chat.answered_step, wait, duration, chat.state, chat.end_reason, chat.language])
    return response
