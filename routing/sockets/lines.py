"""A chat line typed on a socket, stored and announced: routing.services.chats.message_post, from the
event loop where it can be.

On PostgreSQL the line is stored by one statement on a connection of the event loop
(routing.message_store.store_async, routing.loop_db) and announced at once: no database thread is
involved, which is most of what a message cost a web process (docs/benchmarks.md, "Cheaper
messages"). What needs more than that statement goes to a thread as before: a line sent again (the
earlier message is read), a librarian's line in a texting chat (it is texted too), a librarian's line
too long for a text (the chat's channel is read first). On SQLite (the embedded default) everything
runs in the thread.
"""

from __future__ import annotations

from django.utils import timezone

from libraries.models import StaffProfile
from routing import events, frames, mentions, message_store, threads
from routing.models import Message
from routing.services import chats
from routing.threads import in_thread


async def line_post(chat_id: str, *, sender: str, body: str, client_id: str | None,
                    librarian: StaffProfile | None = None, internal: bool = False,
                    counted: bool = False) -> tuple[Message, bool]:
    """As chats.message_post: (the message, True) stored now, (the earlier one, False) for a client_id
    seen before; raises its ServiceErrors (chats.RateLimited past the chat's rate, when `counted`)."""
    now = timezone.now()
    if not threads.CONCURRENT or chats.needs_sms_check(sender, body, internal):
        result: tuple[Message, bool] = await in_thread(chats.message_post)(
            chat_id, sender=sender, body=body, client_id=client_id, now=now, librarian=librarian,
            internal=internal, counted=counted)
        return result
    threads.backlog += 1  # the sockets' database work waiting, as in_thread counts it (routing.admission)
    try:
        stored = await message_store.store_async(
            chat_id, sender=sender, body=body, client_id=client_id, at=now,
            librarian_id=librarian.pk if librarian else None, name=librarian.display_name if librarian else None,
            internal=internal, file_id=None, counted=counted)
    finally:
        threads.backlog -= 1
    if stored is not None and stored.duplicate_of is not None:
        earlier: Message = await in_thread(chats.message_stored_earlier)(stored.duplicate_of, sender, librarian)
        return earlier, False
    message = chats.message_of(stored, chat_id, sender=sender, body=body, client_id=client_id, now=now,
                               librarian=librarian, internal=internal, file_id=None)
    if chats.texted(message):
        await in_thread(chats.message_texted)(message)
    if chats.mentions_possible(message) and librarian is not None:
        await in_thread(mentions.mentions_record)(message, librarian, now)
    await events.send_now(events.chat_group(chat_id), frames.message_frame(message), seq=message.seq,
                          internal=internal)
    return message, True
