"""Who reads a whisper (routing.services.mentoring): the one rule every path that shows a chat's
messages to staff asks, so that the copies cannot drift.

A whisper is an internal note a mentor (or a colleague named with `@`) addresses to the chat's
librarian. Its *audience* is that librarian and its author, nobody else: not other mentors or
colleagues watching the chat, not a second librarian who joined, not a coordinator reading the
transcript, not whoever claims a follow-up made from the chat. Patrons never read any internal note.

Live, a whisper's frame travels the chat's group with its audience beside it (`control`, never sent
to a client), and each staff socket outside the audience accounts for its seq without sending it, as
a patron's socket does for every internal note: its next message never looks like a gap.
"""

from __future__ import annotations

from django.db.models import Q

from routing.models import Message


def audience(message: Message) -> list[int] | None:
    """The staff who may read `message`: None for every staff reader (it is no whisper)."""
    if message.whisper_to_id is None:
        return None
    return [message.whisper_to_id, *([message.librarian_id] if message.librarian_id else [])]


def visible_q(reader_id: int | None) -> Q:
    """A filter on Message: what the librarian `reader_id` may read. None is a reader nobody names
    (a follow-up's transcript, read by whoever claims it): no whisper at all."""
    if reader_id is None:
        return Q(whisper_to__isnull=True)
    return Q(whisper_to__isnull=True) | Q(whisper_to_id=reader_id) | Q(librarian_id=reader_id)


def hidden_from(reader_id: int | None, message_audience: list[int] | None) -> bool:
    """Is a message with this audience kept from the staff reader `reader_id`?"""
    return message_audience is not None and reader_id not in message_audience
