"""`@name` in an internal note: the staff back-channel (docs/console.md, "Asking a colleague").

A colleague named by their username, in any library of the chat's consortium, is told in their
console (a `mentioned` frame, and again in every hello until they open the chat) with a link that
opens the chat read-only with the right to whisper (routing.access.may_watch reads the Mention).
A name of nobody in the consortium (a librarian of another consortium, a typo) mentions nobody:
nothing crosses between consortia. The note itself stays an internal note, never shown to a patron.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from consortium.queries import KeyedRows
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import Chat, Mention, Message

# A Django username (letters, digits and @.+-_) after an "@" that does not follow a word character
# (so "ask@library.org" names nobody); a final "." ends the sentence, not the name.
_NAME = re.compile(r"(?<![\w@.+-])@([\w.+-]{1,150})")
MAX_PER_NOTE = 10  # a note naming the whole consortium is not a broadcast
# How long an unopened mention is shown again when a console connects.
KEPT_IN_HELLO = timedelta(days=1)
EXCERPT = 200


def names_in(body: str) -> list[str]:
    """The usernames an internal note mentions, in order, once each (lower-cased)."""
    names: list[str] = []
    for match in _NAME.finditer(body):
        name = match.group(1).rstrip(".").lower()
        if name and name not in names:
            names.append(name)
    return names[:MAX_PER_NOTE]


def mentions_record(message: Message, author: StaffProfile, now: datetime) -> list[Mention]:
    """Tell each colleague the internal note names; the author and people outside the chat's
    consortium are never told."""
    names = names_in(message.body)
    if not message.internal or not names:
        return []
    consortium_id = Chat.objects.filter(pk=message.chat_id).values_list("consortium_id", flat=True).first()
    if consortium_id is None:
        return []
    query = Q()
    for name in names:
        query |= Q(user__username__iexact=name)
    named = (StaffProfile.objects.select_related("user", "library")
             .filter(query, library__consortium_id=consortium_id, is_active=True, user__is_active=True)
             .exclude(pk=author.pk))
    excerpt = message.body if len(message.body) <= EXCERPT else message.body[:EXCERPT - 1] + "…"
    made: list[Mention] = []
    with transaction.atomic():
        for colleague in named:
            mention = Mention.objects.create(chat_id=message.chat_id, message=message, librarian=colleague,
                                             by=author, created_at=now)
            made.append(mention)
            events.to_librarian(colleague.pk, frames.mentioned_frame(mention, excerpt))
    return made


def mentions_unseen(profile: StaffProfile, now: datetime) -> list[dict[str, object]]:
    """The mentions a connecting console shows again: not opened yet, of the last day."""
    since = now - KEPT_IN_HELLO
    return [frames.mentioned_frame(m, m.message.body[:EXCERPT] if m.message else "")
            for m in _UNSEEN(profile.pk) if m.created_at >= since]


# The 20 newest mentions a librarian has not opened (of which mentions_unseen keeps the last day's: the
# same as asking for the last day's 20 newest), compiled once per process (consortium.queries): every
# console's hello asks it, and a reconnect storm asks it for every console at once.
_UNSEEN = KeyedRows(lambda librarian_id: Mention.objects.select_related("by__user", "by__library", "message")
                    .filter(librarian_id=librarian_id, seen_at__isnull=True).order_by("-created_at")[:20],
                    key_field="librarian_id", sentinel=-7_000_007)


def mentions_seen(profile: StaffProfile, chat_id: str, now: datetime) -> None:
    """The colleague opened the chat: its mentions of them are not shown again."""
    Mention.objects.filter(librarian=profile, chat_id=chat_id, seen_at__isnull=True).update(seen_at=now)
