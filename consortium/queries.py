"""Reading one row cheaply; writing many in one round trip."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field, Model, QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


def only_row(queryset: QuerySet[M]) -> M | None:
    """The row of a query by a unique key, or None: `.first()` without its ORDER BY.

    `.first()` orders an unordered query by its primary key, and to compile an ORDER BY Django hashes
    every selected column; with select_related over a few wide tables (a consortium's row holds
    dozens of settings) that cost more CPU than the rest of the query: two fifths of chat_lock's time
    in a sampling profile of 20 chat starts a second. A unique key needs no order."""
    return next(iter(queryset.order_by()[:1]), None)


# A text key no row has: the sentinel of a text key (a chat's id), found among a compiled query's parameters.
TEXT_KEY = "\x00vr-keyed-row\x00"


class _Keyed:
    """What KeyedRow, KeyedRows and KeyedValues share: the query built with the sentinels and compiled
    on first use, per database alias, and each call's keys bound into the kept plan.

    A query may differ by more than one key (`key_field` and `sentinel` then tuples, in the order of
    `build`'s arguments), and a key may appear more than once in it."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *, key_field: str | tuple[str, ...] = "pk",
                 sentinel: Any = TEXT_KEY) -> None:
        self.build = build
        self.key_fields = key_field if isinstance(key_field, tuple) else (key_field,)
        # Keys of the keys' types that no row has, each found among the compiled query's parameters.
        self.sentinels = sentinel if isinstance(key_field, tuple) else (sentinel,)
        assert len(self.sentinels) == len(self.key_fields)
        assert len(set(self.sentinels)) == len(self.sentinels)
        self._plans: dict[str, _RowPlan | None] = {}  # by database alias; None: not compilable once

    def _plan(self, using: str, *, first: bool) -> _RowPlan | None:
        if using not in self._plans:
            query = self.build(*self.sentinels)
            self._plans[using] = _RowPlan.of(query.order_by()[:1] if first else query, self.sentinels,
                                             self.key_fields, using)
        return self._plans[using]

    def _first(self, keys: tuple[Any, ...], using: str) -> Any:
        """The first row for `keys`: through the kept plan, or, for a query that could not be kept,
        through the ORM as only_row reads it."""
        plan = self._plan(using, first=True)
        if plan is None or not plan.accepts(keys):
            return only_row(self.build(*keys).using(using))
        return plan.row(keys, using)


class KeyedRow(_Keyed, Generic[M]):
    """`only_row(build(key))` for a query that differs from call to call by its key alone, compiled
    once per process and database instead of at every call.

    Django compiles a query anew each time it runs: for a lock with select_related over five wide
    tables (chat_lock: 136 columns) that was most of the call's CPU, and in a sampling profile of
    bench/ws_load.py's ramp (20 chat starts a second, librarians racing to accept) chat_lock alone was
    a sixth of a web process's time. Here the first call compiles `build(SENTINEL)` as usual and keeps
    its SQL, the places of the key among its parameters, and Django's own plan for building the
    instances (the select list, the related populators, the converters, the annotations); each call
    binds its key and runs that SQL on Django's cursor (so query logging, execute wrappers and
    transactions see it as any other). A query whose key cannot be told apart among its parameters is
    not kept: it is compiled each time, as before.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], *, key_field: str | tuple[str, ...] = "pk",
                 sentinel: Any = TEXT_KEY) -> None:
        super().__init__(build, key_field=key_field, sentinel=sentinel)  # here only to bind M from `build`

    def __call__(self, *keys: Any, using: str = DEFAULT_DB_ALIAS) -> M | None:
        found: M | None = self._first(keys, using)
        return found


class KeyedRows(_Keyed, Generic[M]):
    """`list(build(key))` for a query that differs from call to call by its key alone (its order and
    any slice kept as built), compiled once per process and database as KeyedRow is: the lists a
    reconnecting console is sent (its chats, its open offers), read at every connection of a storm."""

    def __init__(self, build: Callable[..., QuerySet[M]], *, key_field: str | tuple[str, ...] = "pk",
                 sentinel: Any = TEXT_KEY) -> None:
        super().__init__(build, key_field=key_field, sentinel=sentinel)  # here only to bind M from `build`

    def __call__(self, *keys: Any, using: str = DEFAULT_DB_ALIAS) -> list[M]:
        plan = self._plan(using, first=False)
        if plan is None or not plan.accepts(keys):
            return list(self.build(*keys).using(using))
        return plan.rows(keys, using)


class KeyedValues(_Keyed):
    """KeyedRow for a `values_list()` query: the first row's values as a tuple, or None."""

    def __call__(self, *keys: Any, using: str = DEFAULT_DB_ALIAS) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._first(keys, using)
        return found


@dataclass(frozen=True)
class _RowPlan:
    """What ModelIterable works out from a compiled query before it reads a row, kept."""

    model: type[Model]
    # Each key's field (its value is prepared as the lookup would) and its places among `params`.
    keys: tuple[tuple[Field[Any, Any], tuple[int, ...]], ...]
    sql: str
    params: list[Any]
    for_update: bool
    converters: list[tuple[int, tuple[list[Callable[..., Any]], Any]]]
    values: bool  # a values_list() query: the row is the answer; else a model instance, built as below
    init_list: list[str] = field(default_factory=list)
    start: int = 0
    end: int = 0
    populators: list[Any] = field(default_factory=list)
    annotations: list[tuple[str, int]] = field(default_factory=list)  # (attribute, column)
    # Each key's column's range, for an integer column (else None): a key outside it is the ORM's to
    # answer, which decides such a comparison without asking the database (SQLite cannot even take it).
    ranges: tuple[tuple[int | None, int | None] | None, ...] = ()

    @classmethod
    def of(cls, queryset: QuerySet[Any], sentinels: tuple[Any, ...], key_fields: tuple[str, ...],
           using: str) -> _RowPlan | None:
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        params = list(params)
        select, klass_info = compiler.select, compiler.klass_info
        rows = getattr(queryset, "_iterable_class", None)
        # A key's places: its sentinel's, as Django passed it (on PostgreSQL an integer compared with an
        # integer column comes wrapped as psycopg's Int4, an int). At a call the key is bound as its field
        # prepares it; one outside its column's range never is (`accepts`).
        places = [tuple(i for i, p in enumerate(params) if isinstance(p, type(s)) and p == s) for s in sentinels]
        if (not all(places) or rows not in (ModelIterable, ValuesListIterable)
                or (rows is ModelIterable and klass_info is None)
                or (rows is ValuesListIterable and (queryset.query.extra_select or queryset.query.annotation_select))
                or getattr(queryset, "_known_related_objects", None)
                or compiler.has_composite_fields([s[0] for s in select])):
            return None
        meta = queryset.model._meta
        fields = [meta.pk if name == "pk" else meta.get_field(name) for name in key_fields]
        assert all(isinstance(f, Field) for f in fields)
        plan = cls(
            model=queryset.model, keys=tuple(zip(fields, places, strict=True)),
            ranges=tuple(_integer_range(f, compiler.connection) for f in fields),
            sql=sql, params=params,
            for_update=bool(queryset.query.select_for_update and compiler.connection.features.has_select_for_update),
            converters=list(compiler.get_converters([s[0] for s in select[0:compiler.col_count]]).items()),
            values=rows is ValuesListIterable)
        if plan.values:  # the values as selected, in order
            return plan
        assert klass_info is not None
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return replace(plan, model=klass_info["model"], start=start, end=end,
                       init_list=[f[0].target.attname for f in select[start:end]],
                       populators=get_related_populators(klass_info, select, using),  # type: ignore[call-arg]
                       annotations=list(compiler.annotation_col_map.items()))

    def accepts(self, keys: tuple[Any, ...]) -> bool:
        """Can these keys be bound into the kept SQL? Not an integer outside its column's range."""
        for key, bounds in zip(keys, self.ranges, strict=False):
            if bounds is not None and isinstance(key, int):
                low, high = bounds
                if (low is not None and key < low) or (high is not None and key > high):
                    return False
        return True

    def row(self, keys: tuple[Any, ...], using: str) -> Any:
        found = self._fetch(keys, using, many=False)
        return None if not found else self._built(found[0], connections[using], using)

    def rows(self, keys: tuple[Any, ...], using: str) -> list[Any]:
        connection = connections[using]
        return [self._built(found, connection, using) for found in self._fetch(keys, using, many=True)]

    def _fetch(self, keys: tuple[Any, ...], using: str, *, many: bool) -> list[tuple[Any, ...]]:
        connection = connections[using]
        if self.for_update and connection.get_autocommit():  # as Django's compiler refuses it
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        if len(keys) != len(self.keys):
            raise TypeError(f"{len(self.keys)} keys expected, {len(keys)} given")
        params = list(self.params)
        for key, (key_field, places) in zip(keys, self.keys, strict=True):
            value = key_field.get_db_prep_value(key_field.get_prep_value(key), connection, prepared=True)
            for place in places:
                params[place] = value
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            if many:
                return list(cursor.fetchall())
            found = cursor.fetchone()
            return [] if found is None else [found]

    def _built(self, found: tuple[Any, ...], connection: Any, using: str) -> Any:
        row = list(found)
        for pos, (convs, expression) in self.converters:
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        if self.values:
            return tuple(row)
        obj = self.model.from_db(using, self.init_list, row[self.start:self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        for attribute, column in self.annotations:
            setattr(obj, attribute, row[column])
        return obj


def _integer_range(key: Any, connection: Any) -> tuple[int | None, int | None] | None:
    target = getattr(key, "target_field", key)  # a foreign key's: the column it points at
    try:
        low, high = connection.ops.integer_field_range(target.get_internal_type())
    except KeyError:
        return None  # not an integer column
    return low, high


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
    atomic() and pipelined(), and leaving the pipeline leaves that pipelined() (nothing on SQLite; inside
    another pipeline, nothing: that one is its caller's)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.in_atomic_block or in_pipeline(using):
        with transaction.atomic(using=using), ExitStack() as stack:
            stack.enter_context(pipelined(using))
            yield Pipeline(stack.close)
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
