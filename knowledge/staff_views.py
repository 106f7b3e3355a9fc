"""The staff's answers pages under /staff/answers/ and the console's answers beside a chat.

Thin: who asks (routing.staff.views.staff_page / staff_api), what they may do (knowledge.access),
then a selector or a service (knowledge.services); refusals come back as the form's errors.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from knowledge import access, selectors, services
from knowledge.drafting import draft_from_chat
from knowledge.markdown import answer_html
from knowledge.models import Answer, AnswerLanguage, AnswerState
from knowledge.services import AnswerFields
from libraries.models import StaffProfile
from routing.services.common import Refused
from routing.staff import selectors as staff_selectors
from routing.staff.views import staff_api, staff_page


def _fields(request: HttpRequest) -> AnswerFields:
    post = request.POST
    return AnswerFields(question=post.get("question", ""), body=post.get("body", ""),
                        language=post.get("language", AnswerLanguage.EN), keywords=post.get("keywords", ""),
                        scope=post.get("scope", ""), review_on=post.get("review_on", ""))


def _scopes(profile: StaffProfile) -> list[tuple[str, str]]:
    return [("", _("The whole consortium (%(name)s)") % {"name": profile.library.consortium.name}),
            *[(lib.slug, lib.name) for lib in access.writable_libraries(profile)]]


def _form_page(request: HttpRequest, profile: StaffProfile, *, answer: Answer | None, form: AnswerFields,
               errors: dict[str, list[str]], from_chat: bool = False) -> HttpResponse:
    return render(request, "knowledge/staff_edit.html", {
        "profile": profile, "section": "answers", "answer": answer, "form": form, "errors": errors,
        "scopes": _scopes(profile), "languages": AnswerLanguage.choices, "from_chat": from_chat,
        "may_publish": answer is not None and access.may_publish(profile, answer),
        "may_edit": answer is None or access.may_edit(profile, answer),
        "preview": answer_html(answer.body) if answer else "",
        "public_url": selectors.answer_url(answer) if answer and answer.state == AnswerState.PUBLISHED else "",
    }, status=400 if errors else 200)


@require_GET
@staff_page
def answers_list(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    state = request.GET.get("state", "")
    query = request.GET.get("q", "")[:500].replace("\x00", "")
    now = timezone.now()
    return render(request, "knowledge/staff_list.html", {
        "profile": profile, "section": "answers", "state": state, "query": query,
        "states": AnswerState.choices, "answers": selectors.staff_answers(profile, state=state, text=query),
        "due": selectors.due_for_review(profile, now.date()), "today": now.date(),
        "saved": request.GET.get("saved", ""),
    })


@require_http_methods(["GET", "POST"])
@staff_page
def answer_new(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    now = timezone.now()
    if request.method == "POST":
        form = _fields(request)
        try:
            answer = services.answer_create(profile, form, now)
        except Refused as e:
            return _form_page(request, profile, answer=None, form=form, errors=e.fields or {"form": [e.detail]})
        return redirect(f"{reverse('staff-answer', args=[answer.pk])}?saved=1")
    chat_id = request.GET.get("chat", "")[:32]
    if chat_id:
        chat = staff_selectors.history_chat(profile, chat_id, now)
        if chat is None:
            raise Http404("no such chat")
        return _form_page(request, profile, answer=None, form=draft_from_chat(profile, chat), errors={},
                          from_chat=True)
    return _form_page(request, profile, answer=None, form=AnswerFields(question="", body=""), errors={})


@require_http_methods(["GET", "POST"])
@staff_page
def answer_edit(request: HttpRequest, profile: StaffProfile, answer_id: int) -> HttpResponse:
    answer = Answer.objects.select_related("library", "consortium", "owner__user").filter(
        pk=answer_id, consortium_id=profile.library.consortium_id).first()
    if answer is None:
        raise Http404("no such answer")
    now = timezone.now()
    form = AnswerFields(question=answer.question, body=answer.body, language=answer.language,
                        keywords=answer.keywords, scope=answer.library.slug if answer.library else "",
                        review_on=answer.review_on.isoformat())
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action in AnswerState.values:
                services.answer_set_state(profile, answer.pk, action, now)
            else:
                form = _fields(request)
                services.answer_update(profile, answer.pk, form, now)
        except Refused as e:
            return _form_page(request, profile, answer=answer, form=form, errors=e.fields or {"form": [e.detail]})
        return redirect(f"{reverse('staff-answer', args=[answer.pk])}?saved={action}")
    return _form_page(request, profile, answer=answer, form=form, errors={})


@require_GET
@staff_api
def api_chat_answers(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    """The answers beside a chat in the console (knowledge.selectors.console_answers)."""
    chat = staff_selectors.history_chat(profile, chat_id, timezone.now())
    if chat is None:
        raise Refused("not_found", "no such chat")
    found: list[dict[str, Any]] = [c.as_json() for c in selectors.console_answers(profile, chat)]
    return JsonResponse({"answers": found, "new_url": f"{reverse('staff-answer-new')}?chat={chat.pk}"})
