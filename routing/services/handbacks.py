"""The way home (routing.handback decides): telling holders away from home that the patron's home
library can take the chat back, and the one-click hand-back, a transfer with a note.

Each offer is written to the chat's trace once per hold ("handback_offered"), a hand-back taken as
"handed_back" by the transfer itself: the statistics count both (coordination.statistics).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from libraries.models import Library, StaffProfile
from routing import events, handback
from routing.frames import Frame, library_ref
from routing.models import Chat, ChatState, TraceEvent
from routing.selectors import situation_for
from routing.services.common import ServiceError, chat_lock, trace
from routing.services.transfers import chat_transfer


def handback_frame(chat_id: str, home: Library, *, available: bool) -> Frame:
    return {"type": "handback", "chat": chat_id, "home_library": library_ref(home), "available": available}


def _held(chat: Chat) -> handback.HeldChat:
    assert chat.librarian is not None
    return handback.HeldChat(id=chat.pk, holder=chat.librarian_id or 0, holder_library=chat.librarian.library.slug,
                             home_library=chat.home_library.slug if chat.home_library else None)


def handbacks_announce(consortium: Consortium, library: Library, now: datetime) -> None:
    """Tell every holder of a chat of `library`'s patrons, held away from it, whether the library can
    take it back now: after a presence change of one of its librarians, or a chat of theirs ending."""
    chats = list(Chat.objects.filter(consortium=consortium, home_library=library, state=ChatState.ACTIVE,
                                     librarian__isnull=False).exclude(librarian__library=library)
                 .select_related("librarian__library", "home_library"))
    if not chats:
        return
    situation = situation_for(consortium, now, {library.slug})
    for chat in chats:
        available = handback.home_can_take(_held(chat), situation)
        if available and not TraceEvent.objects.filter(chat=chat, kind="handback_offered",
                                                       at__gte=chat.accepted_at or chat.arrived_at).exists():
            with transaction.atomic():
                trace(chat, "handback_offered", now, librarian=chat.librarian_id, library=library.slug)
        events.to_librarian(chat.librarian_id or 0, handback_frame(chat.pk, library, available=available))


def handback_state(chat: Chat, now: datetime) -> bool:
    """Whether the holder of this active chat may hand it back now (the console asks after a reload)."""
    if chat.state != ChatState.ACTIVE or chat.librarian is None or chat.home_library is None:
        return False
    held = _held(chat)
    if not handback.away_from_home(held):
        return False
    return handback.home_can_take(held, situation_for(chat.consortium, now, {chat.home_library.slug}))


def chat_hand_back(librarian: StaffProfile, chat_id: str, now: datetime, *, note: str = "") -> Chat:
    """Transfer the chat the librarian holds to its home library's queue, with a note: refused whole
    (ServiceError, the chat stays with them) when it is not away from home or home cannot take it."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
            raise ServiceError("not_found", gettext_lazy("you do not hold that chat"))
        if chat.home_library is None or not handback.away_from_home(_held(chat)):
            raise ServiceError("same_queue", gettext_lazy("this chat is already with its home library"))
        home = chat.home_library
    note = note.strip() or _("Handed back to %(library)s by %(librarian)s (%(from)s).") % {
        "library": home.name, "librarian": librarian.display_name, "from": librarian.library.name}
    return chat_transfer(librarian, chat_id, now, queue=home.slug, note=note, handback=True)
