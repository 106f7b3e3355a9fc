"""What routing writes reaches the database whole, and a write that fails loses nothing silently.

On PostgreSQL a routing's writes go pipelined (consortium.queries.pipelined), the trace lines and
offers as one JSON text each (routing.services.route.Writes); on SQLite through the ORM. Both
suites run these."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from consortium.queries import pipelined
from libraries.models import StaffProfile
from routing import events, selectors
from routing.models import Chat, Message, Offer, TraceEvent
from routing.selectors import NO_OFFERS, StepOffers
from routing.services import chats, offers, route, sweeps
from routing.services.chats import _first_line_write
from routing.services.route import Close, OfferMade, TraceLine, Writes, _current_offers, _locked_alone
from tests.factories import make_library
from tests.routing.routing_helpers import T0, Sent, at, fresh, go_online, open_offers, patron_joins, staff, start, world

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


def test_a_broadcasts_lines_and_offers_are_written_one_per_librarian_in_order() -> None:
    # On PostgreSQL a run of offers alike but for the librarian and queue goes as one element: the
    # rows that come out are the ones made, in order, whatever breaks or ends a run.
    w = world()
    chat = start(w.consortium, T0, library_slug="home")
    other = start(w.consortium, T0, library_slug="home")
    people = [staff(w.home, name) for name in ("ana", "ben", "cai", "dee")]
    a, b, c, d = (p.pk for p in people)

    def offered(chat_id: str, librarian: int, queue: str, mode: str = "broadcast", when: int = 1) -> TraceLine:
        return TraceLine(chat_id, at(when), "offered", {"librarian": librarian, "queue": queue, "mode": mode})

    made = [
        TraceLine(chat.pk, at(1), "escalated", {"from": "local", "reason": "timeout"}),
        offered(chat.pk, a, "home"), offered(chat.pk, b, "partner"), offered(chat.pk, c, "home"),
        offered(other.pk, a, "home"),  # another chat: a new run
        offered(chat.pk, d, "home", when=2),  # another instant
        offered(chat.pk, a, "home", mode="direct", when=2),  # another mode
        TraceLine(chat.pk, at(2), "offered", {"librarian": b, "queue": "home", "mode": "broadcast", "by": "x"}),
        TraceLine(chat.pk, at(2), "max_wait", {"waited": 300}),
        offered(chat.pk, c, "home", when=2),  # a run starts again after another line
    ]
    writes = Writes()
    writes.traces += made
    writes.offers += [
        OfferMade(chat.pk, a, 91, "partners", "home", "broadcast", at(1), None),
        OfferMade(chat.pk, b, 91, "partners", "partner", "broadcast", at(1), None),
        OfferMade(other.pk, a, 91, "partners", "home", "broadcast", at(1), None),
        OfferMade(chat.pk, c, 92, "shared", "state", "broadcast", at(1), None),
        OfferMade(chat.pk, d, 92, "shared", "state", "direct", at(1), at(21)),
    ]
    with transaction.atomic():
        writes.flush()

    ours = {chat.pk, other.pk}
    written = [(line.chat_id, line.at, line.kind, line.data)
               for line in TraceEvent.objects.filter(chat__in=ours, at__gte=at(1)).order_by("pk")]
    assert written == [tuple(line) for line in made]
    rows = set(Offer.objects.filter(chat__in=ours, step_serial__gte=91).values_list(
        "chat_id", "librarian_id", "step_serial", "step", "queue", "mode", "created_at", "expires_at", "status"))
    assert rows == {(*offer, Offer.Status.OPEN) for offer in writes.offers}


def test_a_librarian_deleted_takes_their_offers_along_and_leaves_the_chat_routable() -> None:
    # Offers keep their keys without a constraint in the database (migration 0025): Django's
    # collector still deletes a deleted librarian's offers, and the chat's other offers stay.
    w = world()
    lena, omar = staff(w.home, "lena"), staff(w.home, "omar")
    go_online(lena, at(-60))
    go_online(omar, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    assert set(Offer.objects.filter(chat=chat).values_list("librarian_id", flat=True)) == {lena.pk, omar.pk}

    omar.user.delete()

    assert list(Offer.objects.filter(chat=chat).values_list("librarian_id", flat=True)) == [lena.pk]
    assert not Offer.objects.filter(librarian_id=omar.pk).exists()
    route.chat_route(chat.pk, at(5))
    assert list(Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True)) == [
        lena.pk]


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


def test_a_new_chats_row_holds_every_value_the_service_decided() -> None:
    # On PostgreSQL the row goes by a statement of our own (route._chats_insert), not Django's
    # compiler: what is read back is what chat_start held, column for column, whatever their types.
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    held, _token = chats.chat_start(consortium=w.consortium, now=T0, library_slug="home",
                                    question="Ünïcode 'quotes' \\ and\nlines", name="Zoë O'Hara",
                                    email="zoe@example.org", language="en", ip="2001:db8::7", device="dev-1",
                                    remember=True)
    row = Chat.objects.get(pk=held.pk)
    for field in Chat._meta.local_concrete_fields:
        assert getattr(row, field.attname) == getattr(held, field.attname), field.attname
    assert row.patron_ip == "2001:db8::7" and row.plan and row.deadline is not None
    assert row.question == "Ünïcode 'quotes' \\ and\nlines"


def test_a_batch_reads_each_chats_current_offers_as_the_router_sees_them() -> None:
    w = world()
    first = start(w.consortium, T0, library_slug="home")
    second = start(w.consortium, T0, library_slug="home")
    people = [staff(w.home, name) for name in ("ana", "ben", "cai", "dee", "eve", "fay")]
    writes = Writes()
    for chat in (first, second):
        writes.offers += [OfferMade(chat.pk, p.pk, 70, "local", "home", "direct" if i % 2 else "broadcast",
                                    at(1), at(30 + i) if i % 2 else None) for i, p in enumerate(people)]
        writes.offers.append(OfferMade(chat.pk, people[0].pk, 69, "local", "home", "broadcast", at(0), None))
    with transaction.atomic():
        writes.flush()
    for status, person in ((Offer.Status.DECLINED, people[1]), (Offer.Status.EXPIRED, people[2]),
                           (Offer.Status.WITHDRAWN, people[3])):
        Offer.objects.filter(chat=first, librarian=person).update(status=status)

    read = _current_offers({first.pk: 70, second.pk: 70, "no such chat": 70})

    assert read["no such chat"] == NO_OFFERS
    for chat in (first, second):
        expected = StepOffers.of_rows(Offer.objects.filter(chat=chat, step_serial=70)
                                      .values_list("librarian_id", "status", "mode", "expires_at"))
        assert set(read[chat.pk].open) == set(expected.open)
        assert (read[chat.pk].offered, read[chat.pk].declined) == (expected.offered, expected.declined)
    assert {(o.librarian, o.mode, o.expires_at) for o in read[first.pk].open} == {
        (people[0].pk, "broadcast", None), (people[4].pk, "broadcast", None), (people[5].pk, "direct", at(35))}
    assert read[first.pk].declined == {people[1].pk, people[2].pk}


def _two_chats_sharing_a_partner(first_library: str, second_library: str) -> tuple[Chat, Chat]:
    """A chat from `first_library`, then one a second later from `second_library` ("home" and "other",
    which share the partner library), librarians on at all three, both patrons joined."""
    w = world()
    other = make_library(w.consortium, "other", partners=[w.partner])
    for person, library in (("lena", w.home), ("olga", other), ("pia", w.partner)):
        go_online(staff(library, person), at(-60))
    first = start(w.consortium, T0, library_slug=first_library)
    second = start(w.consortium, at(1), library_slug=second_library)
    for chat in (first, second):
        patron_joins(chat, at(2))
    return first, second


def test_patrons_moved_on_together_are_told_their_places_on_the_queue_as_the_batch_left_it(sent: Sent) -> None:
    """Two chats from two libraries that share a partner move on to it at the same deadline, in one
    batch. The later one waits behind the earlier one there, and is told so: places are counted
    after the batch's moves are written (counted before, the earlier chat still looked local)."""
    first, second = _two_chats_sharing_a_partner("home", "other")
    assert fresh(first).deadline == at(45) and fresh(second).deadline == at(46)
    sent.clear()

    sweeps.due_sweep(at(46))  # both local steps are over: on to the partner, in one batch

    assert (fresh(first).step_index, fresh(second).step_index) == (1, 1)
    assert [f["position"] for f in sent.to_chat(first, "state")] == [1]
    assert [f["position"] for f in sent.to_chat(second, "state")] == [2]


def test_a_chat_locked_alone_comes_with_its_current_steps_offers_as_the_router_sees_them() -> None:
    """chat_route asks a chat's offers in the round trip of its lock (PostgreSQL): those of the step
    the locked row is in, read as a batch reads them; elsewhere they are read when needed."""
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    people = [staff(w.home, name) for name in ("ana", "ben", "cai")]
    serial = Chat.objects.get(pk=chat.pk).step_serial
    assert serial >= 1
    writes = Writes()
    writes.offers += [OfferMade(chat.pk, p.pk, serial, "local", "home", "broadcast", at(1), None) for p in people]
    writes.offers.append(OfferMade(chat.pk, people[0].pk, serial - 1, "local", "home", "broadcast", at(0), None))
    with transaction.atomic():
        writes.flush()
    Offer.objects.filter(chat=chat, librarian=people[1], step_serial=serial).update(status=Offer.Status.DECLINED)

    with transaction.atomic():
        locked = _locked_alone(chat.pk, skip_locked=False)
    assert locked is not None
    found, offers, _ = locked
    assert found.pk == chat.pk and found.step_serial == serial
    if connection.vendor == "postgresql":
        assert offers == _current_offers({chat.pk: serial})[chat.pk]
        assert {o.librarian for o in offers.open} >= {people[0].pk, people[2].pk}
        assert people[1].pk in offers.declined and people[1].pk not in {o.librarian for o in offers.open}
    else:
        assert offers is None
    with transaction.atomic():
        assert _locked_alone("no such chat", skip_locked=False) is None


def test_a_chat_routed_alone_at_its_deadline_tells_its_patron_its_place_once_committed(
        sent: Sent, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step timeout counts the patron's place with its writes and reads it with the COMMIT's answer:
    the place counts the chats ahead on the new step, and the frame goes out after the commit."""
    first, second = _two_chats_sharing_a_partner("other", "home")
    first_deadline = fresh(first).deadline
    assert first_deadline is not None
    sweeps.due_sweep(first_deadline)  # the earlier chat is on the partner step already
    assert fresh(first).step_index == 1
    sent.clear()
    in_transaction: list[bool] = []

    def record(group: str, event: dict[str, Any]) -> None:
        in_transaction.append(connection.in_atomic_block)
        sent(group, event)

    monkeypatch.setattr(events, "_send", record)

    deadline = fresh(second).deadline
    assert deadline is not None
    route.chat_route(second.pk, deadline)

    assert fresh(second).step_index == 1
    assert [f["position"] for f in sent.to_chat(second, "state")] == [2]
    assert in_transaction and not any(in_transaction)


def test_a_lone_deadline_asks_presence_with_its_lock_and_a_hint_gone_stale_changes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer passes chat_route what its listing read of a chat (route.RouteHint). On PostgreSQL the
    presence and load its decision reads are asked with the chat's lock, not read in a round trip
    after it. A hint that no longer holds asks for other librarians: the decision reads its own and
    decides as without it."""
    first, second = _two_chats_sharing_a_partner("home", "other")
    lena, olga, pia = (StaffProfile.objects.get(user__username=name).pk for name in ("lena", "olga", "pia"))
    reads: list[list[int]] = []
    read = selectors.presence_and_load
    monkeypatch.setattr(selectors, "presence_and_load", lambda ids: reads.append(list(ids)) or read(ids))
    pipelined_db = connection.vendor == "postgresql"

    sweeps.due_sweep(at(45))  # the first chat's local step is over, alone

    assert fresh(first).step_index == 1
    assert _open_to(first) == {lena, pia}
    assert reads == ([] if pipelined_db else [[lena, pia]])

    reads.clear()
    stale = route.RouteHint(first.consortium_id, fresh(first).plan, 0, fresh(second).step_entered_at)
    route.chat_route(second.pk, at(46), hint=stale)  # the first chat's plan: its librarians asked

    assert fresh(second).step_index == 1
    assert _open_to(second) == {olga, pia}
    assert reads == [sorted([olga, pia])]


def _open_to(chat: Chat) -> set[int]:
    return set(Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True))


@pytest.mark.postgres
def test_routings_statements_are_prepared_once_per_connection_and_reused() -> None:
    """The statements routing sends by hand ask to be prepared (route._by_server, consortium.queries.asked):
    parsed and planned once per connection, then only bound. Django turns psycopg's preparing off unless
    the connection's prepare_threshold is set (consortium/settings.py); then every such statement was
    parsed and planned again at every step, a third of a step timeout's time (docs/benchmarks.md)."""
    first, second = _two_chats_sharing_a_partner("other", "home")

    statements = {"lock": lambda sql: sql.endswith("WHERE id = $1 FOR UPDATE"),
                  "its offers": lambda sql: sql.startswith("SELECT s.chat_id, a.*"),
                  "trace lines": lambda sql: sql.startswith("INSERT INTO routing_traceevent")}

    def runs() -> dict[str, int]:
        """How many times each of those statements has run prepared on this connection."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
            prepared = cursor.fetchall()
        return {name: sum(count for sql, count in prepared if test(sql)) for name, test in statements.items()}

    before = runs()
    for chat in (first, second):
        deadline = fresh(chat).deadline
        assert deadline is not None
        route.chat_route(chat.pk, deadline)
        assert fresh(chat).step_index == 1
    after = runs()

    # Each step's lock, its locked chat's offers and its trace lines went through one prepared statement each.
    assert {name: after[name] - before[name] for name in after} == {"lock": 2, "its offers": 2, "trace lines": 2}


def test_offers_closed_together_close_each_open_offer_once_and_the_first_close_counts() -> None:
    w = world()
    people = [staff(w.home, name) for name in ("ana", "ben", "cai")]
    a, b, c = (p.pk for p in people)
    one, two = start(w.consortium, T0, library_slug="home"), start(w.consortium, T0, library_slug="home")
    writes = Writes()
    writes.offers += [OfferMade(chat.pk, librarian, 70, "local", "home", "broadcast", at(1), None)
                      for chat in (one, two) for librarian in (a, b, c)]
    with transaction.atomic():
        writes.flush()
    writes = Writes()
    # Closed two steps later (serial 72): an offer still open belongs to the chat's current step, and a
    # closed one is written into the step it was closed in; one left open keeps the row it was made with.
    writes.closes += [
        Close(Offer.Status.WITHDRAWN, at(2), "away", one.pk, a, 72),
        Close(Offer.Status.WITHDRAWN, at(2), "away", two.pk, a, 72),
        Close(Offer.Status.EXPIRED, at(3), "expired", one.pk, b, 72),
        Close(Offer.Status.WITHDRAWN, at(4), "taken", one.pk, b, 72),  # already closed by the line before
        Close(Offer.Status.WITHDRAWN, at(2), "away", two.pk, c, 72),
    ]
    with transaction.atomic():
        writes.flush()
    rows = {(o.chat_id, o.librarian_id): (o.status, o.closed_at, o.reason, o.step_serial)
            for o in Offer.objects.filter(chat__in=[one, two])}
    assert rows == {
        (one.pk, a): (Offer.Status.WITHDRAWN, at(2), "away", 72),
        (two.pk, a): (Offer.Status.WITHDRAWN, at(2), "away", 72),
        (one.pk, b): (Offer.Status.EXPIRED, at(3), "expired", 72),
        (two.pk, b): (Offer.Status.OPEN, None, "", 70),
        (one.pk, c): (Offer.Status.OPEN, None, "", 70),
        (two.pk, c): (Offer.Status.WITHDRAWN, at(2), "away", 72),
    }


def test_a_routing_that_leaves_the_chat_as_it_was_writes_only_its_new_offers() -> None:
    # A librarian coming back adds an offer to each waiting chat of their queues: the chat's own row
    # (its step, deadline, state) is the same, and is not written again; a step that moves on is.
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    before = fresh(chat)
    omar = staff(w.home, "omar")
    go_online(omar, at(1))  # (routes the chat again: omar is offered it)
    assert open_offers(fresh(chat)) == {lena.pk, omar.pk}
    route.chat_route(chat.pk, at(2))  # nothing to change
    after = fresh(chat)
    assert open_offers(after) == {lena.pk, omar.pk}
    assert (after.version, after.step_index, after.step_serial, after.deadline) == (
        before.version, before.step_index, before.step_serial, before.deadline)
    assert after.deadline is not None
    route.chat_route(chat.pk, after.deadline + timedelta(seconds=1))  # its local step's wait is over
    moved = fresh(chat)
    assert moved.step_serial == before.step_serial + 1 and moved.version == before.version + 1


def test_an_offer_still_open_follows_the_chat_into_its_next_step_without_being_written_again() -> None:
    # Escalating writes no row for the offers still open (the server rewrote each, with every index
    # of the table, at every step): they are the new step's by being open. Whoever holds one may
    # accept it there, and declining it there counts in that step: not offered again until the next.
    w = world()
    lena, pia = staff(w.home, "lena"), staff(w.partner, "pia")
    go_online(lena, at(-60))
    go_online(pia, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(0))
    made = Offer.objects.get(chat=chat, librarian=lena)
    local = fresh(chat)
    assert open_offers(local) == {lena.pk} and local.deadline is not None
    entered = local.deadline + timedelta(seconds=1)
    route.chat_route(chat.pk, entered)  # the local step's wait is over
    partners = fresh(chat)
    assert partners.step_serial == local.step_serial + 1 and open_offers(partners) == {lena.pk, pia.pk}
    kept = Offer.objects.get(pk=made.pk)
    assert (kept.status, kept.step_serial, kept.step) == (Offer.Status.OPEN, made.step_serial, made.step)
    view = selectors.waiting_chat_view(partners)
    assert {o.librarian for o in view.offers} == {lena.pk, pia.pk} and view.offered == {lena.pk, pia.pk}

    offers.chat_decline(lena, chat.pk, entered + timedelta(seconds=1))
    declined = Offer.objects.get(pk=made.pk)
    assert (declined.status, declined.step_serial) == (Offer.Status.DECLINED, partners.step_serial)
    assert selectors.waiting_chat_view(fresh(chat)).declined == {lena.pk}
    route.chat_route(chat.pk, entered + timedelta(seconds=2))  # the same step still: lena not offered it again
    assert fresh(chat).step_serial == partners.step_serial and open_offers(fresh(chat)) == {pia.pk}
    assert offers.chat_accept(pia, chat.pk, entered + timedelta(seconds=3)).librarian_id == pia.pk
