"""Telling clients what happened: after commit, through the channel layer.

The channel layer is a doorbell, not the truth: it may drop an event. Every event a client must
not miss is either a message with a sequence number (the consumer fills gaps from the database)
or part of the state a reconnecting client is sent again (hello, joined).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash, decode_hosts
from django.db import transaction
from redis.exceptions import NoScriptError

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
        await _group_send_all(layer, outbox)


async def _group_send_all(layer: Any, items: Outbox) -> None:
    """Each (group, event) of `items`, in order. On Redis (channels_redis's pub/sub layer) they go as
    one command per Redis server that publishes them all (_publish): awaited one by one, a publish cost
    about 0.1 ms of CPU, and a broadcast offer is a publish per librarian of its step (100 publishes:
    11-17 ms one by one, 1.3-2.4 ms pipelined, docs/benchmarks.md session 14; a script, session 18).
    Events for another server (several Redis, VR_CHANNEL_REDIS_URLS) start a new run, so they leave
    in the order given."""
    loop_layer = _pubsub_loop_layer(layer) if len(items) > 1 else None
    if loop_layer is None:
        for group, event in items:
            await layer.group_send(group, event)
        return
    for shard, run in _runs(items, loop_layer._get_group_channel_name, loop_layer._get_shard, layer.serialize):
        await _publish(shard, run)


Run = list[tuple[str, bytes]]  # (channel, payload) to publish on one Redis, in order


def _runs(items: Outbox, channel_of: Callable[[str], str], server_of: Callable[[str], Any],
          serialize: Callable[[dict[str, Any]], bytes]) -> Iterator[tuple[Any, Run]]:
    """`items` as (server, run) in order: a new run where the next channel is another server's (several
    Redis), or the run is PIPELINE_MOST long."""
    run: Run = []
    server: Any = None
    serialized = _Serialized(serialize)
    for group, event in items:
        name = channel_of(group)
        target = server_of(name)
        if run and (target is not server or len(run) >= PIPELINE_MOST):
            yield server, run
            run = []
        server = target
        run.append((name, serialized(event)))
    if run:
        yield server, run


PIPELINE_MOST = 1000  # publishes in one command: a re-routed shared queue tells thousands, and Redis
# runs a script alone, so a run is kept short enough not to hold its other clients back


def _pubsub_loop_layer(layer: Any) -> Any:
    """channels_redis's pub/sub layer of this event loop, when `layer` is one (its internals as of the
    version in the lock file: tests/routing/test_events_sent.py goes through them); else None, and
    events go one by one."""
    return layer._get_layer() if isinstance(layer, RedisPubSubChannelLayer) else None


# Every (channel, payload) of a run published by Redis itself, in order, in one command: a broadcast
# offer is one payload for every librarian of a step, sent once. As PUBLISHes in a pipeline, redis-py
# packed each command and read each answer under a timeout of its own: 0.69 ms of CPU for a 50-librarian
# broadcast on session 18's machine (docs/benchmarks.md). ARGV: the channels, separated by spaces (a
# group name has none: Channels allows ASCII letters, digits, hyphens, underscores and periods), each
# channel's payload number, the same way, then the distinct payloads. Two arguments for all the names
# and numbers, not one each: redis-py encodes every argument in Python. No KEYS: channels are not keys.
_PUBLISH_RUN_LUA = """
local names = {}
for name in string.gmatch(ARGV[1], '%S+') do
  names[#names + 1] = name
end
local i = 0
for number in string.gmatch(ARGV[2], '%d+') do
  i = i + 1
  redis.call('PUBLISH', names[i], ARGV[2 + tonumber(number)])
end
return i
"""
_PUBLISH_RUN_SHA = hashlib.sha1(_PUBLISH_RUN_LUA.encode()).hexdigest()


def publish_run_args(run: Run) -> list[str | bytes]:
    """The script's ARGV for `run`: each payload sent once, however many channels it goes to."""
    numbers: dict[bytes, int] = {}
    for _, payload in run:
        numbers.setdefault(payload, len(numbers) + 1)
    names = " ".join(name for name, _ in run)
    if len(names.split()) != len(run):
        raise ValueError(f"a channel name with a space or none at all: {[name for name, _ in run]!r}")
    return [names, " ".join(str(numbers[payload]) for _, payload in run), *numbers]


class _Serialized:
    """The layer's serialize(event), once per frame: a broadcast's events are each their own dict, but
    hold one frame (route._apply, to_librarians). Lives for one send: the frames it has seen are alive."""

    def __init__(self, serialize: Callable[[dict[str, Any]], bytes]) -> None:
        self.serialize = serialize
        self.seen: dict[tuple[int, str], bytes] = {}

    def __call__(self, event: dict[str, Any]) -> bytes:
        if len(event) != 2 or "frame" not in event:  # with control instructions: as it is
            return self.serialize(event)
        key = (id(event["frame"]), event["type"])
        payload = self.seen.get(key)
        if payload is None:
            payload = self.seen[key] = self.serialize(event)
        return payload


async def _publish(shard: Any, run: Run) -> None:
    """What channels_redis's group_send does for each, in one command: under the shard's lock, on its
    connection."""
    args = publish_run_args(run)
    async with shard._lock:
        shard._ensure_redis()
        try:
            await shard._redis.evalsha(_PUBLISH_RUN_SHA, 0, *args)
        except NoScriptError:  # a Redis that has not seen it yet, or restarted since
            await shard._redis.script_load(_PUBLISH_RUN_LUA)
            await shard._redis.evalsha(_PUBLISH_RUN_SHA, 0, *args)


def send_all(items: Outbox) -> None:
    """Send what `collected` gathered, from a sync thread (into the enclosing collection, if any)."""
    if items:
        _send_all(items)


def _send_all(items: Outbox) -> None:
    outbox = getattr(_collecting, "outbox", None)
    if outbox is not None:
        outbox.extend(items)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, RedisPubSubChannelLayer) and (publisher := _publisher(layer)) is not None:
        # From this thread, on a connection of its own: no hop into an event loop and back (a step
        # timeout's events 0.42 -> 0.22 ms at the median, session 18). Waiting for Redis's answer keeps
        # what follows this commit after its events, as the hop did.
        publisher.publish(items)
        return

    async def deliver() -> None:
        await _group_send_all(layer, items)

    # One trip into an event loop for the lot: a trip costs about a millisecond, and a broadcast
    # offers a chat to every librarian of a shared queue at once.
    if _under_event_loop():
        async_to_sync(deliver)()  # a sync thread of daphne's or the timer's loop: sent from that loop
    else:
        _sender_loop().run(deliver())


def _under_event_loop() -> bool:
    """Whether this thread runs sync code for an event loop of this process (a view under daphne,
    database_sync_to_async), where async_to_sync hands the sending to that loop."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return (loop is not None and loop.is_running()
            and getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid())


class _SenderLoop:
    """An event loop on a thread of its own, for sending from threads that no event loop runs (a
    Celery worker, a management command, a benchmark). There async_to_sync starts a new thread and a
    new event loop for every call: about 1.5 ms of CPU a commit's events on this project's CI machine,
    and a new connection to Redis each time. Sends wait for their delivery, in order, as before."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vr-events", daemon=True)
        self.thread.start()
        self.pid = os.getpid()

    def run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self.loop).result()


_sender: _SenderLoop | None = None
_sender_guard = threading.Lock()


def _sender_loop() -> _SenderLoop:
    global _sender
    with _sender_guard:
        if _sender is None or _sender.pid != os.getpid():  # a forked child (Celery's prefork) starts its own
            _sender = _SenderLoop()
        return _sender


class _Publisher:
    """Redis clients of this process for publishing from sync threads, one per Redis server of the
    channel layer, made as channels_redis makes its own (CHANNEL_LAYERS' hosts), and publishing to the
    channels its pub/sub layer names and shards: its subscribers hear them as their own. A client is
    thread-safe (a connection per thread at a time, from its pool)."""

    def __init__(self, layer: RedisPubSubChannelLayer) -> None:
        config = layer._kwargs
        self.prefix = config.get("prefix", "asgi")
        hosts = decode_hosts(config.get("hosts"))
        # Each host a Redis URL, as CHANNEL_LAYERS is made here (consortium.settings). Any other kind (a
        # sentinel, say): no clients, and events go through the layer's own connections, from an event loop.
        urls = all(isinstance(host, dict) and set(host) == {"address"} for host in hosts)
        self.clients = [redis.Redis.from_url(host["address"]) for host in hosts] if urls else []
        self.serialize = layer.serialize
        self.pid = os.getpid()

    def publish(self, items: Outbox) -> None:
        for client, run in _runs(items, self._channel, self._client, self.serialize):
            _publish_sync(client, run)

    def _channel(self, group: str) -> str:
        return f"{self.prefix}__group__{group}"  # RedisPubSubLoopLayer._get_group_channel_name

    def _client(self, channel: str) -> redis.Redis:
        return self.clients[_consistent_hash(channel, len(self.clients))]  # RedisPubSubLoopLayer._get_shard


def _publish_sync(client: redis.Redis, run: Run) -> None:
    args = publish_run_args(run)
    try:
        client.evalsha(_PUBLISH_RUN_SHA, 0, *args)
    except NoScriptError:
        client.script_load(_PUBLISH_RUN_LUA)
        client.evalsha(_PUBLISH_RUN_SHA, 0, *args)


_publishers_guard = threading.Lock()


def _publisher(layer: RedisPubSubChannelLayer) -> _Publisher | None:
    """The layer's publisher for sync threads (kept on the layer: a test's new layer gets its own), or
    None if it has no clients. (Read from __dict__: the layer hands unknown attributes to its loop
    layer, which needs a running event loop.)"""
    with _publishers_guard:
        publisher = layer.__dict__.get("_vr_publisher")
        if publisher is None or publisher.pid != os.getpid():  # (a forked child, Celery's prefork: its own)
            publisher = layer.__dict__["_vr_publisher"] = _Publisher(layer)
        return publisher if publisher.clients else None


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
