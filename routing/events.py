"""Telling clients what happened: after commit, through the channel layer.

The channel layer is a doorbell, not the truth: it may drop an event. Every event a client must
not miss is either a message with a sequence number (the consumer fills gaps from the database)
or part of the state a reconnecting client is sent again (hello, joined).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

Frame = dict[str, Any]


def librarian_group(librarian_id: int) -> str:
    return f"librarian.{librarian_id}"


def chat_group(chat_id: str) -> str:
    # Channel-layer group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    return f"chat.{chat_id}"


def watch_group(chat_id: str) -> str:
    """The staff watching a chat (routing.services.mentoring): its trace as it grows. Never a patron:
    the chat's own group holds the patron's sockets too."""
    return f"watch.{chat_id}"


def _send(group: str, event: dict[str, Any]) -> None:
    """The boundary to the channel layer: one event to one group (tests record frames here)."""
    _send_all([(group, event)])


Outbox = list[tuple[str, dict[str, Any]]]
_collecting = threading.local()


@contextmanager
def collected(outbox: Outbox) -> Iterator[None]:
    """Inside: this thread's events go into `outbox` instead of out, for send_collected to send.

    For the sockets' database threads (routing.threads): there, sending from the thread meant a hop
    back into the event loop per commit (async_to_sync) with the thread blocked meanwhile, one of the
    three that every socket of the process shares. The events are still only collected after commit
    (transaction.on_commit), so nothing is announced that did not happen."""
    previous = getattr(_collecting, "outbox", None)
    _collecting.outbox = outbox
    try:
        yield
    finally:
        _collecting.outbox = previous


async def send_collected(outbox: Outbox) -> None:
    layer = get_channel_layer()
    if layer is not None:
        for group, event in outbox:
            await layer.group_send(group, event)


def _send_all(items: Outbox) -> None:
    outbox = getattr(_collecting, "outbox", None)
    if outbox is not None:
        outbox.extend(items)
        return
    layer = get_channel_layer()
    if layer is None:
        return

    async def deliver() -> None:
        for group, event in items:
            await layer.group_send(group, event)

    # One trip into an event loop for the lot: async_to_sync costs about a millisecond a call, and
    # a broadcast offers a chat to every librarian of a shared queue at once.
    async_to_sync(deliver)()


_LAYER_SEND = _send


def _deliver(items: list[tuple[str, dict[str, Any]]]) -> None:
    if _send is _LAYER_SEND:
        _send_all(items)
    else:
        for group, event in items:  # _send was replaced (a test records frames there): honour it
            _send(group, event)


async def send_now(group: str, frame: Frame, **control: Any) -> None:
    """`publish` from the event loop, for what has committed already (a message stored in autocommit
    by routing.message_store.store_async): sent at once."""
    event = {"type": "vr.event", "frame": frame, **control}
    if _send is _LAYER_SEND:
        await send_collected([(group, event)])
    else:  # _send was replaced (a test records frames there): honour it
        _send(group, event)


def publish(group: str, frame: Frame, **control: Any) -> None:
    """Send `frame` to every socket in `group` once the surrounding transaction commits.

    `control` carries instructions for the consumers themselves (join or leave a chat's group),
    which are never sent to a client.
    """
    event = {"type": "vr.event", "frame": frame, **control}
    transaction.on_commit(lambda: _send(group, event))


def to_librarian(librarian_id: int, frame: Frame, **control: Any) -> None:
    publish(librarian_group(librarian_id), frame, **control)


def to_librarians(frames: list[tuple[int, Frame]]) -> None:
    """to_librarian for each (librarian, frame), in order, sent together once the transaction commits."""
    if frames:
        items = [(librarian_group(librarian_id), {"type": "vr.event", "frame": frame})
                 for librarian_id, frame in frames]
        transaction.on_commit(lambda: _deliver(items))


def to_chat(chat_id: str, frame: Frame, **control: Any) -> None:
    publish(chat_group(chat_id), frame, **control)
