"""Follow-up deadlines: when a follow-up is due, and what its sweep does next.

Plain Python with no I/O, like routing.router, so that "why is this follow-up on the partners'
list?" is answered by reading this module (and tested with an injected clock). The sweep
(routing.services.followup_deadlines) loads a ticket, calls `next_move`, applies it and stores
`next_check`.

A follow-up moves the way a chat escalates (docs/routing.md), in hours rather than seconds:

1. `library`: the home library's follow-up list, until it is due; its list is reminded
   `reminder_hours` before.
2. `partners`: past due, the home library's partners see it too, for `partner_hours`.
3. `consortium`: then the consortium's list (coordinators) as well. It stays there.

Moving on never takes a follow-up from the home library: each list is added to the earlier ones.
A library without partners goes from its own list to the consortium's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LIBRARY = "library"
PARTNERS = "partners"
CONSORTIUM = "consortium"
STAGES = (LIBRARY, PARTNERS, CONSORTIUM)

# Whose rule set the due time.
FROM_CONSORTIUM = "consortium"
FROM_LIBRARY = "library"
FROM_PATRON = "patron"


@dataclass(frozen=True)
class Due:
    at: datetime
    source: str  # FROM_CONSORTIUM | FROM_LIBRARY | FROM_PATRON


def due_time(created_at: datetime, *, consortium_hours: int, library_hours: int | None,
             patron_deadline: datetime | None) -> Due:
    """The patron's own deadline wins (they know when the answer stops being of use), then the
    library's override, then the consortium's default."""
    if patron_deadline is not None:
        return Due(patron_deadline, FROM_PATRON)
    if library_hours:
        return Due(created_at + timedelta(hours=library_hours), FROM_LIBRARY)
    return Due(created_at + timedelta(hours=consortium_hours), FROM_CONSORTIUM)


@dataclass(frozen=True)
class Followup:
    """A follow-up as the sweep sees it."""

    due_at: datetime
    stage: str
    reminded: bool
    has_partners: bool
    open: bool  # new or in progress: answered and closed ones are left alone


@dataclass(frozen=True)
class Rules:
    reminder_hours: int
    partner_hours: int


@dataclass(frozen=True)
class Move:
    kind: str  # "remind" | "escalate"
    stage: str  # the stage after the move
    reason: str


def remind_at(followup: Followup, rules: Rules) -> datetime:
    return followup.due_at - timedelta(hours=rules.reminder_hours)


def consortium_at(followup: Followup, rules: Rules) -> datetime:
    """When a follow-up on the partners' list goes on to the consortium's."""
    return followup.due_at + timedelta(hours=rules.partner_hours)


def next_move(followup: Followup, now: datetime, rules: Rules) -> Move | None:
    """What the sweep does at `now`: at most one move (the sweep asks again until nothing is left)."""
    if not followup.open:
        return None
    if followup.stage == LIBRARY:
        if now >= followup.due_at:
            if followup.has_partners:
                return Move("escalate", PARTNERS, "overdue")
            return Move("escalate", CONSORTIUM, "overdue (no partners)")
        if not followup.reminded and now >= remind_at(followup, rules):
            return Move("remind", LIBRARY, "due soon")
        return None
    if followup.stage == PARTNERS and now >= consortium_at(followup, rules):
        return Move("escalate", CONSORTIUM, "overdue with the partners")
    return None


def next_check(followup: Followup, rules: Rules) -> datetime | None:
    """The next instant `next_move` could answer differently without anyone acting (None: never)."""
    if not followup.open:
        return None
    if followup.stage == LIBRARY:
        return followup.due_at if followup.reminded else min(remind_at(followup, rules), followup.due_at)
    if followup.stage == PARTNERS:
        return consortium_at(followup, rules)
    return None


def overdue(due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and now >= due_at
