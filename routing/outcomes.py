"""What became of a chat: the one definition of a chat's outcome, wherever chats are counted.

Every chat is exactly one of these, decided by the first rule that holds, in this order:

1. **answered**: a librarian accepted it (`answered_by` is set), whatever happened after: the
   librarian was lost and the chat re-queued, it was transferred, the patron went away, it ended.
2. **open**: it is waiting now (queued) and no librarian has accepted it yet.
3. **unstaffed**: nobody could answer it when it arrived (every step of its plan was closed or
   had nobody present); the patron was offered the question form at once.
4. **self_served**: over, unanswered, ended by the patron with "This answered my question" on
   one of the knowledge base's answers shown while they waited (knowledge.services.chat_self_serve,
   `end_reason` "self_served"; issue 17).
5. **withdrawn**: over, unanswered, after the service gave up on it: it waited past the
   consortium's `max_wait` (when the patron is offered the question form beside the waiting chat)
   and then ended, or the patron replaced it with a follow-up from the question form.
6. **abandoned**: everything else that is over: the patron left (ended the chat, or closed the
   page for longer than the patron grace) before any librarian accepted and before `max_wait`.

The rules are a first-match list of database conditions, so they partition the chats by
construction: a chat that matches several (answered, then abandoned by its patron) counts once,
under the first. Every count here, and the pages, CSVs and metrics that show them, iterate over
`Outcome`, so a new outcome is one more rule and one more member.

`outcome_of()` is the annotation (a SQL CASE) for querysets; `count()` groups chats by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.utils.translation import gettext_noop

from routing.models import LIVE_STATES, Chat, ChatState


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    WITHDRAWN = "withdrawn"
    UNSTAFFED = "unstaffed"
    OPEN = "open"
    SELF_SERVED = "self_served"


ANSWERED = Q(answered_by__isnull=False)
# The chat's end_reason when the patron ended it with "This answered my question".
SELF_SERVED_REASON = "self_served"

# First match wins; a chat none of them matches is abandoned (the default of the CASE).
RULES: tuple[tuple[Outcome, Q], ...] = (
    (Outcome.ANSWERED, ANSWERED),
    (Outcome.OPEN, Q(state__in=LIVE_STATES)),
    (Outcome.UNSTAFFED, Q(state=ChatState.UNSTAFFED)),
    # Before withdrawn: a patron who waited past max_wait and then found the answer was served.
    (Outcome.SELF_SERVED, Q(end_reason=SELF_SERVED_REASON)),
    (Outcome.WITHDRAWN, Q(max_wait_passed=True) | Q(end_reason="question_form")),
)
DEFAULT = Outcome.ABANDONED

# English, as CSV and metrics write them; the pages show them through gettext (marked here for the catalogue).
LABELS = {
    Outcome.ANSWERED: gettext_noop("answered"),
    Outcome.ABANDONED: gettext_noop("abandoned"),
    Outcome.WITHDRAWN: gettext_noop("withdrawn"),
    Outcome.UNSTAFFED: gettext_noop("unstaffed"),
    Outcome.OPEN: gettext_noop("still open"),
    Outcome.SELF_SERVED: gettext_noop("self-served"),
}


def outcome_of() -> Case:
    """The outcome of each chat of a queryset, as an annotation: `chats.annotate(outcome_class=outcome_of())`."""
    return Case(*(When(condition, then=Value(outcome.value)) for outcome, condition in RULES),
                default=Value(DEFAULT.value), output_field=CharField())


@dataclass(frozen=True)
class Counts:
    """Chats per outcome. They add up to `total` by construction: there is no other field."""

    answered: int = 0
    abandoned: int = 0
    withdrawn: int = 0
    unstaffed: int = 0
    open: int = 0
    self_served: int = 0

    @property
    def total(self) -> int:
        return sum(n for _, n in self.items())

    @property
    def unanswered(self) -> int:
        return self.total - self.answered

    def items(self) -> Iterator[tuple[Outcome, int]]:
        for f in fields(self):
            yield Outcome(f.name), getattr(self, f.name)

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @classmethod
    def of(cls, pairs: dict[str, int]) -> Counts:
        """From {outcome value: chats}; an unknown outcome is a programming error, not a zero."""
        unknown = set(pairs) - {o.value for o in Outcome}
        if unknown:
            raise ValueError(f"not outcomes: {sorted(unknown)}")
        return cls(**pairs)


assert [f.name for f in fields(Counts)] == [o.value for o in Outcome], "Counts has one field per Outcome"


def count(chats: QuerySet[Chat], *, by: str | None = None) -> dict[Any, Counts]:
    """Chats per outcome: {None: counts} for all of them, or per value of the field `by` (one grouped query)."""
    keys = [by] if by else []
    rows = (chats.annotate(outcome_class=outcome_of()).values(*keys, "outcome_class").annotate(n=Count("pk"))
            .order_by().values_list(*keys, "outcome_class", "n"))
    grouped: dict[Any, dict[str, int]] = {}
    for row in rows:
        key = row[0] if by else None
        grouped.setdefault(key, {})[row[-2]] = row[-1]
    if by is None and not grouped:
        return {None: Counts()}
    return {key: Counts.of(pairs) for key, pairs in grouped.items()}
