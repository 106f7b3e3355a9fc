"""A small consortium for the review tests: libraries, reviewers, liaisons and answered chats of a month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from consortium.models import Consortium
from libraries.models import Library, StaffProfile
from review.models import ReviewRoles, ReviewSettings
from routing.models import Chat, Message, Offer
from tests.factories import make_consortium, make_library, make_staff

ZONE = ZoneInfo("America/New_York")
# The sampled month is November 2026; "now" is the 1st of December, when the beat task draws it.
NOVEMBER = datetime(2026, 11, 1, tzinfo=ZONE)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ZONE)


def flag(profile: StaffProfile, *, reviewer: bool = False, liaison: bool = False) -> StaffProfile:
    ReviewRoles.objects.update_or_create(staff=profile, defaults={"reviewer": reviewer, "liaison": liaison})
    return profile


def set_sample(consortium: Consortium, kind: str, value: int, *, share: bool = False) -> None:
    ReviewSettings.objects.update_or_create(consortium=consortium, defaults={
        "sample_kind": kind, "sample_value": value, "share_with_librarian": share})


def answered(by: StaffProfile, arrived: datetime, *, home: Library | None = None, state: str = "ended",
             patron_name: str = "", patron_email: str = "", question: str = "Where are the 1850 census records?",
             also: list[StaffProfile] | None = None) -> Chat:
    """A chat `by` accepted first (routing.outcomes' answered), ended; `also` accepted it later (a transfer)."""
    chat = Chat.objects.create(
        consortium=by.library.consortium, home_library=home or by.library, question=question, token_hash="x",
        patron_name=patron_name, patron_email=patron_email, patron_ip="203.0.113.9",
        created_at=arrived, arrived_at=arrived, last_activity_at=arrived, state=state, answered_by=by,
        librarian=(also or [by])[-1], first_accepted_at=arrived + timedelta(seconds=20),
        accepted_at=arrived + timedelta(seconds=20), answered_step="local",
        ended_at=arrived + timedelta(minutes=10) if state == "ended" else None)
    for serial, who in enumerate([by, *(also or [])]):
        Offer.objects.create(chat=chat, librarian=who, step_serial=serial, step="local", queue="q", mode="broadcast",
                             created_at=arrived, status=Offer.Status.ACCEPTED)
    return chat


def unanswered(consortium: Consortium, home: Library, arrived: datetime, state: str = "abandoned") -> Chat:
    return Chat.objects.create(consortium=consortium, home_library=home, question="hello?", token_hash="x",
                               created_at=arrived, arrived_at=arrived, last_activity_at=arrived, state=state)


def say(chat: Chat, sender: str, body: str, *, internal: bool = False, name: str = "") -> Message:
    seq = chat.last_seq + 1
    chat.last_seq = seq
    chat.save(update_fields=["last_seq"])
    return Message.objects.create(chat=chat, seq=seq, sender=sender, body=body, internal=internal, name=name,
                                  at=chat.arrived_at + timedelta(seconds=seq))


@dataclass
class World:
    consortium: Consortium
    libraries: list[Library]
    librarians: dict[str, StaffProfile] = field(default_factory=dict)  # one answering librarian per library
    reviewers: dict[str, StaffProfile] = field(default_factory=dict)  # one reviewer per library
    liaisons: dict[str, StaffProfile] = field(default_factory=dict)  # one liaison per library


def world(slug: str = "rv", libraries: tuple[str, ...] = ("a", "b", "c")) -> World:
    consortium = make_consortium(slug)
    w = World(consortium, [make_library(consortium, f"{slug}-{name}", name=f"{name.upper()} Library")
                           for name in libraries])
    for library, name in zip(w.libraries, libraries, strict=True):
        w.librarians[name] = make_staff(library, f"{slug}-{name}-lib")
        w.reviewers[name] = flag(make_staff(library, f"{slug}-{name}-rev"), reviewer=True)
        w.liaisons[name] = flag(make_staff(library, f"{slug}-{name}-liaison"), liaison=True)
    return w
