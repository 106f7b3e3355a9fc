"""What the public sees: the ask pages, the widget's loader script and the widget's panel.

The ask page and the widget panel render the same template fragment (routing/patron/_chat.html)
and run the same script (static routing/patron/chat.js), so a fix to one is a fix to both.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.core.validators import slug_re
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_GET

from consortium.middleware import api_error
from consortium.models import Consortium
from libraries.models import Library
from routing.access import origin_allowed
from routing.api.base import cors
from routing.patron.i18n import SUPPORTED, language_for, script_strings

WIDGET_SCRIPT = "routing/patron/widget.js"


def picker_libraries(consortium: Consortium) -> list[dict[str, str]]:
    """What the library picker offers: active libraries by name, with their city for type-ahead."""
    rows = Library.objects.filter(consortium=consortium, is_active=True).order_by("name")
    return [{"slug": lib.slug, "name": lib.name, "city": lib.city} for lib in rows]


def _consortium(slug: str) -> Consortium:
    consortium = Consortium.objects.filter(slug=slug, is_active=True).first()
    if consortium is None:
        raise Http404("no such consortium")
    return consortium


def _library(consortium: Consortium, slug: str | None) -> Library | None:
    if not slug:
        return None
    if not slug_re.match(slug):  # a NUL byte reached PostgreSQL and answered 500
        raise Http404("no such library")
    library = Library.objects.filter(consortium=consortium, slug=slug, is_active=True).first()
    if library is None:
        raise Http404("no such library")
    return library


def _chat_context(consortium: Consortium, library: Library | None, language: str, base: str) -> dict[str, Any]:
    return {
        "consortium": consortium,
        "library": library,
        "lang": language,
        "config": {
            "base": base,
            "consortium": consortium.slug,
            "library": library.slug if library else "",
            "lang": language,
            "strings": script_strings(language),
            "libraries": [] if library else picker_libraries(consortium),
        },
    }


@require_GET
def ask(request: HttpRequest, consortium_slug: str, library_slug: str | None = None) -> HttpResponse:
    consortium = _consortium(consortium_slug)
    library = _library(consortium, library_slug)
    language = language_for(request)
    context = _chat_context(consortium, library, language, base="")
    context["other_lang"] = "es" if language == "en" else "en"
    with translation.override(language):
        response = render(request, "routing/patron/ask.html", context)
    response["Content-Language"] = language
    response["Vary"] = "Accept-Language"
    # The Content-Security-Policy comes from consortium.security's middleware, as for every page.
    return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The service's root address: where a patron who types the bare host name lands. A deployment
    serves one consortium as a rule, so the root is its ask page (a redirect, keeping ?lang=);
    a deployment of several lists their ask pages; none yet (a fresh install) has nothing to show."""
    consortia = list(Consortium.objects.order_by("name", "slug").values_list("slug", "name"))
    if not consortia:
        raise Http404("no consortium has been imported yet")
    if len(consortia) == 1:
        lang = request.GET.get("lang", "")
        return redirect(reverse("ask", args=[consortia[0][0]]) + (f"?lang={lang}" if lang in SUPPORTED else ""))
    language = language_for(request)
    context = {"lang": language, "other_lang": "es" if language == "en" else "en",
               "consortia": [{"name": name, "slug": slug} for slug, name in consortia]}
    with translation.override(language):
        response = render(request, "routing/patron/home.html", context)
    response["Content-Language"] = language
    response["Vary"] = "Accept-Language"
    return response


@require_GET
def ask_theme(request: HttpRequest, consortium_slug: str) -> HttpResponse:
    """The consortium's colours as CSS custom properties: a stylesheet, so no inline style is needed."""
    consortium = _consortium(consortium_slug)
    css = (f":root{{--vr-accent:{consortium.accent_color};--vr-accent-text:{consortium.accent_text_color}}}\n")
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@cache
def _widget_source() -> bytes:
    path = finders.find(WIDGET_SCRIPT)
    if not path:
        raise RuntimeError(f"static file {WIDGET_SCRIPT} is missing")
    return Path(str(path)).read_bytes()


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_widget_source(), content_type="text/javascript; charset=utf-8")
    # Short: a fix reaches every library's site within minutes, without version numbers in their pages.
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def widget_panel(request: HttpRequest, consortium_slug: str) -> HttpResponse:
    """The panel's markup and strings, for the widget on an allowed site.

    A site the consortium has not allowed gets 403 *with* CORS headers, so the widget can read the
    refusal and say so plainly instead of failing as if the network were down.
    """
    origin = request.headers.get("Origin")
    consortium = Consortium.objects.filter(slug=consortium_slug, is_active=True).first()
    if request.method == "OPTIONS":
        return cors(HttpResponse(status=204), origin)
    if request.method != "GET":
        return api_error(405, "method_not_allowed", "use GET")
    if consortium is None:
        return cors(api_error(404, "not_found", "no such consortium"), origin)
    if not origin_allowed(origin, consortium):
        return cors(api_error(403, "forbidden", "this site may not use the chat service"), origin)
    try:
        library = _library(consortium, request.GET.get("library") or None)
    except Http404:
        return cors(api_error(404, "not_found", "no such library"), origin)
    language = language_for(request)
    base = request.build_absolute_uri("/").rstrip("/")
    context = _chat_context(consortium, library, language, base=base)
    with translation.override(language):
        html = render_to_string("routing/patron/_chat.html", context, request=request)
    response = JsonResponse({**context["config"], "html": html, "title": consortium.name})
    response["Cache-Control"] = "no-store"
    return cors(response, origin)
