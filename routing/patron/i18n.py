"""Patron-facing languages: which one a request gets, and the strings the chat script needs.

Translations are ordinary Django gettext catalogs (locale/es/LC_MESSAGES/django.po, compiled .mo
committed). Templates use {% translate %}; the script gets its strings from the page (or the
widget's panel answer) as one JSON object, so it needs no catalog of its own.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

SUPPORTED = ("en", "es")

# Placeholders in braces are filled by the script; keep them when translating.
SCRIPT_STRINGS = {
    "connecting": _("Connecting…"),
    "reconnecting": _("Connection lost. Reconnecting…"),
    "queued": _("You are number {position} in line."),
    "wait": _("Estimated wait: about {minutes} min."),
    "wait_soon": _("A librarian should be with you shortly."),
    "active": _("{name}, {library}, is answering."),
    "active_anon": _("A librarian is answering."),
    "partner": _("{library} is a partner library, helping while your own library is busy."),
    "unstaffed": _("Nobody can answer right now. Leave your question and email address, and a librarian "
                   "will answer by email."),
    "offer_form": _("Still waiting? You can leave your question for an answer by email instead, or keep "
                    "waiting."),
    "ended": _("The chat has ended."),
    "abandoned": _("This chat was closed because we lost touch with you."),
    "typing": _("{name} is typing…"),
    "typing_anon": _("The librarian is typing…"),
    "you": _("You"),
    "librarian": _("Librarian"),
    "sending": _("sending…"),
    "start_failed": _("Sorry, the chat could not start. Please try again."),
    "rate_limited": _("Too many chats from this connection. Please try again in a minute."),
    "busy": _("The service is very busy right now, so a new chat cannot start. Leave your question and "
              "email address below, and a librarian will answer by email, or try again in a few minutes."),
    # A blocked patron (routing.blocks) reads this: neutral on purpose, it accuses nobody.
    "blocked": _("Chat is not available right now. You can leave your question and email address below, "
                 "and a librarian will answer by email."),
    "forbidden_site": _("This website is not set up to use this chat service."),
    "invalid": _("Please check the highlighted fields."),
    "send_failed": _("Your message could not be sent: {detail}"),
    "file_too_large": _("That file is too large (10 MB at most)."),
    "file_type": _("Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."),
    "file_failed": _("The file could not be sent."),
    "file_label": _("File: {name} ({size})"),
    "question_sent": _("Thank you. We have your question and will answer by email."),
    "transcript_sent": _("The transcript is on its way to {email}."),
    "survey_thanks": _("Thank you for your feedback."),
    "survey_done": _("You have already answered the survey for this chat."),
    "failed": _("Something went wrong. Please try again."),
    "lib_none": _("No library matches. Try your ZIP code, or choose “I'm not sure”."),
    "lib_count": _("{count} libraries match. Use the up and down arrow keys to choose."),
    "lib_chosen": _("Chosen: {name}"),
    "chat_closed": _("This chat is no longer available."),
    "minutes": _("min"),
}


def patron_language(code: str | None) -> str:
    """The supported language closest to a chat's or follow-up's `language` ("es-MX" -> "es"); English
    for anything else. What every word a patron reads after the page is in: the chat's system lines
    and the mails (routing.services, routing.tasks)."""
    base = (code or "").split("-")[0].lower()
    return base if base in SUPPORTED else "en"


def language_for(request: HttpRequest) -> str:
    """The toggle (?lang=) wins; else the browser's Accept-Language; else English."""
    asked = request.GET.get("lang", "")
    if asked in SUPPORTED:
        return asked
    found = translation.get_language_from_request(request)
    return found if found in SUPPORTED else "en"


def script_strings(language: str) -> dict[str, str]:
    with translation.override(language):
        return {key: str(value) for key, value in SCRIPT_STRINGS.items()}
