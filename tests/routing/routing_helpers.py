"""Helpers for the database-level routing tests: a fixed clock, a small consortium, and a recorder of
the frames the services publish (routing.events._send is the boundary to the channel layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from consortium.models import Consortium
from libraries.models import Library, Queue, StaffProfile
from routing.models import Chat, Offer, TraceEvent
from routing.services import chats, offers, presence, sweeps
from routing.staff.selectors import chat_info
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

# A Monday, 10:00 in New York (EST, well away from any clock change). Every test counts from here.
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Sent:
    """Every (group, event) the services published, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, group: str, event: dict[str, Any]) -> None:
        self.events.append((group, event))

    def frames(self, group: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [e["frame"] for g, e in self.events if g == group and (kind is None or e["frame"]["type"] == kind)]

    def to_librarian(self, profile: StaffProfile, kind: str | None = None) -> list[dict[str, Any]]:
        return self.frames(f"librarian.{profile.pk}", kind)

    def to_chat(self, chat: Chat, kind: str | None = None) -> list[dict[str, Any]]:
        return self.frames(f"chat.{chat.pk}", kind)

    def clear(self) -> None:
        self.events.clear()


@dataclass
class World:
    consortium: Consortium
    statewide: Queue
    home: Library  # partners: [partner]
    partner: Library
    hub: Library  # its staff serve the statewide queue (the consortium step)


def world(*, home_open: bool = True, home_mode: str = "broadcast", **consortium_fields: Any) -> World:
    consortium = make_consortium("vr", **consortium_fields)
    statewide = make_shared_queue(consortium, "statewide")
    partner = make_library(consortium, "partner")
    hub = make_library(consortium, "hub")
    home = make_library(consortium, "home", partners=[partner], zip_codes=["12345"], always_open=home_open,
                        mode=home_mode)
    return World(consortium=consortium, statewide=statewide, home=home, partner=partner, hub=hub)


def staff(library: Library, username: str, **fields: Any) -> StaffProfile:
    return make_staff(library, username, **fields)


def go_online(profile: StaffProfile, now: datetime, *, process: str = "p1", channel: str | None = None) -> str:
    """Connect a librarian's console and say 'available': the librarian is then present."""
    channel = channel or f"staff-{profile.user.username}"
    sweeps.process_heartbeat(process, now)
    presence.staff_connected(profile, channel, process, now)
    presence.presence_set(profile, "available", now)
    return channel


def start(consortium: Consortium, now: datetime, **fields: Any) -> Chat:
    fields.setdefault("question", "Do you have museum passes?")
    chat, _token = chats.chat_start(consortium=consortium, now=now, **fields)
    return Chat.objects.get(pk=chat.pk)


def patron_joins(chat: Chat, now: datetime, *, process: str = "p1", channel: str | None = None) -> str:
    channel = channel or f"patron-{chat.pk}"
    sweeps.process_heartbeat(process, now)
    presence.patron_connected(chat, channel, process, now)
    return channel


def held_by_lena(w: World, sent: Sent | None = None) -> tuple[StaffProfile, Chat]:
    """Librarian lena of the home library, online, holding a chat started at home at T0: the patron
    joined at 1 s, she accepted at 2 s. The frames sent so far are cleared when `sent` is given."""
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1))
    offers.chat_accept(lena, chat.pk, at(2))
    if sent is not None:
        sent.clear()
    return lena, fresh(chat)


def fresh(chat: Chat) -> Chat:
    return Chat.objects.get(pk=chat.pk)


def open_offers(chat: Chat) -> set[int]:
    return set(Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True))


def trace(chat: Chat, kind: str | None = None) -> list[TraceEvent]:
    rows = TraceEvent.objects.filter(chat=chat).order_by("at", "id")
    return list(rows.filter(kind=kind) if kind else rows)


def kinds(chat: Chat) -> list[str]:
    return [t.kind for t in trace(chat)]


def info(profile: StaffProfile, chat_id: str, now: datetime) -> dict[str, Any]:
    """What the console reads beside a chat (routing.staff.selectors.chat_info), which must be there."""
    found = chat_info(profile, chat_id, now)
    assert found is not None
    return found
