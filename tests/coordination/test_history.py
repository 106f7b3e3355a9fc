"""The demo's generated past (coordination/history.py, manage.py demo_history) on the real demo file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F

from consortium.models import Consortium
from coordination import coverage, history, statistics
from libraries.models import Shift
from routing.models import LIVE_STATES, Chat, ChatState, Message, Survey, Ticket
from routing.outcomes import Counts

pytestmark = pytest.mark.django_db

DEMO_FILE = Path(__file__).resolve().parents[2] / "deploy" / "demo-consortium.yaml"
NOW = datetime(2026, 3, 11, 19, 0, tzinfo=UTC)  # a Wednesday, 15:00 in Florida
NY = ZoneInfo("America/New_York")


@pytest.fixture
def demo() -> Consortium:
    call_command("import_consortium", str(DEMO_FILE), "--quiet")
    return Consortium.objects.get(slug="sunshine")


def test_eight_weeks_of_a_state_service_consistent_with_the_model(demo: Consortium) -> None:
    # Its time (under 15 s on the embedded default) is measured, not asserted: docs/coordinators.md.
    done = history.load(demo, NOW)
    chats = Chat.objects.filter(consortium=demo)
    assert 3000 < done.chats == chats.count() < 6000
    assert done.first == NOW.astimezone(NY).date() - timedelta(days=55) and done.last == NOW.astimezone(NY).date()
    # Every chat is over (nothing for the timer), and arrived before now.
    assert not chats.filter(state__in=LIVE_STATES).exists() and not chats.filter(deadline__isnull=False).exists()
    assert not chats.filter(arrived_at__gt=NOW).exists()
    # The outcomes the generator meant are the ones routing/outcomes.py reads.
    period = statistics.Period(done.first, done.last, NY)
    report = statistics.report(demo, period)
    assert report.outcomes == Counts.of(done.outcomes) and report.outcomes.total == done.chats
    assert min(n for outcome, n in report.outcomes.items() if outcome != "open") > 0, report.outcomes
    assert report.outcomes.answered / done.chats > 0.8
    # Answered at home, by partners and by the shared queues, by whom the plan allows.
    steps = dict(chats.filter(answered_by__isnull=False).values("answered_step").annotate(n=Count("pk"))
                 .order_by().values_list("answered_step", "n"))
    assert set(steps) == {"local", "partners", "consortium"} and all(n > 100 for n in steps.values()), steps
    assert not chats.filter(answered_step="local").exclude(answered_by__library=F("home_library")).exists()
    for chat in chats.filter(answered_step="partners").select_related("home_library", "answered_by")[:200]:
        assert chat.answered_by is not None and chat.home_library is not None
        assert chat.answered_by.library in chat.home_library.partner_libraries()
    assert not chats.filter(first_accepted_at__lt=F("arrived_at")).exists()
    late = F("arrived_at") + timedelta(seconds=demo.max_wait)
    assert not chats.filter(max_wait_passed=False, first_accepted_at__gte=late).exists(), "answered after max_wait"
    assert not chats.filter(max_wait_passed=False, ended_at__gte=late, answered_by__isnull=True).exists()
    assert not chats.filter(ended_at__lt=F("arrived_at")).exists()
    # A state service's week: weekday afternoons far busier than nights; a Spanish share.
    hours = report.hours
    afternoons = sum(hours[d][h] for d in range(5) for h in range(13, 17))
    nights = sum(hours[d][h] for d in range(5) for h in range(1, 5))
    assert afternoons > 10 * nights > 0
    assert sum(hours[d][h] for d in range(5) for h in range(24)) > 2 * sum(hours[d][h] for d in (5, 6)
                                                                            for h in range(24))
    spanish = chats.filter(language="es").count()
    assert 0.05 < spanish / done.chats < 0.25
    # Around them: messages, surveys, follow-ups (open ones only recent), rota shifts with a crew.
    assert Message.objects.filter(chat__consortium=demo).count() > 3 * done.chats
    assert Survey.objects.filter(chat__consortium=demo).count() == done.surveys > 300
    tickets = Ticket.objects.filter(consortium=demo)
    assert tickets.count() == done.followups > 100
    assert {"referral", "question_form"} == set(tickets.values_list("source", flat=True))
    assert not tickets.filter(status=Ticket.Status.NEW, created_at__lt=NOW - timedelta(days=2), library__isnull=False,
                              library__staff__isnull=False).exists()
    assert chats.filter(state=ChatState.ABANDONED, answered_by__isnull=False).exists(), \
        "some answered chats ended abandoned: the statistics count them answered"
    assert done.shifts == Shift.objects.filter(queue__consortium=demo).count() > 10
    heat = coverage.coverage(demo, NOW, weeks=8)
    statewide = next(q for q in heat.queues if q.queue.slug == "statewide")
    assert statewide.has_rota and 0 < statewide.gaps < 7 * 24


def test_the_same_seed_gives_the_same_past_and_loading_again_replaces_it(demo: Consortium) -> None:
    first = history.load(demo, NOW, weeks=2)
    rows = sorted(Chat.objects.filter(consortium=demo).values_list("pk", "arrived_at", "state", "answered_by_id"))
    # A real chat and follow-up are never touched by the replacement.
    real = Chat.objects.create(consortium=demo, question="q", token_hash="x", created_at=NOW, arrived_at=NOW,
                               last_activity_at=NOW, state=ChatState.ENDED)
    real_ticket = Ticket.objects.create(consortium=demo, question="q", patron_email="p@example.org",
                                        source="question_form", created_at=NOW)
    again = history.load(demo, NOW, weeks=2)
    assert again.chats == first.chats and again.outcomes == first.outcomes
    assert sorted(Chat.objects.filter(consortium=demo).exclude(pk=real.pk)
                  .values_list("pk", "arrived_at", "state", "answered_by_id")) == rows
    assert Chat.objects.filter(pk=real.pk).exists() and Ticket.objects.filter(pk=real_ticket.pk).exists()
    assert again.shifts == 0 and Shift.objects.filter(queue__consortium=demo).count() == first.shifts, \
        "the rota is made once, never replaced"
    other = history.load(demo, NOW, weeks=2, seed=21)
    assert other.outcomes != first.outcomes or sorted(Chat.objects.filter(consortium=demo).exclude(pk=real.pk)
                                                      .values_list("pk", "arrived_at")) != [r[:2] for r in rows]


def test_the_command_refuses_a_production_database_unless_forced(demo: Consortium, settings: object,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    settings.EMBEDDED = False  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="production database"):
        call_command("demo_history", "--weeks", "1")
    assert not Chat.objects.exists()
    call_command("demo_history", "--weeks", "1", "--force")
    assert Chat.objects.filter(consortium=demo).exists()
    assert "chats from" in capsys.readouterr().out


def test_the_command_says_what_is_wrong(demo: Consortium, settings: object) -> None:
    settings.EMBEDDED = True  # type: ignore[attr-defined]  # as under dev.py demo, whatever runs the tests
    with pytest.raises(CommandError, match="no consortium 'nope'"):
        call_command("demo_history", "--consortium", "nope")
    with pytest.raises(CommandError, match="--weeks must be 1 to 26"):
        call_command("demo_history", "--weeks", "0")
