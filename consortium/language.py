"""The staff's language: each librarian's choice (StaffProfile.language) for the console, the coordinator
pages and their sockets, and the mail they get. The patron's language is routing.patron.i18n's.

`StaffLanguageMiddleware` activates it for every request of a signed-in staff member who chose one;
everyone else reads English, as before. The choice is made on any staff page (`staff_language_set`,
a small form in the pages' bar) and kept in the database, so it follows the librarian to every
browser and process.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from consortium.scoping import AnyUser

LANGUAGES = {code for code, _ in settings.LANGUAGES}


def staff_language(user: AnyUser) -> str:
    """The language this staff member reads the staff pages in: their choice, else the default (English)."""
    return profile_language(getattr(user, "staff", None) if getattr(user, "is_authenticated", False) else None)


def profile_language(profile: object) -> str:
    """The same, from a staff profile (None: the default)."""
    chosen = getattr(profile, "language", "") if profile is not None else ""
    return chosen if chosen in LANGUAGES else settings.LANGUAGE_CODE


class StaffLanguageMiddleware:
    """After AuthenticationMiddleware: the staff member's language for this request. Patron pages choose
    their own (routing.patron.i18n.language_for) inside, so a signed-in librarian trying the ask page
    still sees the patron's language there."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Without a session cookie nobody is signed in: the request is left as it was, without reading
        # the session (which would add `Vary: Cookie` and a query to every patron and API request).
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        language = staff_language(request.user)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


@require_POST
def staff_language_set(request: HttpRequest) -> HttpResponse:
    """Keep the staff member's choice of language; back to the page they were on."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = "/staff/"
    profile = getattr(request.user, "staff", None) if request.user.is_authenticated else None
    language = request.POST.get("language", "")
    if profile is not None and (language in LANGUAGES or language == ""):
        profile.language = language
        profile.save(update_fields=["language"])
    return HttpResponseRedirect(back)
