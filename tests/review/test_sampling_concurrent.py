"""Sampling runs of one month at the same instant (the beat task and an operator's command): each
library is drawn by one of them only, no chat gets two reviews, and the default rubric is made once.
Needs PostgreSQL (SQLite's test database serializes the threads)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import partial

import pytest

from review.models import Criterion, Review, SampleRun
from review.sampling import month_sample
from tests.review.helpers import NOVEMBER, NOW, answered, set_sample, world
from tests.routing.test_message_store import at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_two_runs_at_once_draw_each_library_once() -> None:
    w = world()
    set_sample(w.consortium, "count", 3)
    for i in range(12):
        answered(w.librarians["abc"[i % 3]], NOVEMBER + timedelta(days=i))
    reports = at_once([partial(month_sample, w.consortium, date(2026, 11, 1), NOW, rng=random.Random(seed))
                       for seed in range(4)])
    drawn = [slug for r in reports for slug in r.sampled]
    assert sorted(drawn) == sorted(lib.slug for lib in w.libraries)  # each library by exactly one run
    assert Review.objects.count() == 9 == len(set(Review.objects.values_list("chat_id", flat=True)))
    assert SampleRun.objects.count() == 3
    assert Criterion.objects.filter(consortium=w.consortium).count() == 5  # one default rubric, not four
