"""The chat API of docs/protocol.md: parse, check access, call a service, answer in JSON."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.validators import slug_re
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from consortium import csv_safe, ratelimit
from consortium.clients import request_client_key
from consortium.middleware import api_error
from consortium.models import Consortium
from consortium.queries import only_row
from libraries.models import StaffProfile
from routing import access, blocks, outcomes, privacy, whispers
from routing import availability as availability_of
from routing.api.base import (
    ApiError,
    api_view,
    chat_for,
    client_ip,
    cors,
    json_body,
    not_found,
    page_of,
    patron_chat,
    staff,
)
from routing.frames import library_ref, message_frame
from routing.models import Chat
from routing.patron.i18n import SUPPORTED as SUPPORTED_LANGUAGES
from routing.services import chats, followups, transcripts
from routing.services.common import Refused, ServiceError
from routing.validation import Fields

if TYPE_CHECKING:  # django-stubs-ext is a development dependency (requirements/dev.lock) only
    from django_stubs_ext import WithAnnotations

logger = logging.getLogger(__name__)
# Most messages (or trace events) one answer carries; `next` links to the rest (docs/protocol.md). A chat
# is rarely past a few hundred lines, so today's clients see the whole of it in the first page.
TRANSCRIPT_PAGE = 1000
TRACE_PAGE = 1000


def _limit(request: HttpRequest) -> None:
    retry = ratelimit.CHAT_START.hit(request_client_key(request))
    if retry:
        raise ApiError(429, "rate_limited", "too many chats from this address; try again shortly",
                       headers={"Retry-After": str(retry)})


@api_view({"POST"}, consortium_from="slug")
def chat_create(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponse:
    body = json_body(request)
    f = Fields(body)
    question = f.text("question", required=True, max_len=2000)
    library = f.text("library", max_len=50)
    zip_code = f.text("zip", max_len=10)
    name = f.text("name", max_len=100)
    email = f.email("email")
    language = f.text("language", max_len=16)
    device = f.text("device", max_len=blocks.DEVICE_MAX_LEN)
    # "Remember me on this device" (docs/patron.md): off unless the patron ticked it.
    remember = body.get("remember", False)
    if not isinstance(remember, bool):
        f.problem("remember", "must be true or false")
    elif remember and not device:
        f.problem("remember", "needs the device id")
    f.check()
    _limit(request)
    try:
        chat, token = chats.chat_start(consortium=consortium, question=question, library_slug=library or None,
                                          zip_code=zip_code or None, name=name, email=email, language=language,
                                          ip=client_ip(request), now=timezone.now(), device=device,
                                          remember=remember)
    except ServiceError as e:
        if e.reason == "blocked":  # neutral on purpose: the page offers the question form (docs/protocol.md)
            raise ApiError(403, "blocked", "chat is not available now; you can leave your question instead") from e
        raise
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
    deadline = f.text("deadline", max_len=10)
    language = f.text("language", max_len=16)
    f.check()
    chat = None
    if chat_id:
        try:
            chat = access.patron_chat(chat_id, token, request.headers.get("Origin"))
        except access.PatronRefused:
            chat = None
        if chat is None or chat.consortium_id != consortium.pk:
            raise ApiError(403, "forbidden", "the chat and token do not match")
    _limit(request)
    retry = ratelimit.QUESTION_CLIENT.hit(request_client_key(request))
    if retry:
        raise ApiError(429, "rate_limited", "too many questions from this address; try again later",
                       headers={"Retry-After": str(retry)})
    mailed = _question_mail_allowed(consortium, email)
    try:
        ticket = followups.question_leave(consortium=consortium, question=question, email=email, name=name,
                                         library_slug=library or None, zip_code=zip_code or None, chat=chat,
                                         now=timezone.now(), mail_patron=mailed, deadline=deadline,
                                         language=language)
    except Refused as e:  # the patron's deadline: its field says what is wrong with it
        raise ApiError(400, e.reason, e.detail, e.fields) from e
    # "An answer is on its way" on the patron's page: by when (routing.services.followup_deadlines).
    answer: dict[str, Any] = {"id": ticket.pk, "mailed": mailed,
                              "due_at": ticket.due_at.isoformat() if ticket.due_at else None}
    if not mailed:
        answer["detail"] = "we have your question; its confirmation mail was not sent (too many mails lately)"
    return JsonResponse(answer, status=201)


def _question_mail_allowed(consortium: Consortium, email: str) -> bool:
    """Whether the question's confirmation may be mailed: within the address's and the consortium's rates.
    Past them the question is still taken: only the mail is skipped (docs/security.md)."""
    if ratelimit.QUESTION_MAIL_EMAIL.hit(hashlib.sha256(email.strip().lower().encode()).hexdigest()):
        logger.warning("question confirmation not mailed: the address's limit", extra={"consortium": consortium.slug})
        return False
    if ratelimit.QUESTION_MAIL_CONSORTIUM.hit(consortium.slug):
        logger.warning("question confirmation not mailed: the consortium's limit",
                       extra={"consortium": consortium.slug})
        return False
    return True


@api_view({"GET", "POST"}, consortium_from="chat")
def transcript(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat, patron = chat_for(request, chat_id)
    if request.method == "POST":
        f = Fields(json_body(request))
        email = f.email("email", required=True)
        f.check()
        _transcript_mail(request, chat, email)
        return JsonResponse({"sent": True}, status=202)
    page = page_of(request, maximum=TRANSCRIPT_PAGE)
    rows = chat.messages.select_related("file").filter(seq__gt=page.after).order_by("seq")
    if patron:
        rows = rows.filter(internal=False)
    else:
        reader = staff(request)
        rows = rows.filter(whispers.visible_q(reader.pk if reader else None))
    messages = list(rows[:page.limit + 1])
    more = len(messages) > page.limit
    messages = messages[:page.limit]
    return JsonResponse({"id": chat.pk, "home_library": library_ref(chat.home_library),
                         "messages": [message_frame(m, chat.channel) for m in messages], "state": chat.state,
                         "next": page.next_url(request, messages[-1].seq) if more else None})


# The per-chat bounds never reset (docs/security.md): a day is what the answer says to wait.
TRANSCRIPT_LIMIT_RETRY = 24 * 3600


def _transcript_mail(request: HttpRequest, chat: Chat, email: str) -> None:
    """Past the client's rate or the chat's bounds: 429 with Retry-After; a scrubbed chat: 409."""
    retry = ratelimit.TRANSCRIPT_MAIL_CLIENT.hit(request_client_key(request))
    if retry:
        raise ApiError(429, "rate_limited", "too many transcript mails from this address; try again later",
                       headers={"Retry-After": str(retry)})
    try:
        transcripts.transcript_mail_ask(chat_id=chat.pk, email=email, now=timezone.now())
    except transcripts.TranscriptRefused as e:
        if e.reason == "scrubbed":
            raise ApiError(409, "scrubbed", e.detail) from e
        raise ApiError(429, "limit_reached", e.detail, headers={"Retry-After": str(TRANSCRIPT_LIMIT_RETRY)}) from e


@api_view({"DELETE"}, consortium_from="chat")
def chat_delete(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    """The patron asks for their chat to be deleted (docs/privacy.md): only the chat's token may."""
    chat = patron_chat(request, chat_id)
    privacy.chat_forget(chat.pk, timezone.now())
    return HttpResponse(status=204)


@api_view({"POST"}, consortium_from="chat")
def survey(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat, patron = chat_for(request, chat_id)
    if not patron:
        raise not_found()
    f = Fields(json_body(request))
    rating = f.integer("rating", minimum=1, maximum=5, required=True)
    comment = f.text("comment", max_len=2000)
    f.check()
    if not chats.survey_answer(chat, rating=rating, comment=comment, now=timezone.now()):
        raise ApiError(409, "conflict", "this chat's survey was answered already")
    return JsonResponse({"ok": True}, status=201)


@api_view({"GET"}, consortium_from="chat")
def trace(request: HttpRequest, chat_id: str, **_: Any) -> HttpResponse:
    chat = only_row(Chat.objects.select_related("consortium").filter(pk=chat_id))
    if chat is None or not access.may_trace(staff(request), chat):
        raise not_found()
    page = page_of(request, maximum=TRACE_PAGE)  # `after`: how many events were read already
    rows = list(chat.trace.order_by("at", "id")[page.after:page.after + page.limit + 1])
    more = len(rows) > page.limit
    events = [{"at": e.at.isoformat(), "kind": e.kind, **e.data} for e in rows[:page.limit]]
    return JsonResponse({"chat": chat.pk, "events": events,
                         "next": page.next_url(request, page.after + page.limit) if more else None})


def _date(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as e:
        raise ApiError(400, "invalid", f"{name} must be a date (YYYY-MM-DD)", {name: ["not a date"]}) from e
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@api_view({"GET"}, consortium_from="slug")
def report_chats(request: HttpRequest, consortium: Consortium, **_: Any) -> HttpResponseBase:
    profile = staff(request)
    if profile is None or profile.role != StaffProfile.Role.COORDINATOR or \
            profile.library.consortium_id != consortium.pk:
        raise ApiError(403, "forbidden", "reports are for the consortium's coordinators")
    since = _date(request.GET.get("since"), "since")
    until = _date(request.GET.get("until"), "until")
    # `outcome` is the chat's outcome as the statistics page counts it (routing/outcomes.py); `state` its state.
    rows = Chat.objects.filter(consortium=consortium).select_related(
        "home_library", "answered_by__library", "answered_by__user").annotate(
        outcome_class=outcomes.outcome_of()).order_by("created_at")
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until + dt.timedelta(days=1))
    # Streamed (consortium/csv_safe.py): years of chats are written as they are read, never held whole.
    return csv_safe.streaming_response(request, _report_rows(rows), f"{consortium.slug}-chats.csv")


REPORT_COLUMNS: list[object] = ["chat", "created_at", "home_library", "answering_library", "librarian", "step_answered",
                  "wait_seconds", "duration_seconds", "outcome", "end_reason", "language", "state",
                  "channel"]


class _Outcome(TypedDict):
    outcome_class: str


def _report_rows(rows: QuerySet[WithAnnotations[Chat, _Outcome]]) -> Iterator[list[object]]:
    yield list(REPORT_COLUMNS)
    for chat in rows.iterator(chunk_size=500):
        answered = chat.answered_by
        wait = int((chat.first_accepted_at - chat.arrived_at).total_seconds()) if chat.first_accepted_at else ""
        duration = int((chat.ended_at - chat.first_accepted_at).total_seconds()) \
            if chat.ended_at and chat.first_accepted_at else ""
        yield [chat.pk, chat.created_at.isoformat(), chat.home_library.slug if chat.home_library else "",
               answered.library.slug if answered else "", answered.user.username if answered else "",
               chat.answered_step, wait, duration, chat.outcome_class, chat.end_reason, chat.language, chat.state,
               chat.channel]


def availability(request: HttpRequest, consortium_slug: str) -> HttpResponseBase:
    """GET /api/v1/<c>/availability (docs/protocol.md): answered from this process's few seconds' memory
    when it can (every open widget polls it), else worked out by routing.availability and kept."""
    library = request.GET.get("library", "")
    language = request.GET.get("lang", "") or "en"
    origin = request.headers.get("Origin")
    kept = (availability_of.cached(consortium_slug, library, language)
            if request.method == "GET" and language in SUPPORTED_LANGUAGES else None)
    if kept is None:
        return _availability_fresh(request, consortium_slug=consortium_slug)
    consortium, answer = kept
    if not access.origin_allowed(origin, consortium):
        return api_error(403, "forbidden", "this site may not use the chat service")
    return _availability_response(JsonResponse(answer), origin)


def _availability_response(response: HttpResponse, origin: str | None) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={int(availability_of.FRESH_FOR)}"
    return cors(response, origin)


@api_view({"GET"}, consortium_from="slug")
def _availability_fresh(request: HttpRequest, consortium: Consortium, consortium_slug: str) -> HttpResponse:
    library = request.GET.get("library", "")
    language = request.GET.get("lang", "") or "en"
    fields: dict[str, list[str]] = {}
    if language not in SUPPORTED_LANGUAGES:
        fields["lang"] = [f"one of {', '.join(SUPPORTED_LANGUAGES)}"]
    if library and (len(library) > 50 or not slug_re.match(library)):
        fields["library"] = ["a library's slug"]
    if fields:
        raise ApiError(400, "invalid", "some fields are not valid", fields)
    found = availability_of.availability(consortium, library or None, timezone.now(), language)
    answer = found.as_json(language)
    availability_of.keep(consortium_slug, library, language, consortium, answer)
    response = JsonResponse(answer)
    response["Cache-Control"] = f"public, max-age={int(availability_of.FRESH_FOR)}"
    return response
