"""Storing messages under concurrency: many writers on one chat at once, on real connections.

Each thread is a database connection of its own, as the sockets' threads of several web processes
are. On PostgreSQL this exercises the single-statement store (routing.message_store); on SQLite,
where writers take turns on the whole database, the ORM path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from django.db import connections

from routing.models import Message
from routing.services import chats, offers
from tests.routing.routing_helpers import T0, Sent, at, fresh, go_online, staff, start, world

pytestmark = pytest.mark.django_db(transaction=True)

# Concurrent writers need PostgreSQL (SQLite's test database serializes the threads): the embedded
# suite leaves these out (dev.py), the PostgreSQL suite runs them.
concurrent = pytest.mark.postgres


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; each thread closes its connection after."""
    gate = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        try:
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, c) for c in calls]]


@concurrent
def test_patron_and_librarian_writing_at_once_get_every_seq_once_in_order(sent: Sent) -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    offers.chat_accept(lena, chat.pk, at(1))
    first_seq = fresh(chat).last_seq + 1

    def writer(who: str, n: int) -> list[int]:
        seqs = []
        for i in range(n):
            message, created = chats.message_post(
                chat.pk, sender="librarian" if who == "lena" else "patron", body=f"{who} {i}",
                client_id=f"{who}-{i}", now=at(2), librarian=lena if who == "lena" else None)
            assert created
            seqs.append(message.seq)
        return seqs

    results = at_once([partial(writer, who, 25) for who in ("lena", "p1", "p2", "p3")])
    stored = list(Message.objects.filter(chat=chat, seq__gte=first_seq).order_by("seq").values_list("seq", "body"))
    assert [seq for seq, _ in stored] == list(range(first_seq, first_seq + 100))  # no gap, no repeat
    assert fresh(chat).last_seq == first_seq + 99
    for seqs in results:  # each writer's own messages in the order it sent them
        assert seqs == sorted(seqs)
    assert sorted(s for seqs in results for s in seqs) == [seq for seq, _ in stored]


@concurrent
def test_the_same_client_id_sent_on_two_connections_at_once_is_stored_once(sent: Sent) -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    for round_ in range(20):
        cid = f"twice-{round_}"

        def post(c: str = cid) -> tuple[Message, bool]:
            return chats.message_post(chat.pk, sender="patron", body="Hello?", client_id=c, now=at(2))

        outcomes = at_once([post] * 3)
        assert len({m.pk for m, _ in outcomes}) == 1, f"round {round_}: {outcomes}"
        assert sorted(created for _, created in outcomes) == [False, False, True]
        assert Message.objects.filter(chat=chat, client_id=cid).count() == 1
    seqs = list(Message.objects.filter(chat=chat).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # the refused duplicates left no hole


def test_a_message_posted_inside_a_callers_transaction_waits_for_its_commit(sent: Sent) -> None:
    """The file upload posts its message inside a transaction of its own: nobody may hear of the
    message before that transaction commits, and a refused duplicate must not break it."""
    from django.db import transaction

    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    chat = start(w.consortium, T0, library_slug="home")
    sent.clear()
    with transaction.atomic():
        message, created = chats.message_post(chat.pk, sender="patron", body="a file", client_id="f1",
                                                 now=at(1))
        assert created and sent.to_chat(chat, "message") == []
        again, created_again = chats.message_post(chat.pk, sender="patron", body="a file", client_id="f1",
                                                     now=at(2))
        assert not created_again and again.pk == message.pk
        assert Message.objects.filter(chat=chat).count() == 2  # the transaction is still usable
    assert [f["seq"] for f in sent.to_chat(chat, "message")] == [message.seq]
