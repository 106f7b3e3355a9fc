"""The public answers pages and the patron's answer endpoints: parse, check, call a selector or a
service, answer. Nothing here shows a draft or a retired answer (knowledge.selectors.public_answers).

- /answers/<consortium>/[<library>/]: the published answers, searchable (?q=), in English or Spanish
  (?lang=, as the ask pages), linkable: each answer has its own address.
- GET /api/v1/<consortium>/answers?q=&lang=&library=&limit=: the shared contract's answers (docs/protocol.md),
  three by default: the suggestions of the ask page and the widget while the patron types and while
  they wait (CORS for the consortium's allowed sites).
- POST /api/v1/chats/<id>/self-served {"answer": id}: "This answered my question" (added, docs/protocol.md).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.http import require_GET

from consortium import ratelimit
from consortium.clients import request_client_key
from consortium.models import Consortium
from knowledge import selectors, services
from knowledge.markdown import answer_html, answer_snippet
from routing import frames
from routing.api.base import ApiError, api_view, json_body, patron_chat
from routing.patron.i18n import language_for
from routing.patron.views import _consortium, _library
from routing.services.common import Refused
from routing.validation import Fields

MAX_QUERY = 500


def _query(request: HttpRequest) -> str:
    return request.GET.get("q", "")[:MAX_QUERY].replace("\x00", "")


def _page(request: HttpRequest, template: str, context: dict[str, Any], language: str) -> HttpResponse:
    context = {**context, "lang": language, "other_lang": "es" if language == "en" else "en"}
    with translation.override(language):
        response = render(request, template, context)
    response["Content-Language"] = language
    response["Vary"] = "Accept-Language"
    return response


@require_GET
def answers_page(request: HttpRequest, consortium_slug: str, library_slug: str | None = None) -> HttpResponse:
    consortium = _consortium(consortium_slug)
    library = _library(consortium, library_slug)
    language = language_for(request)
    query = _query(request).strip()
    if query:
        answers = selectors.public_search(consortium, library, query, language=language, limit=selectors.PAGE_RESULTS,
                                          every_library=True)
    else:
        answers = list(selectors.public_answers(consortium, library).filter(language=language)
                       .order_by("question")[:selectors.PAGE_LIST])
    rows = [{"answer": a, "snippet": answer_snippet(a.body)} for a in answers]
    return _page(request, "knowledge/answers.html", {
        "consortium": consortium, "library": library, "query": query, "rows": rows}, language)


@require_GET
def answer_page(request: HttpRequest, consortium_slug: str, answer_id: int) -> HttpResponse:
    consortium = _consortium(consortium_slug)
    answer = selectors.public_answer(consortium, answer_id)
    if answer is None:
        raise Http404("no such answer")
    language = language_for(request) if "lang" in request.GET else answer.language
    return _page(request, "knowledge/answer.html", {
        "consortium": consortium, "library": answer.library, "answer": answer, "html": answer_html(answer.body)},
        language)


@api_view({"GET"}, consortium_from="slug")
def suggestions(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponse:
    """Up to three published answers for what the patron has typed so far."""
    retry = ratelimit.ANSWERS_SEARCH_CLIENT.hit(request_client_key(request))
    if retry:
        raise ApiError(429, "rate_limited", "too many searches: wait a moment", headers={"Retry-After": str(retry)})
    f = Fields(dict(request.GET.items()))
    text = f.text("q", max_len=MAX_QUERY) or ""
    library_slug = f.text("library", max_len=50) or None
    language = f.choice("lang", ("en", "es"), required=False) or "en"
    limit = f.optional_integer("limit", minimum=1, maximum=selectors.PATRON_LIMIT_MAX)
    f.check()
    try:
        library = _library(consortium, library_slug)
    except Http404 as e:
        raise ApiError(404, "not_found", "no such library") from e
    found = selectors.public_search(consortium, library, text, language=language,
                                    limit=limit or selectors.PATRON_SUGGESTIONS)
    base = request.build_absolute_uri("/").rstrip("/")
    response = JsonResponse({"results": [selectors.suggestion_json(a, base) for a in found]})
    response["Cache-Control"] = "no-store"
    return response


@api_view({"POST"}, consortium_from="chat")
def self_served(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = patron_chat(request, chat_id)
    f = Fields(json_body(request))
    # The results' ids are strings (docs/protocol.md); a number is taken too.
    raw = f.data.get("answer")
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 18:
        f.data["answer"] = int(raw)
    answer_id = f.integer("answer", required=True, minimum=1, maximum=2**62)
    f.check()
    try:
        ended = services.chat_self_serve(chat.pk, answer_id, timezone.now())
    except Refused as e:
        status = {"conflict": 409, "not_found": 404}.get(e.reason, 400)
        raise ApiError(status, e.reason, e.detail, e.fields or None) from e
    ended.refresh_from_db()
    return JsonResponse(frames.patron_state_frame(ended))

