"""The mentions a connecting console is sent again (routing.mentions.mentions_unseen): not opened yet,
of the last day, newest first, at most 20, with who wrote them and an excerpt of the note."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing import mentions
from routing.models import Mention, Message
from tests.routing.routing_helpers import T0, at, held_by_lena, staff, world

pytestmark = pytest.mark.django_db


def test_a_hello_shows_the_last_days_unopened_mentions_newest_first_and_no_more_than_twenty() -> None:
    w = world()
    lena, chat = held_by_lena(w)
    pat, other = staff(w.partner, "pat"), staff(w.home, "olga")
    note = Message.objects.create(chat=chat, seq=90, sender="librarian", librarian=lena, name="Lena",
                                  body="@pat " + "x" * 300, at=T0, internal=True)

    def mention(seconds_before: float, *, seen: bool = False, librarian: object = pat) -> Mention:
        made = T0 - timedelta(seconds=seconds_before)
        return Mention.objects.create(chat=chat, message=note, librarian=librarian, by=lena, created_at=made,
                                      seen_at=made if seen else None)

    newest = [mention(s) for s in range(10, 260, 10)]  # 25 within the day, newest first
    mention(5, seen=True)  # opened already
    mention(86_400 + 60)  # older than a day
    mention(1, librarian=other)  # someone else's
    with CaptureQueriesContext(connection) as run:
        shown = mentions.mentions_unseen(pat, T0)
    assert len(run.captured_queries) == 1  # who wrote it and the note, read with it
    assert [m["id"] for m in shown] == [m.pk for m in newest[:20]]
    assert shown[0]["by"]["name"] == lena.display_name and shown[0]["excerpt"] == note.body[:mentions.EXCERPT]
    assert shown[0]["chat"] == chat.pk
    assert mentions.mentions_unseen(pat, at(86_400 * 3)) == []  # a day later nothing is shown again
    assert [m["id"] for m in mentions.mentions_unseen(other, T0)] == [Mention.objects.get(librarian=other).pk]
