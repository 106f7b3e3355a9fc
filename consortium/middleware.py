"""Every answer on an /api/ path is JSON, whatever went wrong (docs/protocol.md, Errors)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

logger = logging.getLogger(__name__)


def api_error(status: int, code: str, detail: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    body: dict[str, object] = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return JsonResponse({"error": body}, status=status)


class ApiErrorMiddleware:
    # Both sync and async: a long-poll (an async view) must not be pinned to a thread by this layer.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self._as_json(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._as_json(request, await self.get_response(request))

    @staticmethod
    def _as_json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if request.path.startswith("/api/") and response.status_code >= 400 and not isinstance(
            response, JsonResponse
        ) and response.get("Content-Type", "").startswith("text/html"):
            # Django's own 400/403/404/405 pages (CSRF, unknown URL, wrong method) become JSON errors.
            codes = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                     405: "method_not_allowed", 413: "too_large"}
            return api_error(response.status_code, codes.get(response.status_code, "error"),
                             response.reason_phrase or "request failed")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, Http404):
            return api_error(404, "not_found", "not found")
        # What Django itself answers 400 (or 413) for: a malformed body (a multipart body without its
        # boundary was a 500 here, found by schemathesis, tests/live/test_openapi.py).
        if isinstance(exception, RequestDataTooBig):
            return api_error(413, "too_large", "the request is too large")
        if isinstance(exception, (MultiPartParserError, BadRequest, SuspiciousOperation)):
            return api_error(400, "invalid", "the request is malformed")
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return api_error(500, "server_error", "the server failed to answer; nothing you sent was lost")
