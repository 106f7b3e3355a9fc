"""The HTTP fallback transport for patrons whose network blocks WebSockets (docs/protocol.md).

A polling patron must count as connected exactly like a socket, so that `patron_grace` and the
librarian's "patron left" notice work the same. Rather than a second presence mechanism, each
polled chat gets a synthetic server process (`poll.<chat>`) holding one patron Connection. Every
poll heart-beats that process; when the patron stops polling, the heartbeat goes stale and the
timer's existing dead-process reaper (sweeps.dead_processes_reap, PROCESS_DEAD_AFTER) closes the
connection through presence.patron_disconnected, which starts patron_grace as for a closed socket.

Everything a poll returns is read from the database (the truth); the channel layer only wakes a
waiting poll early.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from routing import frames
from routing.models import LIVE_STATES, Chat, Connection, Message, ServerProcess
from routing.services import presence, sweeps

Frame = dict[str, Any]

# A poll waits this long for news before answering with nothing new; well under common proxy
# idle timeouts (often 30-60 s).
WAIT_SECONDS = 25.0
# While waiting, look at the database (and heart-beat) this often, in case the doorbell missed.
RECHECK_SECONDS = 3.0
MAX_FRAMES = 500


def poller_name(chat_id: str) -> str:
    return f"poll.{chat_id}"


def seen(chat_id: str, now: datetime) -> None:
    """This chat's patron is polling now: keep (or open again) its connection."""
    chat = Chat.objects.filter(pk=chat_id).first()
    if chat is None or chat.state not in LIVE_STATES:
        return  # an ended chat can still be read; nobody waits on its patron any more
    name = poller_name(chat_id)
    sweeps.process_heartbeat(name, now)
    if Connection.objects.filter(channel_name=name).exists():
        return
    # The reaper may have removed the process between the heartbeat and here: make sure it exists.
    ServerProcess.objects.get_or_create(pk=name, defaults={"started_at": now, "heartbeat_at": now})
    presence.patron_connected(chat, name, name, now)


def gone(chat_id: str, now: datetime) -> None:
    """The patron said goodbye (ended the chat): no need to wait for the heartbeat to go stale."""
    name = poller_name(chat_id)
    presence.patron_disconnected(name, now)
    with transaction.atomic():
        ServerProcess.objects.filter(pk=name).delete()


def state_key(state: Frame) -> str:
    # last_seq moves with every message (internal notes too); messages travel on their own.
    visible = {k: v for k, v in state.items() if k != "last_seq"}
    return hashlib.sha256(json.dumps(visible, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class News:
    frames: list[Frame]
    state_key: str
    after: int

    def as_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "state_key": self.state_key, "after": self.after}


def news(chat_id: str, after: int, known_state: str) -> News | None:
    """What this patron has not seen: the state (when it changed) and messages with seq > after."""
    chat = (Chat.objects.select_related("consortium", "home_library", "librarian__library", "librarian__user")
            .filter(pk=chat_id).first())
    if chat is None:
        return None
    state = frames.patron_state_frame(chat)
    key = state_key(state)
    out: list[Frame] = [] if key == known_state else [state]
    rows = (Message.objects.filter(chat_id=chat_id, seq__gt=after, internal=False)
            .select_related("file").order_by("seq")[:MAX_FRAMES])
    messages = [frames.message_frame(m, chat.channel) for m in rows]
    last = max([after, *(m["seq"] for m in messages)])
    return News(frames=out + messages, state_key=key, after=last)
