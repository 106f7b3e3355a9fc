"""Reading one row cheaply; writing many in one round trip."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def only_row(queryset: QuerySet[M]) -> M | None:
    """The row of a query by a unique key, or None: `.first()` without its ORDER BY.

    `.first()` orders an unordered query by its primary key, and to compile an ORDER BY Django hashes
    every selected column; with select_related over a few wide tables (a consortium's row holds
    dozens of settings) that cost more CPU than the rest of the query: two fifths of chat_lock's time
    in a sampling profile of 20 chat starts a second. A unique key needs no order."""
    return next(iter(queryset.order_by()[:1]), None)


@contextmanager
def pipelined(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """The block's statements sent without waiting for each one's answer (psycopg's pipeline mode, on
    PostgreSQL; elsewhere nothing changes): writes go together, one round trip for all, at the next
    read or at the end of the block. Reads work as usual. An error in a write is raised at that
    point, as Django's DatabaseError (the transaction is then aborted, as after any error).

    Only for statements whose row count nobody reads: psycopg knows it once the answers are in,
    after the statement returned (Django's save(update_fields=...) reads it, and would fail).
    A block inside another is part of it (psycopg would sync at its edges)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or getattr(_pipelines, using, False):
        yield
        return
    connection.ensure_connection()
    setattr(_pipelines, using, True)
    try:
        with connection.wrap_database_errors, connection.connection.pipeline():
            yield
    finally:
        setattr(_pipelines, using, False)


class Pipeline:
    """The pipeline of an `atomic_pipelined` block, which the block may leave early."""

    def __init__(self, close: Callable[[], None] | None = None) -> None:
        self._close = close

    @property
    def left(self) -> bool:
        return self._close is None

    def leave(self) -> None:
        """From here on each statement waits for its answer, as outside a pipeline: for a block that
        turns out to need row counts (Django's `save()` reads them: an UPDATE in a pipeline reports
        none, and save() then INSERTs). The transaction goes on; atomic() commits it at the end."""
        close, self._close = self._close, None
        if close is not None:
            close()


@contextmanager
def atomic_pipelined(using: str = DEFAULT_DB_ALIAS) -> Iterator[Pipeline]:
    """`transaction.atomic()` around `pipelined()`, with the transaction's BEGIN sent together with the
    block's first statement and its COMMIT together with the block's last writes.

    In a transaction psycopg sends BEGIN alone and waits for its answer before the first statement
    (in a pipeline too: it syncs there), and Django's COMMIT at the end of atomic() is another round
    trip after the pipeline's last. A new chat took five round trips, two of them for BEGIN and
    COMMIT alone (docs/routing.md, "What a decision costs"). Here psycopg's connection stays in
    autocommit for the block, so that it sends no BEGIN of its own, and the block queues BEGIN and
    COMMIT as statements of the pipeline, while Django's bookkeeping (on_commit hooks, savepoints, the
    rollback after an error) is that of atomic(): the hooks run once the COMMIT has been answered, and
    an error anywhere, the COMMIT's own included, rolls back as usual.

    Only as the outermost transaction on PostgreSQL; nested in another, or elsewhere (SQLite), it is
    atomic() and pipelined(), and leaving the pipeline leaves nothing."""
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.in_atomic_block or in_pipeline(using):
        with transaction.atomic(using=using), pipelined(using):
            yield Pipeline()
        return
    with transaction.atomic(using=using):
        raw = connection.connection  # (atomic has connected)
        with connection.wrap_database_errors:
            raw.autocommit = True  # idle, outside a pipeline: set locally, no round trip
        with connection.wrap_database_errors, ExitStack() as stack:
            stack.enter_context(raw.pipeline())
            setattr(_pipelines, using, True)
            stack.callback(setattr, _pipelines, using, False)  # on leave() too
            pipeline = Pipeline(stack.close)
            raw.execute("BEGIN")
            yield pipeline
            if not pipeline.left and not connection.needs_rollback:  # (else atomic commits or rolls back)
                raw.execute("COMMIT")
        if raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            # Committed: as atomic left it, so that its own commit finds nothing to do (psycopg sends no
            # COMMIT outside a transaction). Not committed (the pipeline left, or an error): atomic's
            # commit or rollback sends it, as psycopg does in autocommit inside a transaction.
            with connection.wrap_database_errors:
                raw.autocommit = False


def asked(sql: str, params: list[Any], *, prepare: bool | None = None, using: str = DEFAULT_DB_ALIAS
          ) -> Callable[[], list[tuple[Any, ...]]]:
    """One statement sent now on psycopg's own cursor, in the caller's transaction, and its rows read
    when the returned function is called. In a pipeline it is only queued: read after later
    statements (a COMMIT), its answer comes with theirs instead of in a round trip of its own; the
    cursor keeps it when the pipeline syncs, however that ends. (Django's cursor closes with its
    block, so it cannot wait for a later read.)"""
    connection = connections[using]
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    with connection.wrap_database_errors:
        cursor.execute(sql, params, prepare=prepare)

    def rows() -> list[tuple[Any, ...]]:
        with connection.wrap_database_errors, cursor:
            return cursor.fetchall()

    return rows


def in_pipeline(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Is this thread's connection in a pipeline (pipelined, atomic_pipelined) on PostgreSQL?"""
    return bool(getattr(_pipelines, using, False))


_pipelines = threading.local()  # aliases in a pipeline, per thread (Django's connections are)
