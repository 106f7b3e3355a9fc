"""Writes about libraries that more than one entry point needs (the admin today)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from libraries.models import Library, Queue


def library_create_local_queue(library: Library) -> Queue:
    """Give a library its local queue, or return the one it has.

    Every library has exactly one local queue (spec/ROUTING.md, "Words"), named by the library's
    slug so that route plans can list it. It starts with no hours, i.e. closed, so a new library
    gets no chats until someone sets its hours.
    """
    existing = Queue.objects.filter(library=library).first()
    if existing is not None:
        return existing
    if Queue.objects.filter(consortium_id=library.consortium_id, slug=library.slug).exists():
        raise ValidationError(f'the consortium already has a queue "{library.slug}"; '
                              "the library's local queue needs that slug")
    return Queue.objects.create(
        consortium_id=library.consortium_id, slug=library.slug, name=library.name, kind=Queue.Kind.LOCAL,
        library=library, timezone=library.timezone, always_open=False,
    )
