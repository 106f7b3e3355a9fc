"""What every HTTP endpoint shares (docs/protocol.md): JSON errors, CORS for the consortium's allowed
origins only, the request's patron (by token) or librarian (by session), through routing.access."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from consortium.clients import request_address
from consortium.middleware import api_error
from consortium.models import Consortium
from consortium.queries import only_row
from libraries.models import StaffProfile
from routing import access
from routing.access import origin_allowed, own_origin
from routing.models import Chat
from routing.services import common
from routing.validation import Invalid, json_object

View = Callable[..., HttpResponseBase]  # HttpResponse, or a StreamingHttpResponse (the chats CSV)
R = TypeVar("R", bound=HttpResponseBase)


MAX_JSON_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.fields, self.headers = status, code, detail, fields, headers or {}


def not_found() -> ApiError:
    return ApiError(404, "not_found", "no such chat")


def cors(response: R, origin: str | None) -> R:
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
        def handler(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
            origin = request.headers.get("Origin")
            consortium: Consortium | None = None
            response: HttpResponseBase
            try:
                if consortium_from == "slug":
                    consortium = Consortium.objects.filter(slug=kwargs["consortium_slug"], is_active=True).first()
                    if consortium is None:
                        raise ApiError(404, "not_found", "no such consortium")
                elif consortium_from == "chat":
                    chat = only_row(Chat.objects.select_related("consortium").filter(pk=kwargs["chat_id"]))
                    consortium = chat.consortium if chat else None
                if not origin_allowed(origin, consortium):
                    raise ApiError(403, "forbidden", "this site may not use the chat service")
                if request.method == "OPTIONS":
                    return cors(HttpResponse(status=204), origin)
                if request.method not in methods:
                    raise ApiError(405, "method_not_allowed", f"use {' or '.join(sorted(methods))}")
                response = view(request, consortium=consortium, **kwargs)
            except ApiError as e:
                response = api_error(e.status, e.code, e.detail, e.fields)
                for key, value in e.headers.items():
                    response[key] = value
            except Invalid as e:
                response = api_error(400, "invalid", "some fields are not valid", e.fields)
            except common.ServiceError as e:
                status = {"not_found": 404, "forbidden": 403}.get(e.reason, 400)
                response = api_error(status, e.reason, e.detail)
            if consortium is not None and origin_allowed(origin, consortium):
                cors(response, origin)
            return response

        return handler

    return wrap


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        return json_object(request.body, what="the body", max_bytes=MAX_JSON_BYTES)
    except Invalid as e:
        raise ApiError(413 if e.code == "too_large" else 400, e.code, e.detail) from e


def client_ip(request: HttpRequest) -> str | None:
    """The client's own address (kept with a chat until its retention); limits count by
    consortium.clients.request_client_key instead (an IPv6 client's /64)."""
    return request_address(request) or None


def bearer(request: HttpRequest) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else None


def staff(request: HttpRequest) -> StaffProfile | None:
    return access.staff_of(request.user)


def patron_chat(request: HttpRequest, chat_id: str) -> Chat:
    """The chat whose token the request bears; 404 for anything else (existence is not revealed)."""
    try:
        return access.patron_chat(chat_id, bearer(request), request.headers.get("Origin"))
    except access.OriginRefused as e:
        raise ApiError(403, "forbidden", "this site may not use the chat service") from e
    except access.NoSuchChat as e:
        raise not_found() from e


def chat_for(request: HttpRequest, chat_id: str) -> tuple[Chat, bool]:
    """The chat, if this request may read it (patron by token, staff by access.may_read); else 404."""
    if bearer(request) is not None:
        return patron_chat(request, chat_id), True
    chat = only_row(Chat.objects.select_related("consortium", "home_library").filter(pk=chat_id))
    if chat is None or not access.may_read(staff(request), chat):
        raise not_found()
    return chat, False


@dataclass(frozen=True)
class Page:
    """Where a list resumes (`after`: a sequence number or a count already read) and how much of it to send."""

    after: int
    limit: int

    def next_url(self, request: HttpRequest, after: int) -> str:
        """The link to the rest: the same request with `after` moved on."""
        query = request.GET.copy()
        query["after"], query["limit"] = str(after), str(self.limit)
        return f"{request.path}?{query.urlencode()}"


def page_of(request: HttpRequest, *, maximum: int) -> Page:
    """`?after=&limit=` of a bounded list (docs/protocol.md): limit 1..maximum, default the maximum."""
    raw_after, raw_limit = request.GET.get("after", "0"), request.GET.get("limit", str(maximum))
    fields: dict[str, list[str]] = {}
    if not raw_after.isdigit() or len(raw_after) > 12:
        fields["after"] = ["a whole number >= 0"]
    if not raw_limit.isdigit() or not 1 <= int(raw_limit[:12]) <= maximum:
        fields["limit"] = [f"a whole number from 1 to {maximum}"]
    if fields:
        raise ApiError(400, "invalid", "some fields are not valid", fields)
    return Page(after=int(raw_after), limit=int(raw_limit))
