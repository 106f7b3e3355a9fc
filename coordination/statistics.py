"""Statistics for any period, for the consortium and for each library, computed by the database.

Every chat counts for two libraries: its *home library* (whose patron asked) and the *answering
library*, the library of the librarian who actually answered it first (`Chat.answered_by`). A chat
the Tampa patron asked and an Orlando librarian answered is one of Tampa's patrons' chats and one
Orlando answered *for another library*. From that:

- the matrix of who answered whom: home library x answering library, chat counts;
- for one library: its patrons' chats, answered by its own staff, by each partner, by the rest of
  the consortium, or not answered (abandoned, withdrawn, unstaffed, or still open);
- the *answering balance*: chats answered for others minus own patrons' chats answered by others
  (positive: the library gives more than it gets);
- waits from arrival to the first accept, p50 and p90 (PERCENTILE_CONT: linear between ranks),
  over answered chats; the chats by outcome (routing/outcomes.py: each chat is exactly one);
  arrivals by hour of the week in the consortium's time zone; survey ratings; READ scale; subjects.

A period is a range of local dates in the consortium's time zone, both ends included; a chat
belongs to it by its original arrival. Functions take a queryset of chats (`chats_in`), so the
page and the CSV export share one definition of each figure; each is a handful of aggregate
queries whatever the number of chats.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils.timezone import now as timezone_now

from consortium.models import Consortium
from libraries.models import Library
from routing.models import Chat, Survey
from routing.outcomes import ANSWERED, Counts, outcome_of
from routing.outcomes import count as count_outcomes

if TYPE_CHECKING:
    from coordination.followthrough import FollowupFigures, Handbacks

WAIT = ExpressionWrapper(F("first_accepted_at") - F("arrived_at"), output_field=DurationField())
READ_LEVELS = (1, 2, 3, 4, 5, 6)
RATINGS = (1, 2, 3, 4, 5)


# --- the period ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local dates `first`..`last`, both included, in `zone`."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=self.zone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def period_ending(consortium: Consortium, today: date, days: int = 30) -> Period:
    return Period(today - timedelta(days=days - 1), today, ZoneInfo(consortium.timezone))


def chats_in(consortium: Consortium, period: Period) -> QuerySet[Chat]:
    return Chat.objects.filter(consortium=consortium, arrived_at__gte=period.start, arrived_at__lt=period.end)


# --- who answered whom ------------------------------------------------------------------------------------


@dataclass
class Matrix:
    """counts[(home library id or None, answering library id)] = chats answered."""

    counts: dict[tuple[int | None, int], int]
    libraries: dict[int, Library]
    # Totals summed once: a consortium of 300 libraries has tens of thousands of pairs.
    _rows: dict[int | None, int] = field(init=False, repr=False)
    _columns: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rows, self._columns = defaultdict(int), defaultdict(int)
        for (home, answering), n in self.counts.items():
            self._rows[home] += n
            self._columns[answering] += n

    def rows(self) -> list[int | None]:
        homes = {home for home, _ in self.counts}
        return sorted(homes, key=lambda pk: (pk is None, self._name(pk)))

    def columns(self) -> list[int]:
        return sorted({answering for _, answering in self.counts}, key=self._name)

    def _name(self, pk: int | None) -> str:
        return self.libraries[pk].name if pk is not None and pk in self.libraries else ""

    def get(self, home: int | None, answering: int) -> int:
        return self.counts.get((home, answering), 0)

    def row_total(self, home: int | None) -> int:
        return self._rows.get(home, 0)

    def column_total(self, answering: int) -> int:
        return self._columns.get(answering, 0)


def answer_matrix(chats: QuerySet[Chat]) -> Matrix:
    """Answered chats by home library (None: no home library) and the answering librarian's library."""
    rows = (chats.filter(ANSWERED).values("home_library_id", "answered_by__library_id")
            .annotate(n=Count("pk")).order_by())
    counts: dict[tuple[int | None, int], int] = {
        (r["home_library_id"], r["answered_by__library_id"]): r["n"] for r in rows}
    ids = {pk for pair in counts for pk in pair if pk is not None}
    return Matrix(counts, Library.objects.in_bulk(ids))


@dataclass(frozen=True)
class Balance:
    library: Library
    patrons_chats: int  # chats from this library's patrons
    answered: int  # chats this library's librarians answered, for anyone
    for_others: int  # ... of which for other libraries' patrons (or patrons with no home library)
    by_others: int  # own patrons' chats that other libraries answered

    @property
    def net(self) -> int:
        return self.for_others - self.by_others


def balances(chats: QuerySet[Chat], libraries: Iterable[Library], matrix: Matrix | None = None,
             asked: dict[int | None, int] | None = None) -> list[Balance]:
    """The answering balance of each library, from the matrix and the count of chats per home library
    (either may be given, already read for the same chats)."""
    matrix = matrix or answer_matrix(chats)
    if asked is None:
        asked = dict(chats.values("home_library_id").annotate(n=Count("pk")).order_by()
                     .values_list("home_library_id", "n"))
    out = []
    for lib in libraries:
        answered = matrix.column_total(lib.pk)
        own = matrix.get(lib.pk, lib.pk)
        out.append(Balance(lib, asked.get(lib.pk, 0), answered, answered - own, matrix.row_total(lib.pk) - own))
    return out


@dataclass(frozen=True)
class WhoAnswered:
    """A library's patrons' chats, by who answered them."""

    library: Library
    total: int
    own: int
    partners: list[tuple[Library, int]]  # in the library's partner order
    consortium: int  # other member libraries, not partners
    unanswered: int
    for_others: int

    @property
    def by_others(self) -> int:
        return self.total - self.own - self.unanswered

    @property
    def net(self) -> int:
        return self.for_others - self.by_others


def who_answered(chats: QuerySet[Chat], library: Library) -> WhoAnswered:
    mine = chats.filter(home_library=library)
    by_library = dict(mine.filter(ANSWERED).values("answered_by__library_id").annotate(n=Count("pk")).order_by()
                      .values_list("answered_by__library_id", "n"))
    total = mine.count()
    partners = library.partner_libraries()
    partner_counts = [(p, by_library.get(p.pk, 0)) for p in partners]
    partner_ids = {p.pk for p in partners}
    own = by_library.get(library.pk, 0)
    rest = sum(n for pk, n in by_library.items() if pk != library.pk and pk not in partner_ids)
    for_others = chats.filter(answered_by__library=library).exclude(home_library=library).count()
    return WhoAnswered(library, total, own, partner_counts, rest, total - sum(by_library.values()), for_others)


# --- waits and outcomes -----------------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY expr)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), output_field=DurationField(), **extra)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """As PERCENTILE_CONT: the value at rank fraction x (n - 1), linear between neighbours."""
    if not sorted_values:
        return None
    rank = fraction * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Waits:
    answered: int
    p50: float | None  # seconds
    p90: float | None


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def waits(chats: QuerySet[Chat], *, by: str | None = None) -> dict[Any, Waits]:
    """Wait p50/p90 of answered chats: {None: overall}, or per value of `by` (e.g. "home_library_id")."""
    answered = chats.filter(first_accepted_at__isnull=False)
    if connection.vendor == "postgresql":
        figures = {"n": Count("pk"), "p50": PercentileCont(WAIT, 0.5), "p90": PercentileCont(WAIT, 0.9)}
        if by is None:
            r = answered.aggregate(**figures)
            return {None: Waits(r["n"], _seconds(r["p50"]), _seconds(r["p90"]))} if r["n"] else {}
        rows = answered.values(by).annotate(**figures).order_by()
        return {r[by]: Waits(r["n"], _seconds(r["p50"]), _seconds(r["p90"])) for r in rows}
    # Other engines have no percentile aggregate: the waits come back and are ranked here.
    grouped: dict[Any, list[float]] = defaultdict(list)
    for key, wait in answered.annotate(wait=WAIT).values_list(by or "pk", "wait"):
        grouped[key if by else None].append(wait.total_seconds())
    out = {}
    for key, values in grouped.items():
        values.sort()
        out[key] = Waits(len(values), percentile(values, 0.5), percentile(values, 0.9))
    return out


# Every chat is exactly one outcome (routing/outcomes.py): the page, its CSVs, the board, the chats
# report and /metrics count with that one definition, so the figures add up to the chats.
Outcomes = Counts


def outcomes(chats: QuerySet[Chat], *, by: str | None = None) -> dict[Any, Outcomes]:
    return count_outcomes(chats, by=by)


# --- one pass for the counts ------------------------------------------------------------------------------


def tally(chats: QuerySet[Chat]) -> tuple[Matrix, dict[Any, Outcomes]]:
    """The matrix and the outcomes per home library from one grouped count.

    On a year of a large consortium every figure is a pass over hundreds of thousands of chats;
    grouping by (home library, answering library, outcome) once gives both, in a few thousand rows.
    """
    rows = (chats.annotate(outcome_class=outcome_of())
            .values("home_library_id", "answered_by__library_id", "outcome_class").annotate(n=Count("pk"))
            .order_by().values_list("home_library_id", "answered_by__library_id", "outcome_class", "n"))
    pairs: dict[tuple[int | None, int], int] = defaultdict(int)
    per_home: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for home, answering, outcome, n in rows:
        per_home[home][outcome] += n
        if answering is not None:
            pairs[(home, answering)] += n
    ids = {pk for pair in pairs for pk in pair if pk is not None}
    return (Matrix(dict(pairs), Library.objects.in_bulk(ids)),
            {h: Outcomes.of(dict(c)) for h, c in per_home.items()})


# --- when ------------------------------------------------------------------------------------------------


def by_hour_of_week(chats: QuerySet[Chat], zone: ZoneInfo) -> list[list[int]]:
    """Arrivals per [weekday 0 = Monday][hour 0..23], local to `zone`.

    Grouped by the local hour in the database (one time-zone conversion per chat; a year is 8,760
    groups), then folded onto the week here.
    """
    grid = [[0] * 24 for _ in range(7)]
    rows = (chats.annotate(local_hour=TruncHour("arrived_at", tzinfo=zone)).values("local_hour")
            .annotate(n=Count("pk")).order_by().values_list("local_hour", "n"))
    for hour, n in rows:
        local = hour.astimezone(zone)
        grid[local.weekday()][local.hour] += n
    return grid


# --- what patrons and librarians said about it -------------------------------------------------------------


@dataclass(frozen=True)
class Surveys:
    answers: int
    mean: float | None
    ratings: dict[int, int]  # 1..5 -> answers
    comments: int


def surveys(chats: QuerySet[Chat]) -> Surveys:
    rows = Survey.objects.filter(chat__in=chats.values("pk"))
    totals = rows.aggregate(n=Count("pk"), mean=Avg("rating"), comments=Count("pk", filter=~Q(comment="")),
                            **{f"r{r}": Count("pk", filter=Q(rating=r)) for r in RATINGS})
    return Surveys(totals["n"], totals["mean"], {r: totals[f"r{r}"] for r in RATINGS}, totals["comments"])


def read_scale(chats: QuerySet[Chat]) -> dict[int | None, int]:
    """Chats per READ level 1..6; None: answered but not classified."""
    rows = dict(chats.filter(ANSWERED).values("read_scale").annotate(n=Count("pk")).order_by()
                .values_list("read_scale", "n"))
    return {**{level: rows.get(level, 0) for level in READ_LEVELS}, None: rows.get(None, 0)}


def subjects(chats: QuerySet[Chat], limit: int = 30) -> list[tuple[str, int]]:
    """The most frequent subject tags, most used first (a chat may carry several)."""
    inner, params = chats.values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        sql = (f"SELECT s.tag, COUNT(*) FROM routing_chat c CROSS JOIN LATERAL jsonb_array_elements_text("
               f"CASE WHEN jsonb_typeof(c.subjects) = 'array' THEN c.subjects ELSE '[]'::jsonb END) AS s(tag) "
               f"WHERE c.id IN ({inner}) GROUP BY s.tag ORDER BY 2 DESC, 1 LIMIT %s")
    elif connection.vendor == "sqlite":
        sql = (f"SELECT j.value, COUNT(*) FROM routing_chat c, json_each(c.subjects) j "
               f"WHERE json_type(c.subjects) = 'array' AND c.id IN ({inner}) GROUP BY j.value "
               f"ORDER BY 2 DESC, 1 LIMIT %s")
    else:  # pragma: no cover - the two engines this project runs on are above
        counter: Counter[str] = Counter()
        for tags in chats.values_list("subjects", flat=True):
            counter.update(t for t in tags or [] if isinstance(t, str))
        return counter.most_common(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [(str(tag), int(n)) for tag, n in cursor.fetchall()]


# --- one page's worth -------------------------------------------------------------------------------------


EMPTY_OUTCOMES = Outcomes()
NO_WAITS = Waits(0, None, None)


class Report:
    """Everything the statistics page shows for a period (and, when given, one library's patrons).

    Each figure is computed when first asked for, then kept: the page asks for all of them, a CSV
    export for one, and neither pays for what it does not show. A library's figures are about its
    patrons' chats (`scope`); the matrix and the balances stay consortium-wide, since what a library
    gives is counted in other libraries' rows.
    """

    def __init__(self, consortium: Consortium, period: Period, library: Library | None = None) -> None:
        self.consortium, self.period, self.library = consortium, period, library
        self.everything = chats_in(consortium, period)
        self.scope = self.everything.filter(home_library=library) if library is not None else self.everything

    @cached_property
    def libraries(self) -> list[Library]:
        return list(Library.objects.filter(consortium=self.consortium).order_by("name"))

    @cached_property
    def _tally(self) -> tuple[Matrix, dict[Any, Outcomes]]:
        return tally(self.everything)

    @cached_property
    def outcomes_by_home(self) -> dict[Any, Outcomes]:
        return self._tally[1]

    @cached_property
    def outcomes(self) -> Outcomes:
        # Summed from the per-library counts the page reads anyway: one pass over the chats fewer.
        if self.library is not None:
            return self.outcomes_by_home.get(self.library.pk, EMPTY_OUTCOMES)
        return sum(self.outcomes_by_home.values(), EMPTY_OUTCOMES)

    @cached_property
    def waits(self) -> Waits:
        return waits(self.scope).get(None, NO_WAITS)

    @cached_property
    def matrix(self) -> Matrix:
        return self._tally[0]

    @cached_property
    def balances(self) -> list[Balance]:
        asked = {home: o.total for home, o in self.outcomes_by_home.items()}
        return balances(self.everything, self.libraries, self.matrix, asked)

    @cached_property
    def per_library(self) -> list[tuple[Library, Outcomes, Waits]]:
        per_waits = waits(self.everything, by="home_library_id")
        return [(lib, self.outcomes_by_home.get(lib.pk, EMPTY_OUTCOMES), per_waits.get(lib.pk, NO_WAITS))
                for lib in self.libraries if lib.is_active or lib.pk in self.outcomes_by_home]

    @cached_property
    def per_channel(self) -> list[tuple[str, Outcomes, Waits]]:
        """The scope's chats by how the patron came: "web" (ask page, widget) and "sms" (docs/sms.md)."""
        found = outcomes(self.scope, by="channel")
        per_waits = waits(self.scope, by="channel")
        return [(channel, found.get(channel, EMPTY_OUTCOMES), per_waits.get(channel, NO_WAITS))
                for channel in ("web", "sms")]

    @cached_property
    def who_answered(self) -> WhoAnswered | None:
        return who_answered(self.everything, self.library) if self.library is not None else None

    @cached_property
    def hours(self) -> list[list[int]]:
        return by_hour_of_week(self.scope, self.period.zone)

    @cached_property
    def surveys(self) -> Surveys:
        return surveys(self.scope)

    @cached_property
    def read(self) -> dict[int | None, int]:
        return read_scale(self.scope)

    @cached_property
    def subjects(self) -> list[tuple[str, int]]:
        return subjects(self.scope)

    @cached_property
    def followups(self) -> FollowupFigures:
        """Follow-ups left in the period: time to answer, deadlines kept (coordination.followthrough)."""
        from coordination import followthrough  # it builds on this module's Period

        return followthrough.followup_figures(
            followthrough.followups_in(self.consortium, self.period, self.library), timezone_now())

    @cached_property
    def handbacks(self) -> Handbacks:
        """The way home: chats of the scope offered a hand-back, and handed back."""
        from coordination import followthrough

        return followthrough.handbacks(self.scope)


def report(consortium: Consortium, period: Period, library: Library | None = None) -> Report:
    return Report(consortium, period, library)
