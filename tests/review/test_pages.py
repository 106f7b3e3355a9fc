"""The review pages: a reviewer scores a transcript that never shows the patron; the scores reach the
answering library's liaisons (page and mail) and, if the consortium says so, the librarian; notable
transcripts for all staff; coordinators' figures; nothing across libraries or consortia that should not be."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from review.models import Criterion, Review, ReviewRoles, ReviewSettings, Score
from review.sampling import month_sample
from tests.factories import PASSWORD, make_staff
from tests.review.helpers import NOVEMBER, NOW, World, answered, say, set_sample, world
from texting.models import SmsChat, SmsPatron

pytestmark = pytest.mark.django_db

PATRON = {"name": "Esperanza Quintero-Vasquez", "email": "esperanza.qv@example.net", "phone": "+18505550199"}


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def sampled(w: World, **chat: Any) -> Review:
    """One chat of a's, with the patron's identity all over it, sampled and assigned to b's reviewer."""
    set_sample(w.consortium, "count", 1)
    c = answered(w.librarians["a"], NOVEMBER + timedelta(days=4), patron_name=PATRON["name"],
                 patron_email=PATRON["email"], question=f"I am {PATRON['name']}, where are the 1850 census records?",
                 **chat)
    sms = SmsPatron.objects.create(consortium=w.consortium, phone=PATRON["phone"], created_at=NOW, last_text_at=NOW)
    SmsChat.objects.create(chat=c, patron=sms, number="+18505550000")
    say(c, "patron", f"Hi, this is Esperanza. Mail me at {PATRON['email']} or call 850-555-0199, or 8505550199.")
    say(c, "librarian", "Welcome! Let me look at the census schedules for you.", name="A Librarian")
    say(c, "librarian", f"Patron is {PATRON['name']}, card 2 1234 00567 8901", internal=True, name="A Librarian")
    say(c, "patron", "Thanks Quintero-Vasquez family tree here")
    ReviewRoles.objects.filter(staff=w.reviewers["c"]).update(reviewer=False)  # b's reviewer gets it
    month_sample(w.consortium, date(2026, 11, 1), NOW)
    return Review.objects.get(chat=c)


def form(review: Review, score: int = 3) -> dict[str, str]:
    data = {"comment": "A warm, thorough chat."}
    for c in Criterion.objects.filter(consortium=review.consortium, is_active=True):
        data[f"score-{c.pk}"] = str(score)
        data[f"comment-{c.pk}"] = f"on {c.name}"
    return data


def test_the_reviewer_sees_the_transcript_without_the_patrons_identity() -> None:
    w = world()
    review = sampled(w)
    assert review.reviewer == w.reviewers["b"]
    page = signed_in("rv-b-rev").get(f"/staff/reviews/{review.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    for identity in ("Esperanza", "Quintero", "Vasquez", PATRON["email"], "esperanza.qv", "850-555-0199",
                     "8505550199", "5550199", "203.0.113.9", "2 1234 00567 8901"):
        assert identity not in html, identity
    assert "Let me look at the census schedules for you." in html
    assert "where are the 1850 census records?" in html and "[name]" in html and "[email]" in html
    assert "[phone]" in html
    assert "Patron is" not in html  # the internal note is left out
    assert "Approachability" in html and "Follow-up" in html  # the rubric beside it


def test_scoring_sends_the_scores_to_the_liaisons_of_the_answering_library(
        django_capture_on_commit_callbacks: Any) -> None:
    w = world()
    review = sampled(w)
    reviewer = signed_in("rv-b-rev")
    incomplete = form(review)
    first = Criterion.objects.filter(consortium=w.consortium).first()
    assert first is not None
    del incomplete[f"score-{first.pk}"]
    refused = reviewer.post(f"/staff/reviews/{review.pk}/", incomplete)
    assert refused.status_code == 400 and b"choose a score from 1 to 4" in refused.content
    assert b"A warm, thorough chat." in refused.content and b"on Interest" in refused.content  # nothing lost
    assert not Score.objects.exists() and not Review.objects.get(pk=review.pk).submitted

    with django_capture_on_commit_callbacks(execute=True):
        done = reviewer.post(f"/staff/reviews/{review.pk}/", form(review, 4))
    assert done.status_code == 302
    assert sorted(Score.objects.values_list("value", flat=True)) == [4] * 5
    assert [m.to for m in mail.outbox] == [[w.liaisons["a"].user.email]]
    body = mail.outbox[0].body
    assert "Approachability: 4 · Exemplary (of 4)" in body and "A warm, thorough chat." in body
    assert f"/staff/reviews/{review.pk}/" in body and "Esperanza" not in body
    # Submitted once: a second post changes nothing, nor does the liaison's.
    again = reviewer.post(f"/staff/reviews/{review.pk}/", form(review, 1))
    assert signed_in("rv-a-liaison").post(f"/staff/reviews/{review.pk}/", form(review, 1)).status_code == 403
    assert again.status_code == 403 and sorted(Score.objects.values_list("value", flat=True)) == [4] * 5


def test_a_liaison_sees_only_their_own_librarys_reviews() -> None:
    w = world()
    review = sampled(w)
    Review.objects.filter(pk=review.pk).update(submitted_at=NOW)
    url = f"/staff/reviews/{review.pk}/"
    assert signed_in("rv-a-liaison").get(url).status_code == 200
    home = signed_in("rv-a-liaison").get("/staff/reviews/")
    assert f'data-review="{review.pk}"'.encode() in home.content
    for other in ("rv-b-liaison", "rv-c-liaison", "rv-a-lib", "rv-c-rev"):
        assert signed_in(other).get(url).status_code == 404, other
        assert f'data-review="{review.pk}"'.encode() not in signed_in(other).get("/staff/reviews/").content
    # Before it is submitted, not even the liaison sees it.
    Review.objects.filter(pk=review.pk).update(submitted_at=None)
    assert signed_in("rv-a-liaison").get(url).status_code == 404


def test_the_librarian_sees_the_review_of_their_chat_when_the_consortium_shares_it(
        django_capture_on_commit_callbacks: Any) -> None:
    w = world()
    review = sampled(w)
    ReviewSettings.objects.filter(consortium=w.consortium).update(share_with_librarian=True)
    with django_capture_on_commit_callbacks(execute=True):
        signed_in("rv-b-rev").post(f"/staff/reviews/{review.pk}/", form(review))
    assert mail.outbox[0].to == sorted([w.liaisons["a"].user.email, w.librarians["a"].user.email])
    librarian = signed_in("rv-a-lib")
    assert librarian.get(f"/staff/reviews/{review.pk}/").status_code == 200
    assert b'data-testid="my-reviews"' in librarian.get("/staff/reviews/").content
    ReviewSettings.objects.filter(consortium=w.consortium).update(share_with_librarian=False)
    assert librarian.get(f"/staff/reviews/{review.pk}/").status_code == 404


def test_another_reviewer_cannot_score_it() -> None:
    w = world()
    review = sampled(w)
    other = signed_in("rv-c-rev")
    assert other.post(f"/staff/reviews/{review.pk}/", form(review)).status_code == 404
    assert not Score.objects.exists()


def test_notable_transcripts_are_shared_with_the_consortiums_staff_only() -> None:
    w = world()
    other = world("elsewhere", libraries=("x",))
    review = sampled(w)
    url = f"/staff/reviews/{review.pk}/notable"
    reviewer = signed_in("rv-b-rev")
    assert reviewer.post(url, {"notable": "1"}).status_code == 403  # not submitted yet
    reviewer.post(f"/staff/reviews/{review.pk}/", form(review))
    assert signed_in("rv-c-lib").post(url, {"notable": "1"}).status_code == 404  # not theirs to see yet
    assert reviewer.post(url, {"notable": "1"}).status_code == 302
    assert Review.objects.get(pk=review.pk).notable
    assert signed_in("rv-c-lib").post(url, {"notable": "0"}).status_code == 403  # seen, not theirs to unmark
    listing = signed_in("rv-c-lib").get("/staff/reviews/notable/")
    assert f'data-review="{review.pk}"'.encode() in listing.content and b"Esperanza" not in listing.content
    page = signed_in("rv-c-lib").get(f"/staff/reviews/{review.pk}/").content
    assert b"Esperanza" not in page and PATRON["email"].encode() not in page
    outsider = signed_in("elsewhere-x-lib")
    assert outsider.get(f"/staff/reviews/{review.pk}/").status_code == 404
    assert f'data-review="{review.pk}"'.encode() not in outsider.get("/staff/reviews/notable/").content
    assert outsider.post(url, {"notable": "0"}).status_code == 404
    assert other.consortium.pk != w.consortium.pk


def test_coordinators_see_scores_by_library_and_criterion_and_whats_overdue() -> None:
    w = world()
    coordinator = make_staff(w.libraries[2], "rv-coord", role="coordinator")
    set_sample(w.consortium, "count", 2)
    for i in range(2):
        answered(w.librarians["a"], NOVEMBER + timedelta(days=i))
        answered(w.librarians["b"], NOVEMBER + timedelta(days=i))
    month_sample(w.consortium, date(2026, 11, 1), NOW)
    reviews = list(Review.objects.filter(library=w.libraries[0]))
    for value, r in zip((2, 4), reviews, strict=True):
        for c in Criterion.objects.filter(consortium=w.consortium):
            Score.objects.create(review=r, criterion=c, value=value)
        r.submitted_at = NOW
        r.save()
    Review.objects.filter(library=w.libraries[1]).update(due_at=NOW - timedelta(days=1))  # overdue
    page = signed_in("rv-coord").get("/coordinator/rv/reviews/")
    html = page.content.decode()
    assert page.status_code == 200
    assert ('<tr data-month="2026-11"><th scope="row">November 2026</th>'
            '<td>4</td><td>2</td><td>2</td><td>2</td></tr>') in html  # assigned, done, open, overdue
    assert 'data-library="A Library"' in html and "3.0 <span" in html and 'data-library="B Library"' not in html
    overdue = html.split('data-testid="overdue"')[1].split("</table>")[0]
    assert sorted(int(x) for x in re.findall(r'data-review="(\d+)"', overdue)) == sorted(
        Review.objects.filter(library=w.libraries[1]).values_list("pk", flat=True))
    assert signed_in("rv-a-lib").get("/coordinator/rv/reviews/").status_code == 403
    make_staff(world("else", libraries=("z",)).libraries[0], "else-coord", role="coordinator")
    assert signed_in("else-coord").get("/coordinator/rv/reviews/").status_code == 404
    assert coordinator.role == "coordinator"


def test_coordinators_set_the_sample_the_roles_and_the_rubric() -> None:
    w = world()
    make_staff(w.libraries[0], "rv-coord", role="coordinator")
    client = signed_in("rv-coord")
    url = "/coordinator/rv/reviews/settings/"
    assert client.get(url).status_code == 200
    bad = client.post(url, {"action": "settings", "s-sample_kind": "percent", "s-sample_value": "150"})
    assert bad.status_code == 400 and b"a percentage is 0 to 100" in bad.content
    assert not ReviewSettings.objects.filter(consortium=w.consortium).exists()
    client.post(url, {"action": "settings", "s-sample_kind": "percent", "s-sample_value": "10",
                      "s-share_with_librarian": "on"})
    saved = ReviewSettings.objects.get(consortium=w.consortium)
    assert (saved.sample_kind, saved.sample_value, saved.share_with_librarian) == ("percent", 10, True)

    client.post(url, {"action": "roles", "reviewer": [str(w.librarians["a"].pk)],
                      "liaison": [str(w.librarians["b"].pk)]})
    flags = {r.staff.user.username: (r.reviewer, r.liaison) for r in ReviewRoles.objects.select_related("staff__user")
             if r.reviewer or r.liaison}
    assert flags == {"rv-a-lib": (True, False), "rv-b-lib": (False, True)}

    criteria = list(Criterion.objects.filter(consortium=w.consortium))
    data = {"action": "rubric", "c-TOTAL_FORMS": str(len(criteria) + 1), "c-INITIAL_FORMS": str(len(criteria)),
            "c-MIN_NUM_FORMS": "0", "c-MAX_NUM_FORMS": "1000"}
    for i, c in enumerate(criteria):
        data.update({f"c-{i}-id": str(c.pk), f"c-{i}-position": str(c.position), f"c-{i}-name": c.name,
                     f"c-{i}-guidance": c.guidance, f"c-{i}-scale": str(c.scale), f"c-{i}-labels": "\n".join(c.labels),
                     f"c-{i}-is_active": "on"})
    n = len(criteria)
    data.update({f"c-{n}-position": "9", f"c-{n}-name": "Accuracy", f"c-{n}-scale": "5", f"c-{n}-labels": "a\nb",
                 f"c-{n}-is_active": "on"})
    refused = client.post(url, data)
    assert refused.status_code == 400 and b"one label per point" in refused.content
    data[f"c-{n}-labels"] = ""
    del data["c-0-is_active"]  # switch Approachability off
    assert client.post(url, data).status_code == 302
    active = list(Criterion.objects.filter(consortium=w.consortium, is_active=True).values_list("name", "scale"))
    assert active[-1] == ("Accuracy", 5) and ("Approachability", 4) not in active and len(active) == 5


def test_a_coordinator_gives_an_overdue_review_to_another_reviewer(django_capture_on_commit_callbacks: Any) -> None:
    w = world(libraries=("a", "b", "c"))
    make_staff(w.libraries[2], "rv-coord", role="coordinator")
    review = sampled(w)
    ReviewRoles.objects.filter(staff=w.reviewers["c"]).update(reviewer=True)
    Review.objects.filter(pk=review.pk).update(due_at=NOW)
    url = f"/coordinator/rv/reviews/{review.pk}/reassign"
    assert signed_in("rv-a-lib").post(url).status_code == 403
    coordinator = signed_in("rv-coord")
    with django_capture_on_commit_callbacks(execute=True):
        assert coordinator.post(url).status_code == 302
    review.refresh_from_db()
    assert review.reviewer == w.reviewers["c"]  # not b's again, never a's
    assert [m.to for m in mail.outbox] == [[w.reviewers["c"].user.email]]
    # b's reviewer stops reviewing: nobody else may take it (a's is of the answering library). Said so.
    ReviewRoles.objects.filter(staff=w.reviewers["b"]).update(reviewer=False)
    page = coordinator.post(url, follow=True)
    assert b"no other reviewer may take it" in page.content
    review.refresh_from_db()
    assert review.reviewer == w.reviewers["c"]
    Review.objects.filter(pk=review.pk).update(submitted_at=NOW)
    assert b"this review has been submitted" in coordinator.post(url, follow=True).content
    make_staff(world("else", libraries=("z",)).libraries[0], "else-coord", role="coordinator")
    assert signed_in("else-coord").post(url).status_code == 404
