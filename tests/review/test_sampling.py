"""The monthly sample: answered chats only, the consortium's size, never to a reviewer of the answering
(or home) library nor to anyone who took part, spread evenly, and drawn once however often it runs."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from review.models import Criterion, Review, SampleRun
from review.rubric import RUSA_DEFAULT, rubric
from review.sampling import Candidate, Reviewer, assign, month_sample, previous_month, sample_size, samples_due
from tests.factories import make_staff
from tests.review.helpers import NOVEMBER, NOW, ZONE, answered, flag, set_sample, unanswered, world

# --- the decision, exhaustively on small worlds -----------------------------------------------------------


def small_worlds() -> list[tuple[list[Reviewer], list[Candidate]]]:
    """Every way of placing 0-4 reviewers in 3 libraries, against chats answered by each library for
    patrons of each library, some with a reviewer who took part."""
    worlds = []
    chats = [Candidate(f"{answering}{home}{i}", frozenset({answering, home}), frozenset({100 + i}))
             for answering, home in itertools.product(range(3), repeat=2) for i in range(2)]
    for k in range(5):
        for libraries in itertools.product(range(3), repeat=k):
            reviewers = [Reviewer(100 + i, lib) for i, lib in enumerate(libraries)]
            worlds.append((reviewers, chats))
    return worlds


def test_no_reviewer_ever_gets_a_chat_of_their_own_library_or_one_they_took_part_in() -> None:
    for seed, (reviewers, chats) in enumerate(small_worlds()):
        library = {r.staff_id: r.library_id for r in reviewers}
        eligible = [c for c in chats if any(r.library_id not in c.excluded_libraries
                                            and r.staff_id not in c.excluded_staff for r in reviewers)]
        for size in (0, 1, 3, len(chats)):
            chosen = assign(chats, reviewers, size, {}, random.Random(seed * 7 + size))
            by_id = {c.chat_id: c for c in chats}
            for chat_id, staff_id in chosen.items():
                assert library[staff_id] not in by_id[chat_id].excluded_libraries
                assert staff_id not in by_id[chat_id].excluded_staff
            # As many as asked for, when there are chats someone may review.
            assert len(chosen) == min(size, len(eligible))


def test_the_work_is_spread_evenly_and_counts_the_month_so_far() -> None:
    reviewers = [Reviewer(1, 1), Reviewer(2, 2), Reviewer(3, 3)]
    chats = [Candidate(f"c{i}", frozenset({0}), frozenset()) for i in range(10)]
    chosen = assign(chats, reviewers, 10, {}, random.Random(1))
    assert sorted(Counter(chosen.values()).values()) == [3, 3, 4]
    # Reviewer 1 already has four reviews this month: the next three go to the others.
    chosen = assign(chats, reviewers, 3, {1: 4, 2: 3, 3: 3}, random.Random(2))
    assert sorted(chosen.values()) in ([2, 2, 3], [2, 3, 3])


def test_sample_size_by_percentage_and_by_count() -> None:
    assert [sample_size(n, "percent", 10) for n in (0, 1, 9, 10, 11, 100)] == [0, 1, 1, 1, 2, 10]
    assert sample_size(7, "percent", 100) == 7 and sample_size(7, "percent", 0) == 0
    assert [sample_size(n, "count", 5) for n in (0, 3, 5, 40)] == [0, 3, 5, 5]


# --- the month, in the database ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_month_is_sampled_per_answering_library_from_its_answered_chats_only() -> None:
    w = world()
    a, b, c = w.libraries
    set_sample(w.consortium, "count", 3)
    inside = [answered(w.librarians["a"], NOVEMBER + timedelta(days=i, hours=10)) for i in range(5)]
    partner = answered(w.librarians["b"], NOVEMBER + timedelta(days=2), home=a)  # b answered a's patron
    answered(w.librarians["a"], NOVEMBER - timedelta(minutes=1))  # 31 October, in New York
    answered(w.librarians["a"], NOVEMBER + timedelta(days=30))  # 1 December
    answered(w.librarians["a"], NOVEMBER + timedelta(days=3), state="active")  # still going on
    for i in range(4):
        unanswered(w.consortium, a, NOVEMBER + timedelta(days=i))

    report = month_sample(w.consortium, date(2026, 11, 1), NOW, rng=random.Random(3))

    assert report.sampled == {a.slug: 3, b.slug: 1, c.slug: 0}
    reviews = list(Review.objects.select_related("chat", "reviewer", "consortium"))
    assert {r.chat_id for r in reviews if r.library_id == a.pk} <= {ch.pk for ch in inside}
    assert [r.chat_id for r in reviews if r.library_id == b.pk] == [partner.pk]
    for r in reviews:
        assert r.reviewer.library_id not in (r.library_id, r.chat.home_library_id)
        assert r.librarian_id == r.chat.answered_by_id and r.month == date(2026, 11, 1)
        assert r.due_at == NOVEMBER.replace(month=12) + timedelta(days=31)  # the end of December
        assert r.due_on == date(2026, 12, 31)
    # b's chat was for a's patron: only c's reviewer may take it.
    assert [r.reviewer for r in reviews if r.library_id == b.pk] == [w.reviewers["c"]]


@pytest.mark.django_db
def test_a_percentage_is_rounded_up() -> None:
    w = world()
    set_sample(w.consortium, "percent", 25)
    for i in range(9):
        answered(w.librarians["a"], NOVEMBER + timedelta(days=i))
    answered(w.librarians["b"], NOVEMBER)
    report = month_sample(w.consortium, date(2026, 11, 1), NOW)
    assert report.sampled[w.libraries[0].slug] == 3 and report.sampled[w.libraries[1].slug] == 1


@pytest.mark.django_db
def test_running_twice_assigns_nothing_twice() -> None:
    w = world()
    set_sample(w.consortium, "count", 2)
    for i in range(6):
        answered(w.librarians["a" if i % 2 else "b"], NOVEMBER + timedelta(days=i))
    first = month_sample(w.consortium, date(2026, 11, 1), NOW)
    before = sorted(Review.objects.values_list("chat_id", "reviewer_id"))
    # More chats of the month show up late, and the command runs again (and the daily task, twice).
    answered(w.librarians["a"], NOVEMBER + timedelta(days=20))
    again = month_sample(w.consortium, date(2026, 11, 1), NOW + timedelta(days=1))
    call_command("review_sample", "2026-11")
    samples_due(NOW + timedelta(days=2))
    assert first.total == 4 and again.total == 0
    assert sorted(again.already) == sorted(lib.slug for lib in w.libraries)
    assert sorted(Review.objects.values_list("chat_id", "reviewer_id")) == before
    assert SampleRun.objects.count() == 3


@pytest.mark.django_db
def test_a_library_without_a_reviewer_elsewhere_waits_for_a_later_run() -> None:
    w = world(libraries=("a", "b"))
    flag(w.reviewers["b"], reviewer=False)  # a's chats may go to b's reviewers only: there are none
    answered(w.librarians["a"], NOVEMBER + timedelta(days=1))
    report = month_sample(w.consortium, date(2026, 11, 1), NOW)
    assert report.no_reviewer == [w.libraries[0].slug] and not Review.objects.exists()
    flag(make_staff(w.libraries[1], "rv-b-new"), reviewer=True)
    report = month_sample(w.consortium, date(2026, 11, 1), NOW + timedelta(days=3))
    assert report.sampled[w.libraries[0].slug] == 1
    assert Review.objects.get().reviewer.user.username == "rv-b-new"


@pytest.mark.django_db
def test_nobody_who_took_part_reviews_it() -> None:
    w = world(libraries=("a", "b", "c"))
    # a's librarian answered, then transferred to b's reviewer: only c's reviewer is left.
    chat = answered(w.librarians["a"], NOVEMBER + timedelta(days=1), also=[w.reviewers["b"]])
    set_sample(w.consortium, "count", 5)
    month_sample(w.consortium, date(2026, 11, 1), NOW)
    assert Review.objects.get(chat=chat).reviewer == w.reviewers["c"]


@pytest.mark.django_db
def test_reviewers_of_another_consortium_are_never_assigned() -> None:
    w = world("one", libraries=("a",))  # one library: nobody of this consortium may review its chats
    other = world("two", libraries=("x", "y"))
    answered(w.librarians["a"], NOVEMBER + timedelta(days=1))
    answered(other.librarians["x"], NOVEMBER + timedelta(days=1))
    reports = samples_due(NOW)
    assert reports["one"].no_reviewer == [w.libraries[0].slug]
    assert [(r.consortium_id, r.reviewer.library.consortium_id) for r in Review.objects.select_related(
        "reviewer__library")] == [(other.consortium.pk, other.consortium.pk)]


def test_the_beat_task_samples_the_previous_month_in_the_consortiums_time_zone() -> None:
    assert previous_month(NOW, ZONE) == date(2026, 11, 1)
    # 02:00 UTC on 1 December is still 30 November in New York: the month before is October.
    assert previous_month(datetime(2026, 12, 1, 2, 0, tzinfo=UTC), ZONE) == date(2026, 10, 1)
    assert previous_month(NOW.replace(month=1, day=5), ZONE) == date(2025, 12, 1)


@pytest.mark.django_db
def test_the_command_names_what_it_did_and_refuses_a_bad_month(capsys: pytest.CaptureFixture[str]) -> None:
    w = world()
    answered(w.librarians["a"], NOVEMBER + timedelta(days=1))
    call_command("review_sample", "2026-11", "--consortium", "rv")
    out = capsys.readouterr().out
    assert "rv 2026-11: 1 review(s) assigned" in out and "rv-a: 1" in out
    for bad in ("2026-13", "November", "2026-1"):
        with pytest.raises(CommandError, match="is not a month"):
            call_command("review_sample", bad)
    with pytest.raises(CommandError, match="no active consortium"):
        call_command("review_sample", "2026-11", "--consortium", "nope")


@pytest.mark.django_db
def test_a_consortium_without_a_rubric_gets_rusas_once() -> None:
    w = world()
    names = [c.name for c in rubric(w.consortium)]
    assert names == [name for name, _ in RUSA_DEFAULT]
    assert names == ["Approachability", "Interest", "Listening and inquiry", "Searching", "Follow-up"]
    Criterion.objects.filter(consortium=w.consortium).update(is_active=False)
    assert rubric(w.consortium) == [] and Criterion.objects.filter(consortium=w.consortium).count() == 5


@pytest.mark.django_db
def test_the_daily_task_is_scheduled_and_draws_a_given_month() -> None:
    from django.conf import settings

    from review.tasks import reviews_sample_due

    assert settings.CELERY_BEAT_SCHEDULE["sample-reviews"]["task"] == reviews_sample_due.name
    w = world()
    answered(w.librarians["a"], NOVEMBER + timedelta(days=1))
    assert reviews_sample_due.apply(kwargs={"month": "2026-11"}).get() == {"rv": 1}
    assert reviews_sample_due.apply(kwargs={"month": "2026-11"}).get() == {"rv": 0}
    assert Review.objects.count() == 1


@pytest.mark.django_db
def test_each_reviewer_given_reviews_is_mailed_once_per_run(django_capture_on_commit_callbacks: Any) -> None:
    from django.core import mail

    w = world()
    set_sample(w.consortium, "count", 4)
    for i in range(4):
        answered(w.librarians["a"], NOVEMBER + timedelta(days=i), patron_name="Zebulon Quartermaine")
    with django_capture_on_commit_callbacks(execute=True):
        month_sample(w.consortium, date(2026, 11, 1), NOW, rng=random.Random(5))
    assert sorted(m.to[0] for m in mail.outbox) == ["rv-b-rev@example.org", "rv-c-rev@example.org"]
    for m in mail.outbox:
        assert "2 transcript(s) of November 2026 to review" in m.body and "Thursday December 31" in m.body
        assert "/staff/reviews/" in m.body and "Zebulon" not in m.body
    with django_capture_on_commit_callbacks(execute=True):
        month_sample(w.consortium, date(2026, 11, 1), NOW)  # drawn already: nobody hears again
    assert len(mail.outbox) == 2
