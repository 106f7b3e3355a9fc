"""Transcript review in the demo: `dev.py demo` names reviewers and liaisons, samples the last two
months of the generated past and scores most reviews, the same way at every start."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command
from django.test import Client

from consortium.models import Consortium
from coordination import history
from review import demo
from review.models import Review
from tests.coordination.test_history import DEMO_FILE
from tests.review.helpers import NOW

pytestmark = pytest.mark.django_db


def test_the_demo_has_reviews_by_other_libraries_and_rebuilds_them() -> None:
    call_command("import_consortium", str(DEMO_FILE), "--quiet")
    sunshine = Consortium.objects.get(slug="sunshine")
    history.load(sunshine, NOW, weeks=10)
    done = demo.load(sunshine, NOW)
    libraries = sunshine.libraries.count()
    assert done.reviews == libraries * 3 * 2 and 0 < done.submitted < done.reviews
    reviews = list(Review.objects.select_related("reviewer", "chat"))
    assert all(r.reviewer.library_id not in (r.library_id, r.chat.home_library_id) for r in reviews)
    assert {r.month for r in reviews} == {date(2026, 10, 1), date(2026, 11, 1)}
    again = demo.load(sunshine, NOW)
    assert again.reviews == done.reviews and Review.objects.count() == done.reviews

    client = Client()
    client.force_login(sunshine.libraries.get(slug="tallahassee").staff.get(user__username="coord-rivera").user)
    page = client.get("/coordinator/sunshine/reviews/")
    assert page.status_code == 200 and b'data-month="2026-11"' in page.content
