"""Reading one row cheaply; writing many in one round trip."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
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


_pipelines = threading.local()  # aliases in a pipeline, per thread (Django's connections are)
