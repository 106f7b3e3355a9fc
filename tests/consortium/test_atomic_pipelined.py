"""consortium.queries.atomic_pipelined: a transaction whose BEGIN and COMMIT travel with its statements
is a transaction all the same. What it writes is kept whole or not at all, its on-commit hooks run
only once it is committed, and the connection is as Django left it afterwards, whatever went wrong.
Both suites run these (on SQLite it is atomic() and pipelined(), which do nothing more)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from consortium.queries import atomic_pipelined
from routing.models import Chat, Message, TraceEvent
from routing.services.chats import _first_line_write
from routing.services.route import TraceLine, Writes
from tests.routing.routing_helpers import T0, at, start, world

pytestmark = pytest.mark.django_db(transaction=True)


def _lines(chat_id: str) -> list[str]:
    return list(TraceEvent.objects.filter(chat_id=chat_id, kind__startswith="t-").order_by("pk")
                .values_list("kind", flat=True))


def _written(chat_id: str, *kinds: str) -> None:
    writes = Writes()
    writes.traces += [TraceLine(chat_id, at(1), kind, {}) for kind in kinds]
    writes.flush()


def _as_django_left_it() -> None:
    """Out of every transaction, in autocommit, the driver's connection too; and it still works."""
    assert connection.get_autocommit() and not connection.in_atomic_block
    if connection.vendor == "postgresql":
        assert connection.connection.autocommit
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_what_it_writes_is_committed_and_its_hooks_run_after_the_commit() -> None:
    chat = start(world().consortium, T0, library_slug="home")
    seen_by_hook: list[list[str]] = []
    with atomic_pipelined():
        _written(chat.pk, "t-one", "t-two")
        transaction.on_commit(lambda: seen_by_hook.append(_lines(chat.pk)))
        assert seen_by_hook == []
    assert seen_by_hook == [["t-one", "t-two"]]
    assert _lines(chat.pk) == ["t-one", "t-two"]
    _as_django_left_it()
    with atomic_pipelined():  # and again, on the same connection
        _written(chat.pk, "t-three")
    assert _lines(chat.pk) == ["t-one", "t-two", "t-three"]


def test_a_write_refused_at_the_end_keeps_nothing_of_the_transaction_and_runs_no_hook() -> None:
    chat = start(world().consortium, T0, library_slug="home")
    hooks: list[str] = []

    def refused() -> None:
        with atomic_pipelined():
            _written(chat.pk, "t-lost")
            transaction.on_commit(lambda: hooks.append("ran"))
            # Line 1 is the question already: the unique (chat, seq) refuses it, with the COMMIT's answer.
            _first_line_write(chat, name="", body="again", at=at(1))

    with pytest.raises(IntegrityError):
        refused()
    assert _lines(chat.pk) == [] and hooks == []
    assert list(Message.objects.filter(chat=chat).values_list("seq", "body")) == [(1, chat.question)]
    _as_django_left_it()


def test_an_error_in_the_block_keeps_nothing_and_runs_no_hook() -> None:
    chat = start(world().consortium, T0, library_slug="home")
    hooks: list[str] = []

    def failing() -> None:
        with atomic_pipelined():
            _written(chat.pk, "t-lost")
            assert _lines(chat.pk) == ["t-lost"]  # a read in the block sees its writes
            transaction.on_commit(lambda: hooks.append("ran"))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        failing()
    assert _lines(chat.pk) == [] and hooks == []
    _as_django_left_it()


def test_inside_another_transaction_it_commits_nothing_by_itself() -> None:
    chat = start(world().consortium, T0, library_slug="home")

    def outer_fails() -> None:
        with transaction.atomic():
            with atomic_pipelined():
                _written(chat.pk, "t-inner")
            assert _lines(chat.pk) == ["t-inner"]
            raise RuntimeError("the outer transaction fails")

    with pytest.raises(RuntimeError):
        outer_fails()
    assert _lines(chat.pk) == []
    _as_django_left_it()


def test_a_failure_caught_inside_it_rolls_the_whole_transaction_back() -> None:
    chat = start(world().consortium, T0, library_slug="home")
    with atomic_pipelined():
        _written(chat.pk, "t-lost")
        try:
            with transaction.atomic(savepoint=False):  # its failure marks the whole transaction
                raise RuntimeError("inner")
        except RuntimeError:
            pass
        assert connection.needs_rollback
    assert _lines(chat.pk) == []
    _as_django_left_it()


def test_a_block_that_leaves_its_pipeline_saves_through_django_and_commits_whole() -> None:
    """Django's save() reads the row count of its UPDATE (and INSERTs when it is none): after leave()
    each statement has its answer before the next, and the transaction still commits once, at the end."""
    chat = start(world().consortium, T0, library_slug="home")
    hooks: list[str] = []
    with atomic_pipelined() as pipeline:
        _written(chat.pk, "t-before")
        pipeline.leave()
        assert pipeline.left
        chat.question = "Changed after leaving the pipeline"
        chat.save(update_fields=["question"])
        _written(chat.pk, "t-after")
        transaction.on_commit(lambda: hooks.append("ran"))
    assert hooks == ["ran"]
    assert _lines(chat.pk) == ["t-before", "t-after"]
    assert Chat.objects.get(pk=chat.pk).question == "Changed after leaving the pipeline"
    _as_django_left_it()

    def fails_after_leaving() -> None:
        with atomic_pipelined() as pipeline:
            _written(chat.pk, "t-lost")
            pipeline.leave()
            Chat.objects.filter(pk=chat.pk).update(question="lost too")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        fails_after_leaving()
    assert _lines(chat.pk) == ["t-before", "t-after"]
    assert Chat.objects.get(pk=chat.pk).question == "Changed after leaving the pipeline"
    _as_django_left_it()


def test_a_block_inside_another_transaction_that_leaves_its_pipeline_saves_through_django() -> None:
    """Nested in a transaction, the block is atomic() and pipelined(); leaving must leave that pipeline
    too, or save() reads no row count for its UPDATE and INSERTs the row again (a timer's idle end of an
    active chat, routed inside a caller's transaction, failed so on PostgreSQL)."""
    chat = start(world().consortium, T0, library_slug="home")
    with transaction.atomic():
        with atomic_pipelined() as pipeline:
            _written(chat.pk, "t-nested")
            pipeline.leave()
            assert pipeline.left
            chat.question = "Changed inside a caller's transaction"
            chat.save(update_fields=["question"])
        chat.question = "And saved whole again"
        chat.save()
    assert _lines(chat.pk) == ["t-nested"]
    assert Chat.objects.get(pk=chat.pk).question == "And saved whole again"
    _as_django_left_it()
