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
    # A refused line, by its protocol code: the server's `detail` is English, for developers.
    "refused_ended": _("The chat has ended, so your message was not sent."),
    "refused_rate_limited": _("You are sending messages too quickly. Wait a moment, then send it again."),
    "refused_too_large": _("Your message is too long to send. Please shorten it."),
    "refused_invalid": _("Your message could not be sent. Please check that it is not empty."),
    "refused": _("Your message could not be sent. Please try again."),
    "file_too_large": _("That file is too large (10 MB at most)."),
    "file_type": _("Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."),
    "file_failed": _("The file could not be sent."),
    "file_label": _("File: {name} ({size})"),
    "question_sent": _("Thank you. We have your question and will answer by email."),
    "question_due": _("Thank you. An answer is on its way by email: expect it by {due}."),
    "transcript_sent": _("The transcript is on its way to {email}."),
    "survey_thanks": _("Thank you for your feedback."),
    "survey_done": _("You have already answered the survey for this chat."),
    "failed": _("Something went wrong. Please try again."),
    "lib_none": _("No library matches. Try your ZIP code, or choose “I'm not sure”."),
    "lib_count": _("{count} libraries match. Use the up and down arrow keys to choose."),
    "lib_chosen": _("Chosen: {name}"),
    "chat_closed": _("This chat is no longer available."),
    # The honest launcher: {when} is the opening day and time in the patron's own time zone.
    "avail_closed": _("Closed, opens {when}."),
    "avail_form": _("Leave your question and email address, and a librarian will answer by email."),
    "minutes": _("min"),
    # The knowledge base's suggestions (issue 17, knowledge/): each opens the answer's own page.
    "new_tab": _("(opens in a new tab)"),
    "self_served": _("This answered my question"),
    "self_served_done": _("We are glad that helped. The chat has ended."),
    "self_served_failed": _("A librarian is already answering: please tell them in the chat."),
    # Sharing (issue 19; share.js). {name} is the librarian, {library} their library.
    "share_title": _("Screen sharing"),
    "share_ask_see": _("{name} at {library} asks to see your screen. Your browser will ask what to share: a tab, a "
                       "window or your whole screen. You can stop at any time. Nothing is recorded."),
    "share_ask_show": _("{name} at {library} would like to show you their screen. You can close it at any time. "
                        "Nothing is recorded."),
    "share_ask_page": _("{name} at {library} asks to see which page of this website you are on (its address and "
                        "title) while you chat. Nothing else is shared, and you can stop at any time."),
    "share_yes_see": _("Share my screen"),
    "share_yes_show": _("Watch"),
    "share_yes_page": _("Share the page"),
    "share_no": _("No thanks"),
    "share_declined": _("You said no. Nothing is shared."),
    "share_sharing": _("You are sharing your screen with {name}."),
    "share_sharing_page": _("{name} can see which page of this website you are on."),
    "share_stop": _("Stop sharing"),
    "share_watching": _("{name}'s screen"),
    "share_connecting": _("Connecting…"),
    "share_enlarge": _("Enlarge"),
    "share_shrink": _("Make smaller"),
    "share_close": _("Close"),
    "share_ended": _("Screen sharing has ended."),
    "share_page_ended": _("Page sharing has ended."),
    "share_failed": _("The screen share could not connect: your network may not allow it. You can send a "
                      "screenshot instead."),
    "share_unsupported": _("This browser cannot share a screen. You can send a screenshot instead."),
    "share_screenshot": _("Send a screenshot"),
    "page_card": _("{name} sent you a page:"),
    "page_new_tab": _("opens in a new tab"),
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
