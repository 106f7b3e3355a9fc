"""What routing writes reaches the database whole, and a write that fails loses nothing silently.

On PostgreSQL a routing's writes go pipelined (consortium.queries.pipelined), the trace lines and
offers as one JSON text each (routing.services.route.Writes); on SQLite through the ORM. Both
suites run these."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from consortium.queries import pipelined
from routing.models import Message, Offer, TraceEvent
from routing.services.chats import _first_line_write
from routing.services.route import OfferMade, TraceLine, Writes
from tests.routing.routing_helpers import T0, at, go_online, staff, start, world

pytestmark = pytest.mark.django_db(transaction=True)


def test_trace_lines_and_offers_are_written_as_they_were_made() -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home")
    lena, omar = staff(w.home, "lena"), staff(w.home, "omar")
    odd = {"note": 'a "quoted" line\\ with ñ, 中文 and\nnewline', "none": None, "list": [1, 2.5, True], "n": 7}
    writes = Writes()
    writes.traces += [TraceLine(chat.pk, at(1), "first", odd), TraceLine(chat.pk, at(1), "second", {})]
    expiry = at(2) + timedelta(microseconds=123456)
    writes.offers += [
        OfferMade(chat.pk, lena.pk, 90, "local", "home", "broadcast", at(1), None),
        OfferMade(chat.pk, omar.pk, 90, "local", "home", "direct", at(1), expiry),
    ]
    with transaction.atomic():
        writes.flush()

    lines = list(TraceEvent.objects.filter(chat=chat, kind__in=["first", "second"]).order_by("pk"))
    assert [(line.kind, line.data, line.at) for line in lines] == [("first", odd, at(1)), ("second", {}, at(1))]
    made = {o.librarian_id: o for o in Offer.objects.filter(chat=chat, step_serial=90)}
    assert made[lena.pk].expires_at is None and made[lena.pk].mode == "broadcast"
    assert made[omar.pk].expires_at == expiry and made[omar.pk].mode == "direct"
    assert {(o.status, o.step, o.queue, o.created_at, o.closed_at, o.reason) for o in made.values()} == {
        (Offer.Status.OPEN, "local", "home", at(1), None, "")}


def test_a_write_that_fails_in_a_pipeline_raises_and_its_transaction_keeps_nothing() -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home")
    writes = Writes()
    writes.traces.append(TraceLine(chat.pk, at(1), "lost with the rest", {}))

    def both() -> None:
        with transaction.atomic(), pipelined():
            writes.flush()
            # Line 1 is the question already: the unique (chat, seq) refuses it, at the pipeline's end.
            _first_line_write(chat, name="", body="again", at=at(1))

    with pytest.raises(IntegrityError):
        both()

    assert not TraceEvent.objects.filter(chat=chat, kind="lost with the rest").exists()
    assert list(Message.objects.filter(chat=chat).values_list("seq", "body")) == [(1, chat.question)]


def test_a_new_chat_is_written_whole_with_its_offers_and_first_line() -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home", question="Where are the 'maps'?")

    assert list(Message.objects.filter(chat=chat).values_list("seq", "sender", "body")) == [
        (1, Message.Sender.PATRON, "Where are the 'maps'?")]
    assert set(Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True)) == {
        lena.pk}
    assert TraceEvent.objects.filter(chat=chat).order_by("pk").values_list("kind", flat=True)[0] == "created"
