"""Canned responses: the three sets, who keeps which, which a librarian is offered in a chat, and how
their placeholders are filled in. The writes are in routing.services.canned.

The sets (docs/console.md, "Canned responses"):

- personal: one librarian's own (`owner`), kept by them and offered only to them;
- library: a library's (`library`), kept by its library admins (and its coordinators), offered to its
  librarians and to whoever answers one of its patrons (the library's own words for its patrons:
  card rules, its hours);
- consortium: neither owner nor library, kept by the coordinators, offered in every chat.

Nobody else reads a set: a response outside what a profile may manage is absent for it (404), never
"forbidden", so ids do not reveal what exists elsewhere.

Placeholders are filled in on the server, where the chat, the home library and its hours are: the
console gets each response ready to insert, once per language it has, the chat's language first.
An unknown placeholder (a typo) is left as written so the librarian sees it before sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import translation
from django.utils.translation import pgettext

from libraries.hours import format_interval, schedule_for
from libraries.models import Library, Queue, StaffProfile
from routing.models import CannedResponse, Chat

PERSONAL = "personal"
LIBRARY = "library"
CONSORTIUM = "consortium"
SETS = (PERSONAL, LIBRARY, CONSORTIUM)
SET_NAMES = {PERSONAL: "My responses", LIBRARY: "Library", CONSORTIUM: "Consortium"}

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def set_of(response: CannedResponse) -> str:
    if response.owner_id is not None:
        return PERSONAL
    return LIBRARY if response.library_id is not None else CONSORTIUM


def sets_managed_by(profile: StaffProfile) -> tuple[str, ...]:
    """Everyone keeps a personal set; library admins and coordinators their library's; coordinators
    the consortium's."""
    role = profile.role
    if role == StaffProfile.Role.COORDINATOR:
        return (PERSONAL, LIBRARY, CONSORTIUM)
    if role == StaffProfile.Role.LIBRARY_ADMIN:
        return (PERSONAL, LIBRARY)
    return (PERSONAL,)


def _set_q(profile: StaffProfile, which: str) -> Q:
    if which == PERSONAL:
        return Q(owner_id=profile.pk)
    if which == LIBRARY:
        return Q(owner__isnull=True, library_id=profile.library_id)
    return Q(owner__isnull=True, library__isnull=True)


def managed_by(profile: StaffProfile) -> QuerySet[CannedResponse]:
    """The responses this profile may edit and delete, set by set."""
    q = Q(pk__in=[])
    for which in sets_managed_by(profile):
        q |= _set_q(profile, which)
    return (CannedResponse.objects.filter(consortium_id=profile.library.consortium_id).filter(q)
            .order_by("title", "pk"))


def offered_to(profile: StaffProfile, chat: Chat | None) -> QuerySet[CannedResponse]:
    """The responses offered in a chat: the librarian's own, the consortium's, their library's and the
    patron's home library's."""
    libraries = {profile.library_id}
    if chat is not None and chat.home_library_id is not None:
        libraries.add(chat.home_library_id)
    return (CannedResponse.objects.filter(consortium_id=profile.library.consortium_id)
            .filter(Q(owner_id=profile.pk)
                    | Q(owner__isnull=True, library__isnull=True)
                    | Q(owner__isnull=True, library_id__in=libraries))
            .select_related("library").order_by("title", "pk"))


# --- language ----------------------------------------------------------------------------------------


def patron_language(chat: Chat | None) -> str:
    """The chat's language as one of LANGUAGES: 'es' for any Spanish tag (es, es-MX), else English."""
    tag = (chat.language if chat is not None else "").strip().lower()
    return "es" if tag.split("-")[0].split("_")[0] == "es" else "en"


def texts(response: CannedResponse) -> dict[str, str]:
    """The response's texts by language, only those it has."""
    found = {"en": response.body, "es": response.body_es}
    return {lang: text for lang, text in found.items() if text.strip()}


# --- placeholders ------------------------------------------------------------------------------------


def expand_placeholders(body: str, values: Mapping[str, str]) -> str:
    """Fill {name} placeholders; an unknown one stays as written, so a typo shows instead of vanishing."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def hours_today(library: Library, now: datetime) -> list[str] | None:
    """The library's staffed hours on its own local date at `now`, as HH:MM-HH:MM intervals (empty:
    closed all day); None when it has no queue (nothing to say, so the placeholder stays)."""
    queue = (Queue.objects.filter(library=library).prefetch_related("weekly", "closures", "special_hours")
             .first())
    if queue is None:
        return None
    schedule = schedule_for(queue)
    return [format_interval(start, end) for start, end in schedule.hours_on(now.astimezone(schedule.zone).date())]


def placeholder_values(profile: StaffProfile, chat: Chat | None, language: str, *,
                       hours: list[str] | None) -> dict[str, str]:
    """What each placeholder means in this chat, in `language` (the words a patron reads are translated);
    `hours` are the home library's today (hours_today), None when there is nothing to say."""
    consortium = profile.library.consortium
    home = chat.home_library if chat is not None else None
    with translation.override(language):
        no_name = pgettext("canned response: the patron gave no name", "there")
        closed = pgettext("canned response: the library has no hours today", "closed today")
    values = {
        # A chat with no home library is the consortium's own patron: name the service instead.
        "library": home.name if home is not None else consortium.name,
        "librarian": profile.display_name,
        "patron": (chat.patron_name if chat is not None and chat.patron_name else no_name),
        "my_library": profile.library.name,
        "consortium": consortium.name,
    }
    if hours is not None:
        values["hours_today"] = ", ".join(hours) if hours else closed
    return values


def canned_for(profile: StaffProfile, chat: Chat | None, now: datetime) -> list[dict[str, Any]]:
    """The responses offered in this chat, filled in: one entry per response and language, those in
    the chat's language first (then the other language), each group by title."""
    first = patron_language(chat)
    order = [first, *(lang for lang in LANGUAGES if lang != first)]
    rows = list(offered_to(profile, chat))
    home = chat.home_library if chat is not None else None
    hours = hours_today(home, now) if home is not None else None
    values = {lang: placeholder_values(profile, chat, lang, hours=hours) for lang in order}
    entries = []
    for lang in order:
        for row in rows:
            text = texts(row).get(lang)
            if text is None:
                continue
            entries.append({"id": row.pk, "key": f"{row.pk}-{lang}", "title": row.title, "language": lang,
                            "set": set_of(row), "library": row.library.slug if row.library else None,
                            "body": expand_placeholders(text, values[lang])})
    return entries
