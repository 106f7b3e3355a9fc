"""The end of a librarian's shift: warned, then set away (libraries/duty.py says when duty ends)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from libraries import duty
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import LibrarianPresence
from routing.services.common import ServiceError, presence_lock
from routing.services.route import librarian_presence_changed

_SHIFT_FIELDS = ["shift_end", "shift_warned", "shift_due", "stay_until"]


def shift_clear(presence: LibrarianPresence) -> None:
    presence.shift_end = None
    presence.shift_warned = False
    presence.shift_due = None
    presence.stay_until = None


def shift_frame_for(presence: LibrarianPresence, consortium: Consortium) -> dict[str, Any]:
    return frames.shift_frame(presence.shift_end, warned=presence.shift_warned,
                              extend_by=consortium.shift_extension)


def shift_schedule(presence: LibrarianPresence, librarian: StaffProfile, now: datetime, *,
                    starting: bool) -> str:
    """Set an available librarian's shift end, warning and due instant at `now` (not saved).

    Returns "away" when the end has come, "changed" when the console must be told, else "".
    """
    consortium = librarian.consortium
    before = (presence.shift_end, presence.shift_warned)
    schedule = duty.schedule_between(librarian, now, now + duty.HORIZON)
    spans = schedule.spans
    if starting:
        shift_clear(presence)
        if not schedule.known:
            return ""  # nothing is known of when they work: only the console's idle away applies
        if not duty.stretch_at(spans, now).on:
            # Available outside their duty (early, late, a day off): that is staying on, for a while.
            presence.stay_until = now + timedelta(seconds=consortium.shift_extension)
    if presence.stay_until is not None and presence.stay_until > now:
        spans.append((now, presence.stay_until))
    found = duty.stretch_at(spans, now)
    if found.on and found.ends_at is None:
        shift_clear(presence)  # a stretch with no end in sight is not a shift
        return "changed" if before != (None, False) else ""
    end = presence.shift_end
    if found.ends_at is not None and (end is None or found.ends_at > end):
        end = found.ends_at
    if end is None or end <= now:
        return "away"
    presence.shift_end = end
    presence.shift_warned = end - timedelta(seconds=consortium.shift_warning) <= now
    presence.shift_due = end if presence.shift_warned else end - timedelta(seconds=consortium.shift_warning)
    return "changed" if (presence.shift_end, presence.shift_warned) != before else ""


def shift_state(librarian: StaffProfile) -> dict[str, Any]:
    """The shift or shift_ending frame in force for this librarian (what hello carries)."""
    return shift_frame_for(presence_lock(librarian, lock=False), librarian.consortium)


def shift_stay_on(librarian: StaffProfile, now: datetime, *, seconds: int | None = None) -> dict[str, Any]:
    """"I'm staying on": available until at least `seconds` (default shift_extension) from now."""
    consortium = librarian.consortium
    with transaction.atomic():
        presence = presence_lock(librarian)
        if presence.status != LibrarianPresence.Status.AVAILABLE:
            raise ServiceError("invalid", gettext_lazy("you are away: there is no end of shift to stay on past"))
        if presence.shift_end is None:
            raise ServiceError("invalid", gettext_lazy("no end of shift is scheduled for you: nothing to stay on past"))
        until = now + timedelta(seconds=seconds or consortium.shift_extension)
        presence.stay_until = max(until, presence.stay_until or until)
        shift_schedule(presence, librarian, now, starting=False)
        presence.save(update_fields=_SHIFT_FIELDS)
        frame = shift_frame_for(presence, consortium)
        events.to_librarian(librarian.pk, frame)  # every console of theirs hears it
    return frame


def librarian_shift_due(librarian_id: int, now: datetime) -> bool:
    """The timer: warn an available librarian that their shift is ending, or set them away at its end."""
    away = None
    with transaction.atomic():
        presence = (LibrarianPresence.objects.select_for_update(skip_locked=True)
                    .filter(pk=librarian_id, shift_due__lte=now).first())
        if presence is None:
            return False  # another timer holds it, or it was handled meanwhile
        if presence.status != LibrarianPresence.Status.AVAILABLE or not presence.online:
            shift_clear(presence)
            presence.save(update_fields=_SHIFT_FIELDS)
            return True
        librarian = StaffProfile.objects.select_related("library__consortium", "user").get(pk=librarian_id)
        outcome = shift_schedule(presence, librarian, now, starting=False)
        if outcome == "away":
            ended = presence.shift_end or now
            presence.status = LibrarianPresence.Status.AWAY
            presence.away_reason = "shift_end"
            presence.changed_at = now
            shift_clear(presence)
            presence.save()
            # Chats they hold stay with them: going away never drops a chat.
            events.to_librarian(librarian_id, frames.presence_frame("away", reason="shift_end", ends_at=ended))
            away = librarian
        else:
            presence.save(update_fields=_SHIFT_FIELDS)
            if outcome == "changed":
                events.to_librarian(librarian_id, shift_frame_for(presence, librarian.consortium))
    if away is not None:
        librarian_presence_changed(away, LibrarianPresence.Status.AWAY, now)
    return True
