"""The monthly sample: which answered chats of each library are reviewed, and by whom.

For each library of a consortium and a month (the chats that *arrived* in it, in the consortium's
time zone), a random sample of the chats the library answered (`routing.outcomes.ANSWERED`: its
librarian was the first to accept; finished, and not deleted at the patron's request) is drawn:
the consortium's percentage (rounded up, so a library with any answered chat gets at least one
review while the percentage is above 0) or count (at most all of them). Each sampled chat goes to a
reviewer (`ReviewRoles.reviewer`) who is not on the staff of the answering library, nor of the
patron's home library, and took no part in the chat. Among those, the one with the fewest reviews
of that month so far (ties broken at random): the work is spread evenly across reviewers and
libraries.

A library is sampled once per month: its `SampleRun` row is written in the same transaction as its
reviews, and a unique constraint makes a second run (the daily beat task, the management command
run again, or two at once) skip it. A library with no reviewer to give its chats to is not
recorded, so a later run, once coordinators have named reviewers, samples it. A review is due at
the end of the month after the sampled one. Each reviewer given reviews by a run is mailed once,
after commit (review.tasks.mail_reviews_assigned).

`assign` is the decision, plain Python, tested exhaustively on small worlds; `month_sample` applies
it to the database.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet

from consortium.models import Consortium
from libraries.models import Library
from review.models import Review, ReviewSettings, SampleRun
from review.roles import reviewers_of
from review.rubric import rubric_ensure, settings_of
from routing.models import LIVE_STATES, Chat, Offer
from routing.outcomes import ANSWERED


@dataclass(frozen=True)
class Candidate:
    """A chat that may be sampled, with the staff who must not review it."""

    chat_id: str
    excluded_libraries: frozenset[int]
    excluded_staff: frozenset[int]


@dataclass(frozen=True)
class Reviewer:
    staff_id: int
    library_id: int


@dataclass
class Report:
    """What one run did: per library slug, the chats sampled; and libraries left for a later run."""

    month: date
    sampled: dict[str, int] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    no_reviewer: list[str] = field(default_factory=list)
    reviewers: set[int] = field(default_factory=set)  # staff ids given reviews by this run

    @property
    def total(self) -> int:
        return sum(self.sampled.values())


def sample_size(answered: int, kind: str, value: int) -> int:
    if answered <= 0 or value <= 0:
        return 0
    if kind == ReviewSettings.SampleKind.PERCENT:
        return min(answered, math.ceil(answered * min(value, 100) / 100))
    return min(answered, value)


def assign(candidates: list[Candidate], reviewers: list[Reviewer], size: int, load: Mapping[int, int],
           rng: random.Random) -> dict[str, int]:
    """Up to `size` of `candidates` (at random), each to an eligible reviewer: chat id -> staff id.

    `load` is each reviewer's reviews of the month so far; the least loaded eligible reviewer gets
    the next chat. A candidate no reviewer may take is passed over for another.
    """
    counts = {r.staff_id: load.get(r.staff_id, 0) for r in reviewers}
    chosen: dict[str, int] = {}
    for candidate in rng.sample(candidates, len(candidates)):
        if len(chosen) >= size:
            break
        eligible = [r.staff_id for r in reviewers
                    if r.library_id not in candidate.excluded_libraries and r.staff_id not in candidate.excluded_staff]
        if not eligible:
            continue
        fewest = min(counts[s] for s in eligible)
        staff_id = rng.choice([s for s in eligible if counts[s] == fewest])
        chosen[candidate.chat_id] = staff_id
        counts[staff_id] += 1
    return chosen


# --- the month --------------------------------------------------------------------------------------


def parse_month(text: str) -> date:
    """"2026-11" -> 1 November 2026; ValueError for anything else."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not found or not 1 <= int(found[2]) <= 12:
        raise ValueError(f'"{text}" is not a month like 2026-11')
    return date(int(found[1]), int(found[2]), 1)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(now: datetime, zone: ZoneInfo) -> date:
    this = month_start(now.astimezone(zone).date())
    return date(this.year - (this.month == 1), (this.month - 2) % 12 + 1, 1)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def due_at(month: date, zone: ZoneInfo) -> datetime:
    """The end of the month after `month` (its next month's last instant), in the consortium's zone."""
    return local_midnight(next_month(next_month(month)), zone)


def answered_chats(library: Library, month: date, zone: ZoneInfo) -> QuerySet[Chat]:
    return (Chat.objects.filter(ANSWERED, consortium_id=library.consortium_id, answered_by__library=library,
                                arrived_at__gte=local_midnight(month, zone),
                                arrived_at__lt=local_midnight(next_month(month), zone), scrubbed=False)
            .exclude(state__in=LIVE_STATES).order_by("pk"))


def _candidates(chats: list[Chat]) -> list[Candidate]:
    accepted: dict[str, set[int]] = {}
    for chat_id, staff_id in Offer.objects.filter(chat__in=chats, status=Offer.Status.ACCEPTED).values_list(
            "chat_id", "librarian_id"):
        accepted.setdefault(chat_id, set()).add(staff_id)
    found = []
    for chat in chats:
        assert chat.answered_by is not None  # ANSWERED
        staff = {chat.answered_by_id, chat.librarian_id, *accepted.get(chat.pk, ())}
        libraries = {chat.answered_by.library_id, chat.home_library_id}
        found.append(Candidate(chat.pk, frozenset(x for x in libraries if x is not None),
                               frozenset(x for x in staff if x is not None)))
    return found


def month_sample(consortium: Consortium, month: date, now: datetime, *, rng: random.Random | None = None) -> Report:
    """Draw every library's sample of `month` not drawn yet, and assign it (see the module doc)."""
    rng = rng or random.SystemRandom()
    month = month_start(month)
    zone = ZoneInfo(consortium.timezone)
    rubric_ensure(consortium)
    wanted = settings_of(consortium)
    report = Report(month)
    for library in Library.objects.filter(consortium=consortium).order_by("pk"):
        if SampleRun.objects.filter(library=library, month=month).exists():
            report.already.append(library.slug)
            continue
        reviewers = [Reviewer(p.pk, p.library_id) for p in reviewers_of(consortium)]
        chats = list(answered_chats(library, month, zone).select_related("answered_by"))
        size = sample_size(len(chats), wanted.sample_kind, wanted.sample_value)
        load = dict(Review.objects.filter(consortium=consortium, month=month).values("reviewer_id")
                    .annotate(n=Count("pk")).values_list("reviewer_id", "n"))
        chosen = assign(_candidates(chats), reviewers, size, load, rng)
        if size and not chosen:
            report.no_reviewer.append(library.slug)  # left for a run after reviewers are named
            continue
        by_id = {c.pk: c for c in chats}
        try:
            with transaction.atomic():
                SampleRun.objects.create(consortium=consortium, library=library, month=month, ran_at=now,
                                         answered=len(chats), sampled=len(chosen))
                Review.objects.bulk_create(
                    Review(consortium=consortium, chat=by_id[chat_id], library=library,
                           librarian=by_id[chat_id].answered_by, reviewer_id=staff_id, month=month, assigned_at=now,
                           due_at=due_at(month, zone))
                    for chat_id, staff_id in sorted(chosen.items()))
        except IntegrityError:  # another run drew this library's sample first
            report.already.append(library.slug)
            continue
        report.sampled[library.slug] = len(chosen)
        report.reviewers.update(chosen.values())
    # After commit (at once here, outside a transaction): each reviewer hears once per run.
    transaction.on_commit(partial(_mail_assigned, sorted(report.reviewers), month))
    return report


def _mail_assigned(staff_ids: list[int], month: date) -> None:
    from review.tasks import mail_reviews_assigned  # tasks import this module: keep the import graph one-way

    for staff_id in staff_ids:
        mail_reviews_assigned.delay(staff_id, month.isoformat())


def samples_due(now: datetime, month: date | None = None) -> dict[str, Report]:
    """Every active consortium's sample of `month`, by default its previous month (what the daily beat
    task runs)."""
    return {c.slug: month_sample(c, month or previous_month(now, ZoneInfo(c.timezone)), now)
            for c in Consortium.objects.filter(is_active=True).order_by("pk")}


def review_reassign(*, consortium: Consortium, review_id: int, now: datetime,
                    rng: random.Random | None = None) -> Review:
    """Give an open review to another reviewer (a coordinator's action when the first is away or has
    left): by the same rules and spread as the sample, never to its present reviewer. Raises
    ValueError when the review is not open or nobody else may take it."""
    rng = rng or random.SystemRandom()
    with transaction.atomic():
        review = (Review.objects.select_for_update(of=("self",)).select_related("chat__answered_by")
                  .filter(pk=review_id, consortium=consortium).first())
        if review is None:
            raise LookupError("no such review")
        if review.submitted:
            raise ValueError("this review has been submitted")
        candidate = _candidates([review.chat])[0]
        candidate = Candidate(candidate.chat_id, candidate.excluded_libraries,
                              candidate.excluded_staff | {review.reviewer_id})
        reviewers = [Reviewer(p.pk, p.library_id) for p in reviewers_of(consortium)]
        load = dict(Review.objects.filter(consortium=consortium, month=review.month).values("reviewer_id")
                    .annotate(n=Count("pk")).values_list("reviewer_id", "n"))
        chosen = assign([candidate], reviewers, 1, load, rng)
        if not chosen:
            raise ValueError("no other reviewer may take it: flag another reviewer of another library")
        review.reviewer_id = chosen[review.chat_id]
        review.assigned_at = now
        review.save(update_fields=["reviewer", "assigned_at"])
        transaction.on_commit(partial(_mail_assigned, [review.reviewer_id], review.month))
    return review
