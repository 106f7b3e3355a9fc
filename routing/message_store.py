"""Storing one chat message: the hot path of the whole service (every line anyone types).

`store` allocates the message's `seq` under the chat's row lock, inserts it and records the chat's
last activity, or says why not (no such chat, already stored under this `client_id`, not this
librarian's chat, chat over). routing.services.message_post decides what that means for the
caller and announces the message.

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
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery

from routing.models import LIVE_STATES, Chat, Message


@dataclass(frozen=True)
class Stored:
    """What storing a message did. `message_id` is None when nothing was stored: then `duplicate_of`
    (the message stored earlier under the same client_id), or the chat's `state` and `librarian_id`,
    say why."""

    state: str
    librarian_id: int | None
    patron_name: str
    duplicate_of: int | None
    message_id: int | None
    seq: int | None
    channel: str = "web"  # the chat's (docs/sms.md): a librarian's line in an SMS chat is also texted


def store(chat_id: str, *, sender: str, body: str, client_id: str | None, at: datetime, librarian_id: int | None,
          name: str | None, internal: bool, file_id: str | None) -> Stored | None:
    """Store the message if the chat is live and the sender may write in it; None if no such chat.

    `name` is the sender's display name (None: the chat's patron name)."""
    fields: dict[str, Any] = dict(chat_id=chat_id, sender=sender, body=body, client_id=client_id or None, at=at,
                  librarian_id=librarian_id, name=name, internal=internal, file_id=file_id)
    if connection.vendor == "postgresql":
        try:
            return _store_statement(**fields)
        except IntegrityError:
            # A duplicate client_id committed while this statement waited for the chat's lock.
            if not client_id:
                raise
            first = Message.objects.filter(chat_id=chat_id, sender=sender, client_id=client_id).values_list(
                "pk", flat=True).first()
            if first is None:
                raise
            return Stored(state="", librarian_id=None, patron_name="", duplicate_of=first, message_id=None, seq=None)
    return _store_orm(**fields)


def _may_write(sender: str, state: str, chat_librarian: int | None, librarian_id: int | None) -> bool:
    if state not in LIVE_STATES:
        return False
    return sender != Message.Sender.LIBRARIAN or (librarian_id is not None and chat_librarian == librarian_id)


def _store_orm(*, chat_id: str, sender: str, body: str, client_id: str | None, at: datetime,
               librarian_id: int | None, name: str | None, internal: bool, file_id: str | None) -> Stored | None:
    with transaction.atomic():
        chats = Chat.objects.select_for_update().filter(pk=chat_id)
        columns = ["state", "librarian_id", "last_seq", "patron_name", "channel"]
        if client_id:
            chats = chats.annotate(duplicate_of=Subquery(
                Message.objects.filter(chat=OuterRef("pk"), sender=sender, client_id=client_id).values("pk")[:1]))
            columns.append("duplicate_of")
        chat = chats.values(*columns).first()
        if chat is None:
            return None
        found = Stored(state=chat["state"], librarian_id=chat["librarian_id"], patron_name=chat["patron_name"],
                       duplicate_of=chat.get("duplicate_of"), message_id=None, seq=None, channel=chat["channel"])
        if found.duplicate_of is not None or not _may_write(sender, found.state, found.librarian_id, librarian_id):
            return found
        seq = chat["last_seq"] + 1
        message = Message.objects.create(chat_id=chat_id, seq=seq, sender=sender, librarian_id=librarian_id,
                                         name=chat["patron_name"] if name is None else name, body=body,
                                         client_id=client_id, at=at, internal=internal, file_id=file_id)
        Chat.objects.filter(pk=chat_id).update(last_seq=seq, last_activity_at=at)
        return Stored(state=found.state, librarian_id=found.librarian_id, patron_name=found.patron_name,
                      duplicate_of=None, message_id=message.pk, seq=seq, channel=found.channel)


def _statement() -> str:
    chat, message = Chat._meta.db_table, Message._meta.db_table
    live = ", ".join(f"'{state}'" for state in LIVE_STATES)
    return f"""
WITH chat AS (
    SELECT c.id, c.state, c.librarian_id, c.last_seq, c.patron_name, c.channel,
           (SELECT m.id FROM {message} m
             WHERE m.chat_id = c.id AND m.sender = %(sender)s AND m.client_id = %(client_id)s
             LIMIT 1) AS duplicate_of
      FROM {chat} c
     WHERE c.id = %(chat_id)s
       FOR UPDATE
), inserted AS (
    INSERT INTO {message} (chat_id, seq, sender, librarian_id, name, body, client_id, at, internal, file_id)
    SELECT id, last_seq + 1, %(sender)s, %(librarian_id)s, COALESCE(%(name)s, patron_name), %(body)s,
           %(client_id)s, %(at)s, %(internal)s, %(file_id)s
      FROM chat
     WHERE duplicate_of IS NULL AND state IN ({live})
       AND (%(sender)s <> '{Message.Sender.LIBRARIAN}' OR librarian_id = %(librarian_id)s)
    RETURNING id, seq
), updated AS (
    UPDATE {chat} c
       SET last_seq = inserted.seq, last_activity_at = %(at)s
      FROM chat, inserted
     WHERE c.id = chat.id
)
SELECT chat.state, chat.librarian_id, chat.patron_name, chat.duplicate_of, inserted.id, inserted.seq, chat.channel
  FROM chat LEFT JOIN inserted ON true
"""


_STATEMENT: str | None = None
# Not behind pgbouncer in transaction mode (VR_DB_TRANSACTION_POOLING, docs/scaling.md): there one
# connection's statements may reach different server sessions.
PREPARE: bool | None = True if settings.VR_DB_PREPARE else None


def _store_statement(**fields: Any) -> Stored | None:
    global _STATEMENT
    if _STATEMENT is None:
        _STATEMENT = _statement()
    # A savepoint only inside a caller's transaction, so that a refused duplicate leaves it usable;
    # on its own the statement is its own transaction (autocommit): one round trip. A prepared
    # statement on psycopg's own cursor (server-side binding): PostgreSQL parses and plans it once per
    # connection, not at every message (Django's cursors bind on the client, so every statement is new).
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_STATEMENT, fields, prepare=PREPARE)
            row = cursor.fetchone()
    if row is None:
        return None
    state, chat_librarian, patron_name, duplicate_of, message_id, seq, channel = row
    return Stored(state=state, librarian_id=chat_librarian, patron_name=patron_name, duplicate_of=duplicate_of,
                  message_id=message_id, seq=seq, channel=channel)
