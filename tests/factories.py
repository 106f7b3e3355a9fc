"""Small factories for test data: a consortium, its libraries with local queues, shared queues, staff."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth.models import User

from consortium.models import Consortium
from libraries.models import Library, LibraryPartner, Queue, StaffProfile, WeeklyInterval

_seq = itertools.count(1)
PASSWORD = "Test-password-1"


def make_consortium(slug: str | None = None, **fields: Any) -> Consortium:
    slug = slug or f"cons-{next(_seq)}"
    fields.setdefault("name", slug.title())
    fields.setdefault("timezone", "America/New_York")
    return Consortium.objects.create(slug=slug, **fields)


def make_shared_queue(consortium: Consortium, slug: str = "statewide", *, always_open: bool = True,
                      **fields: Any) -> Queue:
    fields.setdefault("name", slug.title())
    fields.setdefault("timezone", consortium.timezone)
    fields.setdefault("position", consortium.queues.filter(kind=Queue.Kind.SHARED).count())
    return Queue.objects.create(consortium=consortium, slug=slug, kind=Queue.Kind.SHARED,
                                always_open=always_open, **fields)


def make_library(consortium: Consortium, slug: str | None = None, *, always_open: bool = True,
                 partners: list[Library] | None = None, mode: str = "broadcast", **fields: Any) -> Library:
    slug = slug or f"lib-{next(_seq)}"
    fields.setdefault("name", f"{slug.title()} Library")
    fields.setdefault("timezone", consortium.timezone)
    library = Library.objects.create(consortium=consortium, slug=slug, **fields)
    Queue.objects.create(consortium=consortium, slug=slug, name=library.name, kind=Queue.Kind.LOCAL,
                         library=library, timezone=library.timezone, always_open=always_open, mode=mode)
    for position, partner in enumerate(partners or []):
        LibraryPartner.objects.create(library=library, partner=partner, position=position)
    return library


def set_weekly_hours(queue: Queue, hours: dict[int, list[tuple[int, int]]]) -> None:
    queue.always_open = False
    queue.save(update_fields=["always_open"])
    queue.weekly.all().delete()
    for weekday, intervals in hours.items():
        for start, end in intervals:
            WeeklyInterval.objects.create(queue=queue, weekday=weekday, start_minute=start, end_minute=end)


def make_local_queue(consortium: Consortium | None = None, slug: str = "tampa", *,
                     hours: dict[int, list[tuple[int, int]]] | None = None, **library_fields: Any) -> Queue:
    """The local queue of a new library (in a new consortium unless one is given), open `hours` a week
    (weekday 0 = Monday -> [(start_minute, end_minute)]), closed without them."""
    library = make_library(consortium or make_consortium(), slug, always_open=False, **library_fields)
    queue = Queue.objects.get(library=library)
    if hours is not None:
        set_weekly_hours(queue, hours)
    return queue


def make_staff(library: Library, username: str | None = None, *, role: str = "librarian",
               queues: list[Queue] | None = None, capacity: int | None = None,
               languages: list[str] | None = None, password: str = PASSWORD) -> StaffProfile:
    username = username or f"staff{next(_seq)}"
    user = User.objects.create_user(username=username, password=password, email=f"{username}@example.org",
                                    first_name=username.title())
    profile = StaffProfile.objects.create(user=user, library=library, role=role, capacity=capacity,
                                          languages=languages or ["en"])
    if queues:
        profile.queues.set(queues)
    return profile
