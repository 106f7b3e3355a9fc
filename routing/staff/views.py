"""The staff console's pages and its small JSON API: check who asks, read (routing.staff.selectors) or
call a service (routing.services), answer.

Pages need a signed-in user with an active staff profile (anyone else signed in gets a 403 page);
the JSON endpoints under /staff/api/ answer 401/403/404 as JSON so the console's scripts can tell
"signed out" from "gone". Everything is scoped to the librarian's consortium by the services.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consortium.middleware import api_error
from libraries.models import StaffProfile
from routing import access, blocks, canned, files, whispers
from routing.services import blocks as block_services
from routing.services import canned as canned_services
from routing.services import chats, followups
from routing.services.common import Refused, ServiceError
from routing.staff import selectors
from routing.staff.i18n import console_strings
from routing.validation import Invalid, json_object

View = Callable[..., HttpResponse]
# Minutes without input after which the console sets an available librarian away; a query
# parameter (?idle=SECONDS) overrides it per page, which is how the browser tests make it short.
DEFAULT_IDLE_MINUTES = 15
# The most rows one page of a list shows (docs/security.md, "Lists and exports"); an "older" / "later" link
# leads to the rest. Today's lists fit in one page: the follow-ups showed 200, the history 50.
TICKETS_PAGE = 200
HISTORY_PAGE = 50
TRANSCRIPT_PAGE = 1000


def _number(request: HttpRequest, name: str, default: int) -> int:
    """A whole-number query parameter; anything else (or too long) is the default, as a page link would be."""
    raw = request.GET.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) <= 9 else default


def _link(request: HttpRequest, **changes: int) -> str:
    query = request.GET.copy()
    for key, value in changes.items():
        query[key] = str(value)
    return f"?{query.urlencode()}"


def _pager(request: HttpRequest, rows: list[Any], page: int, size: int) -> tuple[list[Any], dict[str, str]]:
    """`rows` fetched as size + 1 from (page - 1) * size: this page's rows, and links to its neighbours."""
    links = {}
    if len(rows) > size:
        links["next"] = _link(request, page=page + 1)
    if page > 1:
        links["previous"] = _link(request, page=page - 1)
    return rows[:size], links


def staff_page(view: View) -> View:
    @wraps(view)
    def handler(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        profile = access.staff_of(request.user)
        if profile is None:
            return render(request, "routing/staff/forbidden.html", status=403)
        return view(request, profile, **kwargs)

    return handler


def staff_api(view: View) -> View:
    @wraps(view)
    def handler(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return api_error(401, "unauthorized", "sign in first")
        profile = access.staff_of(request.user)
        if profile is None:
            return api_error(403, "forbidden", "not a staff account")
        try:
            return view(request, profile, **kwargs)
        except Refused as e:
            status = {"not_found": 404, "forbidden": 403, "conflict": 409}.get(e.reason, 400)
            return api_error(status, e.reason, e.detail, e.fields or None)
        except ServiceError as e:
            return api_error({"not_found": 404, "forbidden": 403}.get(e.reason, 400), e.reason, e.detail)

    return handler


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        return json_object(request.body, what="the body")
    except Invalid as e:
        raise Refused(e.code, e.detail) from e


# --- the console -------------------------------------------------------------------------------


@require_GET
@staff_page
def console(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    consortium = profile.library.consortium
    idle_minutes = getattr(settings, "STAFF_IDLE_AWAY_MINUTES", DEFAULT_IDLE_MINUTES)
    coordinator = profile.role == StaffProfile.Role.COORDINATOR
    return render(request, "routing/staff/console.html", {
        "block_hours": ",".join(str(h) for h in (blocks.COORDINATOR_HOURS if coordinator else blocks.LIBRARIAN_HOURS)),
        "profile": profile,
        "section": "console",
        "consortium": consortium,
        "capacity": profile.effective_capacity,
        "idle_seconds": int(idle_minutes * 60),
        "server_now": timezone.now().isoformat(),
        "strings": console_strings(),
    })


@require_GET
@staff_page
def library_policy(request: HttpRequest, profile: StaffProfile, slug: str) -> HttpResponse:
    panel = selectors.library_panel(profile, slug, timezone.now())
    if panel is None:
        raise Http404("no such library")
    if request.GET.get("format") == "json" or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(panel.as_json())
    template = "routing/staff/library_page.html" if request.GET.get("page") else "routing/staff/library_panel.html"
    return render(request, template, {"panel": panel, "profile": profile, "full_page": bool(request.GET.get("page"))})


@require_GET
@staff_api
def api_presence(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    return JsonResponse(selectors.presence_overview(profile, timezone.now()))


@require_GET
@staff_api
def api_chat(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    info = selectors.chat_info(profile, chat_id, timezone.now())
    if info is None:
        return api_error(404, "not_found", "no such chat")
    return JsonResponse(info)


@require_POST
@staff_api
def api_classify(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    data = _json_body(request)
    chat = chats.chat_classify(profile, chat_id, timezone.now(), read_scale=data.get("read_scale"),
                                        subjects=data.get("subjects"), outcome=data.get("outcome"))
    return JsonResponse({"chat": chat.pk, "read_scale": chat.read_scale, "subjects": chat.subjects,
                         "outcome": chat.outcome or None})


@require_POST
@staff_api
def api_block(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    """End and block (docs/console.md): the chat ends and its patron is blocked, both or neither."""
    data = _json_body(request)
    block = block_services.chat_end_and_block(profile, chat_id, timezone.now(), reason=data.get("reason"),
                                              hours=data.get("hours", blocks.DEFAULT_HOURS),
                                              address=data.get("address") is True)
    return JsonResponse({"chat": chat_id, "block": block.pk, "expires_at": block.expires_at.isoformat(),
                         "keys": sorted(block.hint)}, status=201)


# --- follow-up tickets ---------------------------------------------------------------------------


@require_GET
@staff_page
def tickets(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    status = request.GET.get("status", "open")
    if status not in (*selectors.FOLLOWUP_FILTERS, "all"):
        status = "open"
    query = request.GET.get("q", "")[:200]
    page = max(1, _number(request, "page", 1))
    start = (page - 1) * TICKETS_PAGE
    rows, links = _pager(request, list(selectors.followups_for(profile, status=status, query=query)
                                        [start:start + TICKETS_PAGE + 1]), page, TICKETS_PAGE)
    return render(request, "routing/staff/tickets.html", {
        "profile": profile, "tickets": rows, "status": status, "q": query, "links": links,
        "section": "tickets", "now": timezone.now(),
        "filters": [("open", "Open"), ("answered", "Answered"), ("closed", "Closed"), ("all", "All")],
    })


@require_http_methods(["GET", "POST"])
@staff_page
def ticket_detail(request: HttpRequest, profile: StaffProfile, ticket_id: str) -> HttpResponse:
    ticket = selectors.followup_get(profile, ticket_id)
    if ticket is None:
        raise Http404("no such follow-up")
    error = ""
    answer = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        answer = request.POST.get("answer", "")
        now = timezone.now()
        try:
            if action == "claim":
                followups.followup_claim(profile, ticket_id, now)
            elif action == "answer":
                followups.followup_answer(profile, ticket_id, answer, now)
            elif action == "close":
                followups.followup_close(profile, ticket_id, now)
            else:
                raise Refused("invalid", "unknown action")
        except Refused as e:
            error = e.detail
        else:
            return redirect("staff-ticket", ticket_id=ticket_id)
        ticket = selectors.followup_get(profile, ticket_id) or ticket
    context = {"profile": profile, "ticket": ticket, "error": error, "answer": answer, "section": "tickets",
               "now": timezone.now(),
               "files": list(selectors.followup_files(ticket)) if ticket.chat_id else []}
    return render(request, "routing/staff/ticket.html", context, status=400 if error else 200)


@require_GET
@staff_page
def ticket_file(request: HttpRequest, profile: StaffProfile, ticket_id: str, file_id: str) -> HttpResponse:
    """A file of the follow-up's chat, to anyone who may work on the follow-up (routing.files.download)."""
    ticket = selectors.followup_get(profile, ticket_id)
    stored = selectors.followup_files(ticket).filter(pk=file_id).first() if ticket and ticket.chat_id else None
    if stored is None:
        raise Http404("no such file")
    return files.download(stored)


# --- history -------------------------------------------------------------------------------------


@require_GET
@staff_page
def history(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    page = max(1, _number(request, "page", 1))
    found = selectors.history(profile, timezone.now(), query=query, limit=HISTORY_PAGE + 1,
                              offset=(page - 1) * HISTORY_PAGE)
    chats, links = _pager(request, found, page, HISTORY_PAGE)
    return render(request, "routing/staff/history.html", {
        "profile": profile, "chats": chats, "q": query, "section": "history", "links": links,
        "retention_days": profile.library.consortium.transcript_retention_days,
    })


@require_http_methods(["GET", "POST"])
@staff_page
def history_detail(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    now = timezone.now()
    chat = selectors.history_chat(profile, chat_id, now)
    if chat is None:
        raise Http404("no such chat")
    error = ""
    if request.method == "POST":
        try:
            chats.chat_classify(profile, chat_id, now, read_scale=request.POST.get("read_scale"),
                                         subjects=request.POST.get("subjects", ""),
                                         outcome=request.POST.get("outcome", ""))
        except Refused as e:
            error = "; ".join(f"{k}: {', '.join(v)}" for k, v in e.fields.items()) or e.detail
        else:
            return redirect("staff-history-chat", chat_id=chat_id)
    after = _number(request, "after", 0)
    messages = list(chat.messages.select_related("file").filter(whispers.visible_q(profile.pk), seq__gt=after)
                    .order_by("seq")[:TRANSCRIPT_PAGE + 1])
    links = {}
    if len(messages) > TRANSCRIPT_PAGE:
        messages = messages[:TRANSCRIPT_PAGE]
        links["next"] = f"?after={messages[-1].seq}"
    if after:
        links["first"] = "?"
    return render(request, "routing/staff/history_chat.html", {
        "profile": profile, "chat": chat, "messages": messages, "section": "history", "error": error,
        "links": links,
        "took_part": access.took_part(profile, chat),
    }, status=400 if error else 200)


# --- canned responses ----------------------------------------------------------------------------


def _canned_form(request: HttpRequest) -> dict[str, str]:
    return {"set": request.POST.get("set", ""), "title": request.POST.get("title", ""),
            "body_en": request.POST.get("body_en", ""), "body_es": request.POST.get("body_es", "")}


@require_http_methods(["GET", "POST"])
@staff_page
def canned_list(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    """The sets this librarian keeps, each with its responses, and a form to add one."""
    sets = canned.sets_managed_by(profile)
    form = {"set": request.GET.get("set", canned.PERSONAL), "title": "", "body_en": "", "body_es": ""}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = _canned_form(request)
        try:
            canned_services.canned_create(profile, which=form["set"], title=form["title"],
                                          body_en=form["body_en"], body_es=form["body_es"])
        except Refused as e:
            errors = e.fields or {"form": [e.detail]}
        else:
            return redirect(f"{request.path}?set={form['set']}&saved=1#set-{form['set']}")
    rows = list(canned.managed_by(profile).select_related("library"))
    groups = [{"set": which, "name": canned.SET_NAMES[which],
               "rows": [r for r in rows if canned.set_of(r) == which]} for which in sets]
    return render(request, "routing/staff/canned.html", {
        "profile": profile, "section": "canned", "groups": groups, "form": form, "errors": errors,
        "saved": bool(request.GET.get("saved")), "set_names": [(s, canned.SET_NAMES[s]) for s in sets],
    }, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
@staff_page
def canned_edit(request: HttpRequest, profile: StaffProfile, response_id: int) -> HttpResponse:
    response = canned.managed_by(profile).filter(pk=response_id).first()
    if response is None:
        raise Http404("no such response")
    which = canned.set_of(response)
    form = {"set": which, "title": response.title, "body_en": response.body, "body_es": response.body_es}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if request.POST.get("action") == "delete":
                canned_services.canned_delete(profile, response_id)
            else:
                form = {**_canned_form(request), "set": which}
                canned_services.canned_update(profile, response_id, title=form["title"], body_en=form["body_en"],
                                              body_es=form["body_es"])
        except Refused as e:
            if e.reason == "not_found":
                raise Http404("no such response") from e
            errors = e.fields or {"form": [e.detail]}
        else:
            return redirect(f"{reverse('staff-canned')}?set={which}&saved=1#set-{which}")
    return render(request, "routing/staff/canned_edit.html", {
        "profile": profile, "section": "canned", "response": response, "form": form, "errors": errors,
        "set_name": canned.SET_NAMES[which],
    }, status=400 if errors else 200)
