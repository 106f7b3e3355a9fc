"""Storing one chat message: the hot path of the whole service (every line anyone types).

`store` allocates the message's `seq` under the chat's row lock, inserts it and records the chat's
last activity, or says why not (no such chat, already stored under this `client_id`, not this
librarian's chat, chat over, past the patron's message rate). routing.services.message_post
decides what that means for the caller and announces the message.

On PostgreSQL it is a single statement, so a single round trip in autocommit: the chat locked
(`FOR UPDATE`), the `client_id` check, the insert and the chat's update as one query with
data-modifying CTEs. The same work through the ORM took BEGIN, three statements and COMMIT: five
round trips and most of a web process's CPU per message (docs/benchmarks.md, "Real time").
Elsewhere (SQLite, the embedded default) the ORM does it in a transaction.

A message does not move the chat's idle deadline (`Chat.deadline`): when that deadline comes, the
timer ends the chat only if `last_activity_at` is an idle period old, and otherwise sets the deadline
from it (routing.services.route). So the chat's update touches no indexed column and PostgreSQL makes
it a heap-only (HOT) update, with no index entries written (the chats table keeps free space in each
page for this: fillfactor, migration routing 0013); moving the deadline at every message wrote an
entry into every index of the chats table.

The patron's message rate (consortium.ratelimit.CHAT_MESSAGE, socket and HTTP together) is counted
in the chat's own row by the same update (`rate_window`, `rate_count`): under the chat's lock, so
exact across processes, and without a Redis round trip per line as a `Limit` would cost. Texts are
never refused for rate: a refused socket or HTTP line is kept by the page, which may send it again;
a text would be lost.

The sockets store a message from the event loop (`store_async`, on PostgreSQL): the same statement
on a connection of routing.loop_db, without a hop to a database thread and back (docs/benchmarks.md,
"Cheaper messages").

Why the statement is safe under concurrency: the chat CTE locks the row, and PostgreSQL re-reads a
locked row that changed while it waited (READ COMMITTED), so `seq` follows the latest `last_seq`,
never a stale one. Only the `client_id` subquery may miss a duplicate committed by the transaction
it waited for (it reads the statement's snapshot); the unique constraint on (chat, sender,
client_id) then refuses the insert, and the caller gets the message stored first. Every other
insert into a chat's messages holds the same row lock (routing.services.common.system_message_post).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery

from consortium.ratelimit import CHAT_MESSAGE, parse_rate
from routing import loop_db
from routing.models import LIVE_STATES, Chat, Message


@dataclass(frozen=True)
class Stored:
    """What storing a message did. `message_id` is None when nothing was stored: then `duplicate_of`
    (the message stored earlier under the same client_id), `retry_after` (seconds: past the patron's
    message rate), or the chat's `state` and `librarian_id`, say why."""

    state: str
    librarian_id: int | None
    patron_name: str
    duplicate_of: int | None
    message_id: int | None
    seq: int | None
    channel: str = "web"  # the chat's (docs/sms.md): a librarian's line in an SMS chat is also texted
    retry_after: int = 0


def _fields(chat_id: str, *, sender: str, body: str, client_id: str | None, at: datetime, librarian_id: int | None,
            name: str | None, internal: bool, file_id: str | None, counted: bool) -> dict[str, Any]:
    limit, seconds = _rate()
    window = int(at.timestamp() // seconds)
    return dict(chat_id=chat_id, sender=sender, body=body, client_id=client_id or None, at=at,
                librarian_id=librarian_id, name=name, internal=internal, file_id=file_id,
                counted=counted and sender == Message.Sender.PATRON, limit=limit,
                window=window, window_ends=(window + 1) * seconds)


@cache
def _rate() -> tuple[int, int]:
    """CHAT_MESSAGE's rate, parsed once (not at every line)."""
    return parse_rate(CHAT_MESSAGE.rate)


def store(chat_id: str, *, sender: str, body: str, client_id: str | None, at: datetime, librarian_id: int | None,
          name: str | None, internal: bool, file_id: str | None, counted: bool = False) -> Stored | None:
    """Store the message if the chat is live and the sender may write in it; None if no such chat.

    `name` is the sender's display name (None: the chat's patron name). `counted`: a patron's line
    from the socket or HTTP, counted against the chat's message rate (refused past it)."""
    fields = _fields(chat_id, sender=sender, body=body, client_id=client_id, at=at, librarian_id=librarian_id,
                     name=name, internal=internal, file_id=file_id, counted=counted)
    if connection.vendor == "postgresql":
        try:
            return _store_statement(fields)
        except IntegrityError:
            # A duplicate client_id committed while this statement waited for the chat's lock.
            first = Message.objects.filter(chat_id=chat_id, sender=sender, client_id=client_id).values_list(
                "pk", flat=True).first() if client_id else None
            if first is None:
                raise
            return Stored(state="", librarian_id=None, patron_name="", duplicate_of=first, message_id=None, seq=None)
    return _store_orm(fields)


async def store_async(chat_id: str, *, sender: str, body: str, client_id: str | None, at: datetime,
                      librarian_id: int | None, name: str | None, internal: bool, file_id: str | None,
                      counted: bool = False) -> Stored | None:
    """`store` from the event loop (PostgreSQL only): one round trip, in autocommit."""
    fields = _fields(chat_id, sender=sender, body=body, client_id=client_id, at=at, librarian_id=librarian_id,
                     name=name, internal=internal, file_id=file_id, counted=counted)
    try:
        async with loop_db.connection() as conn:
            cursor = conn.cursor()
            await cursor.execute(_statement(), fields, prepare=True)
            row = await cursor.fetchone()
    except psycopg.errors.UniqueViolation:
        if not client_id:
            raise
        async with loop_db.connection() as conn:
            cursor = conn.cursor()
            await cursor.execute(_FIRST, {"chat_id": chat_id, "sender": sender, "client_id": client_id})
            first = await cursor.fetchone()
        if first is None:
            raise
        return Stored(state="", librarian_id=None, patron_name="", duplicate_of=first[0], message_id=None, seq=None)
    return _stored(row, fields)


def _may_write(sender: str, state: str, chat_librarians: tuple[int | None, int | None],
               librarian_id: int | None) -> bool:
    """A live chat; a librarian's line only from its librarian or the mentor who joined it."""
    if state not in LIVE_STATES:
        return False
    return sender != Message.Sender.LIBRARIAN or (librarian_id is not None and librarian_id in chat_librarians)


def _retry_after(fields: dict[str, Any]) -> int:
    return max(1, int(fields["window_ends"] - fields["at"].timestamp()))


def _store_orm(f: dict[str, Any]) -> Stored | None:
    with transaction.atomic():
        chats = Chat.objects.select_for_update().filter(pk=f["chat_id"])
        columns = ["state", "librarian_id", "second_librarian_id", "last_seq", "patron_name", "channel",
                   "rate_window", "rate_count"]
        if f["client_id"]:
            chats = chats.annotate(duplicate_of=Subquery(Message.objects.filter(
                chat=OuterRef("pk"), sender=f["sender"], client_id=f["client_id"]).values("pk")[:1]))
            columns.append("duplicate_of")
        chat = chats.values(*columns).first()
        if chat is None:
            return None
        found = Stored(state=chat["state"], librarian_id=chat["librarian_id"], patron_name=chat["patron_name"],
                       duplicate_of=chat.get("duplicate_of"), message_id=None, seq=None, channel=chat["channel"])
        librarians = (found.librarian_id, chat["second_librarian_id"])
        if found.duplicate_of is not None or not _may_write(f["sender"], found.state, librarians,
                                                            f["librarian_id"]):
            return found
        same_window = chat["rate_window"] == f["window"]
        if f["counted"] and same_window and chat["rate_count"] >= f["limit"]:
            return Stored(state=found.state, librarian_id=found.librarian_id, patron_name=found.patron_name,
                          duplicate_of=None, message_id=None, seq=None, channel=found.channel,
                          retry_after=_retry_after(f))
        seq = chat["last_seq"] + 1
        message = Message.objects.create(
            chat_id=f["chat_id"], seq=seq, sender=f["sender"], librarian_id=f["librarian_id"],
            name=chat["patron_name"] if f["name"] is None else f["name"], body=f["body"], client_id=f["client_id"],
            at=f["at"], internal=f["internal"], file_id=f["file_id"])
        changes: dict[str, Any] = {"last_seq": seq, "last_activity_at": f["at"]}
        if f["counted"]:
            changes.update(rate_window=f["window"], rate_count=chat["rate_count"] + 1 if same_window else 1)
        Chat.objects.filter(pk=f["chat_id"]).update(**changes)
        return Stored(state=found.state, librarian_id=found.librarian_id, patron_name=found.patron_name,
                      duplicate_of=None, message_id=message.pk, seq=seq, channel=found.channel)


def _build_statement() -> str:
    chat, message = Chat._meta.db_table, Message._meta.db_table
    live = ", ".join(f"'{state}'" for state in LIVE_STATES)
    return f"""
WITH chat AS (
    SELECT c.id, c.state, c.librarian_id, c.second_librarian_id, c.last_seq, c.patron_name, c.channel,
           (SELECT m.id FROM {message} m
             WHERE m.chat_id = c.id AND m.sender = %(sender)s AND m.client_id = %(client_id)s
             LIMIT 1) AS duplicate_of,
           (%(counted)s AND c.rate_window = %(window)s AND c.rate_count >= %(limit)s) AS limited,
           CASE WHEN c.rate_window = %(window)s THEN c.rate_count + 1 ELSE 1 END AS rate_count
      FROM {chat} c
     WHERE c.id = %(chat_id)s
       FOR UPDATE
), inserted AS (
    INSERT INTO {message} (chat_id, seq, sender, librarian_id, name, body, client_id, at, internal, file_id)
    SELECT id, last_seq + 1, %(sender)s, %(librarian_id)s, COALESCE(%(name)s, patron_name), %(body)s,
           %(client_id)s, %(at)s, %(internal)s, %(file_id)s
      FROM chat
     WHERE duplicate_of IS NULL AND NOT limited AND state IN ({live})
       AND (%(sender)s <> '{Message.Sender.LIBRARIAN}' OR librarian_id = %(librarian_id)s
            OR second_librarian_id = %(librarian_id)s)
    RETURNING id, seq
), updated AS (
    UPDATE {chat} c
       SET last_seq = inserted.seq, last_activity_at = %(at)s,
           rate_window = CASE WHEN %(counted)s THEN %(window)s ELSE c.rate_window END,
           rate_count = CASE WHEN %(counted)s THEN chat.rate_count ELSE c.rate_count END
      FROM chat, inserted
     WHERE c.id = chat.id
)
SELECT chat.state, chat.librarian_id, chat.patron_name, chat.duplicate_of, inserted.id, inserted.seq, chat.channel,
       chat.limited
  FROM chat LEFT JOIN inserted ON true
"""


_STATEMENT: str | None = None
_FIRST = (f"SELECT id FROM {Message._meta.db_table}"
          " WHERE chat_id = %(chat_id)s AND sender = %(sender)s AND client_id = %(client_id)s LIMIT 1")
# prepare=True: parsed and planned once per connection. Behind pgbouncer in transaction mode, where one
# connection's statements may reach different server sessions, the connections' prepare_threshold is None
# (consortium/settings.py, docs/scaling.md) and psycopg then prepares nothing: that is the one switch.


def _statement() -> str:
    global _STATEMENT
    if _STATEMENT is None:
        _STATEMENT = _build_statement()
    return _STATEMENT


def _store_statement(fields: dict[str, Any]) -> Stored | None:
    # A savepoint only inside a caller's transaction, so that a refused duplicate leaves it usable;
    # on its own the statement is its own transaction (autocommit): one round trip. A prepared
    # statement on psycopg's own cursor (server-side binding): PostgreSQL parses and plans it once per
    # connection, not at every message (Django's cursors bind on the client, so every statement is new).
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_statement(), fields, prepare=True)
            row = cursor.fetchone()
    return _stored(row, fields)


def _stored(row: tuple[Any, ...] | None, fields: dict[str, Any]) -> Stored | None:
    if row is None:
        return None
    state, chat_librarian, patron_name, duplicate_of, message_id, seq, channel, limited = row
    return Stored(state=state, librarian_id=chat_librarian, patron_name=patron_name, duplicate_of=duplicate_of,
                  message_id=message_id, seq=seq, channel=channel,
                  retry_after=_retry_after(fields) if limited and duplicate_of is None and state in LIVE_STATES else 0)
