"""Fault-test harness: the production stack under a load of concurrent chats whose clients resume by
themselves, a ledger of everything they sent and saw, and the checks a fault test makes afterwards.

The clients behave as the real ones do (routing/static/routing/patron/chat.js, staff/socket.js and
staff/console.js, docs/protocol.md), never as the test would like:

- a patron keeps an outbox of messages not yet acknowledged (the server echoes a stored message,
  matched by `client_id`); when its socket closes it reconnects with the page's backoff (1 s,
  doubling, at most 15 s), sends `join` with `after` = the last seq it saw, and on `joined` sends
  its whole outbox again with the same `client_id`s;
- a librarian (a bot at a desk) reconnects with the console's backoff and jitter (0.5 s doubling,
  at most 30 s); on every `hello` it joins each chat the server says it holds with `after` = the
  last seq it has of that chat and sends its unacknowledged replies again; it accepts every offer
  (unless told to hold them: "slow" librarians keep chats waiting) and answers every patron message.

Where a browser would reach the service through a load balancer, a client is given every web
process: it connects to its own first and, when that one refuses the connection, to the next (as
nginx does with `proxy_next_upstream error`). Nothing in a test ever reconnects a client.

The ledger lets a test check, after a fault: every message acknowledged to its sender is stored in
PostgreSQL with its body and reached the other side; on every socket, each chat's seqs came one by
one (none repeated, none skipped; a line sent again whose seq the socket had already is answered by
the contract's echo marked `resent`, checked apart); every client got back to a joined state.
Helpers check that waiting chats are routed again (`waiting_chats`), that each passed deadline
fired once (`deadlines_fired_once`, from the routing trace), and what /healthz said during the fault
(`HealthLog`).

The load runs in a thread of its own with its own event loop, so tests are plain functions that
apply a fault (kill, stop, restart) and then wait for the load to recover. Any stack will do
(`Load(stack, ...)`): tests that need private PostgreSQL or Redis servers build their own Stack
with their own URLs and point a Load at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import resource
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.live.stack import Stack

CONSORTIUM = "faults"
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per /healthz poll and chat start otherwise
Frame = dict[str, Any]
T = TypeVar("T")
clock = time.monotonic



def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the world and the stack ----------------------------------------------------------------------


def fault_world(libraries: int = 10, librarians_per_library: int = 2, capacity: int = 15,
                local_timeout: int = 4) -> dict[str, Any]:
    """`libraries` libraries whose chats are answered at once (a one-step plan: nothing escalates),
    and a `wait` library whose chats wait: its librarian and its partner's hold their offers until a
    test lets them accept, so the chats sit in the queue and pass the local step's deadline
    (`local_timeout`) into the partners step, where they wait without a deadline."""
    libs: list[dict[str, Any]] = [
        {"slug": f"f{i:02d}", "route": [{"name": "local", "queues": [f"f{i:02d}"]}]} for i in range(libraries)]
    libs.append({"slug": "wait", "partners": ["waitp"], "route": [
        {"name": "local", "queues": ["wait"], "wait": local_timeout}, {"name": "partners", "queues": ["waitp"]}]})
    libs.append({"slug": "waitp", "route": [{"name": "local", "queues": ["waitp"]}]})
    staff = [{"username": f"f-l{i:02d}-{k}", "library": f"f{i:02d}", "capacity": capacity}
             for i in range(libraries) for k in range(librarians_per_library)]
    staff += [{"username": "f-slow-wait", "library": "wait", "capacity": 200},
              {"username": "f-slow-waitp", "library": "waitp", "capacity": 200}]
    staff.append({"username": "f-coord", "library": "f00", "role": "coordinator"})
    return {
        "consortium": {"slug": CONSORTIUM, "name": "Faults", "timezone": "America/New_York", "settings": {
            # Nothing but the `wait` library's local step may time out during a run: the other
            # deadlines are far away, so a deadline firing in a test is one the test made.
            "local_timeout": local_timeout, "partner_timeout": 3600, "offer_timeout": 3600, "max_wait": 7200,
            "reconnect_grace": 60, "patron_grace": 300, "idle_timeout": 7200, "librarian_capacity": capacity}},
        "queues": [{"slug": "statewide", "name": "Statewide", "hours": "always"}],
        "libraries": [{"name": f"{lib['slug'].title()} Library", "kind": "public", "timezone": "America/New_York",
                       "hours": "always", **lib} for lib in libs],
        "staff": [{"name": s["username"].upper(), "email": f"{s['username']}@example.org", "role": "librarian", **s}
                  for s in staff],
    }


def prepare_stack(worlds: list[dict[str, Any]], server: str | None = None, admission: bool = False,
                  **env_over: str) -> Stack:
    """Stack.prepare, with the database named after DATABASE_URL's own (`<name>_f_<pid>_<hex>`), so
    that runs sharing a PostgreSQL server keep to their own names, and no limit on chat starts (the
    load starts 200 at once). `server` (a URL without a database) and env_over (REDIS_URL=...) point
    it at private servers. `admission`: chat starts shed past capacity, as in production (the overload
    test); the other fault tests keep every start (Stack.prepare)."""
    own = os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0] or "vr"
    return Stack.prepare(worlds, server, db_prefix=f"{own}_f", admission=admission,
                         **{"CHAT_START_RATE": "1000000/m", **env_over})


def staff_sessions(stack: Stack) -> dict[str, str]:
    return stack.sign_in_all("f-")


def mail_count(stack: Stack, recipient: str) -> int:
    """Mails to `recipient` written by the file backend (EMAIL_URL=file://...): one `To:` line each."""
    folder = Path(stack.env["EMAIL_URL"].removeprefix("file://"))
    if not folder.exists():
        return 0
    pattern = re.compile(rf"^To: {re.escape(recipient)}$", re.M)
    return sum(len(pattern.findall(f.read_text(errors="replace"))) for f in folder.iterdir() if f.is_file())


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 0.5) -> float:
    """Poll `check` until it holds; the seconds it took. A live wait with a deadline, never a fixed sleep."""
    t0 = clock()
    while not check():
        if clock() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)
    return clock() - t0


# --- /healthz during a fault ----------------------------------------------------------------------


@dataclass
class Health:
    at: float  # the poll was sent
    web: str
    status: int | None  # None: no answer at all (the process is down)
    body: dict[str, Any] | None
    answered: float  # the answer (or the failure) came


class HealthLog:
    """Polls every web process's /healthz twice a second, from a thread, and keeps every answer."""

    def __init__(self, stack: Stack, every: float = 0.5) -> None:
        self.stack = stack
        self.every = every
        self.records: list[Health] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz", daemon=True)

    def start(self) -> HealthLog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=8) as http:
            while not self._stop.is_set():
                t = clock()
                for web, port in sorted(self.stack.ports.items()):
                    at = clock()
                    try:
                        r = http.get(f"http://127.0.0.1:{port}/healthz")
                        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                        self.records.append(Health(at, web, r.status_code, body, clock()))
                    except (httpx.HTTPError, ValueError):
                        self.records.append(Health(at, web, None, None, clock()))
                self._stop.wait(max(0.0, self.every - (clock() - t)))

    def between(self, t0: float, t1: float, web: str | None = None) -> list[Health]:
        """The polls sent *and answered* within [t0, t1]. A poll sent just before a server came back
        can be answered after it, rightly healthy: the Redis client retries a refused connection with
        a backoff of a second or more (a 200 seen 'during' a Redis outage in CI, sent 0.6 s before its end)."""
        return [h for h in list(self.records)
                if t0 <= h.at and h.answered <= t1 and (web is None or h.web == web)]

    def summary(self, t0: float, t1: float) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for h in self.between(t0, t1):
            out[h.web][str(h.status) if h.status else "no answer"] += 1
        return dict(out)


# --- the ledger ------------------------------------------------------------------------------------


_SENDING_AGAIN: set[asyncio.Task[None]] = set()


@dataclass
class Sent:
    chat: str
    sender: str  # patron | librarian
    client_id: str
    body: str
    at: float
    acked_seq: int | None = None
    refused: str | None = None  # the server's error for it: only for a chat that had ended (see Librarian)


class Ledger:
    def __init__(self) -> None:
        self.sent: dict[str, Sent] = {}  # client_id (unique in a run) -> what was sent
        self.got: dict[tuple[str, str], set[str]] = defaultdict(set)  # (chat, receiving side) -> client_ids
        self.problems: list[str] = []
        self.counts: Counter[str] = Counter()
        self.seq_problems: Counter[str] = Counter()

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    def acked(self) -> list[Sent]:
        return [s for s in list(self.sent.values()) if s.acked_seq is not None]

    def unacked(self) -> list[Sent]:
        return [s for s in list(self.sent.values()) if s.acked_seq is None and s.refused is None]

    def undelivered(self, chats: set[str] | None = None) -> list[Sent]:
        """Acknowledged messages the other side has not received (only chats a librarian holds)."""
        other = {"patron": "librarian", "librarian": "patron"}
        return [s for s in self.acked() if (chats is None or s.chat in chats)
                and s.client_id not in self.got.get((s.chat, other[s.sender]), ())]


class SeqWatch:
    """One socket's view of one chat: message seqs must come one by one from `after` + 1.

    No repeat is allowed: a line sent again whose seq this socket sent already is answered with the
    stored message marked `resent` (Watch.ack checks those), never an unmarked delivery. On a staff
    socket, a live message arriving between the server's `hello` and its answer to the console's
    `join {after}` once came before the history and again in it; the consumer now keeps such messages
    back until the history is sent (routing.sockets.base, `hold_back`), and this is held to it strictly.
    After `assigned` live messages flow at once and the join's history leaves them out: there any
    order is taken while the join window is open, each seq once, none missing when it closes. The
    "join window" (from a `join` to the server's answer to the `ping` sent right after it) marks when
    the history is complete: then every seq up to the last one seen must have come."""

    def __init__(self, ledger: Ledger, who: str, chat: str, after: int, *, window: bool = False,
                 ordered: bool = True) -> None:
        self.ledger, self.who, self.chat, self.after, self.last = ledger, who, chat, after, after
        self.resent: set[str] = set()  # client_ids this socket sent again: answered by their echo (`resent` if seen)
        self.received: set[int] = set()
        self.window = window
        self.ordered = ordered  # False: any order while the join window is open (after `assigned`)

    def see(self, frame: Frame, own_sender: str) -> None:
        seq = int(frame["seq"])
        ledger = self.ledger
        if seq in self.received or seq <= self.after:
            # None tolerated: a socket that sent the seq already answers a line sent again with the
            # stored message marked `resent`, which goes to Watch.ack (docs/protocol.md; issue 14.3).
            ledger.seq_problems["seq repeated"] += 1
            ledger.problem(f"{self.who} chat {self.chat}: seq {seq} repeated (last {self.last})")
        elif seq != self.last + 1 and (self.ordered or not self.window):
            ledger.seq_problems["seq skipped" if seq > self.last else "seq out of order"] += 1
            ledger.problem(f"{self.who} chat {self.chat}: seq {seq} after {self.last}")
        self.received.add(seq)
        self.last = max(self.last, seq)

    def ack(self, frame: Frame) -> None:
        """A `resent` echo: only for a line this socket sent again, whose seq it has received already."""
        seq, cid = int(frame.get("seq") or 0), frame.get("client_id")
        if cid not in self.resent or (seq not in self.received and seq > self.after):
            self.ledger.problem(f"{self.who} chat {self.chat}: ack of {cid} (seq {seq}) for a line not seen")
        self.resent.discard(str(cid))
        self.ledger.counts["echo of a message sent again"] += 1

    def close_window(self) -> None:
        self.window = False
        missing = set(range(self.after + 1, self.last + 1)) - self.received
        if missing:
            self.ledger.seq_problems["seq missing after a join"] += len(missing)
            self.ledger.problem(f"{self.who} chat {self.chat}: seqs {sorted(missing)[:10]} never came after join")


# --- clients ----------------------------------------------------------------------------------------


class Balancer:
    """The web processes as a load balancer sees them: try the preferred one, then the next."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def bases(self) -> list[str]:
        return [self.stack.base(w) for w in sorted(self.stack.ports)]

    async def open(self, path: str, prefer: int, headers: dict[str, str]) -> tuple[ClientConnection, str]:
        bases = self.bases()
        last: BaseException | None = None
        for k in range(len(bases)):
            base = bases[(prefer + k) % len(bases)]
            try:
                ws = await connect("ws" + base[4:] + path, additional_headers={"Origin": base, **headers},
                                   open_timeout=60, max_size=2**22)
                return ws, base
            except (OSError, InvalidHandshake, TimeoutError) as e:  # refused, reset, or a 502 from a dying one
                last = e
        raise ConnectionError(f"no web process took the connection: {last!r}")


def backoff_patron(fails: int) -> float:
    return min(15.0, 1.0 * 2**fails)  # chat.js: Math.min(15000, 1000 * Math.pow(2, wsFails++))


def backoff_staff(attempt: int) -> float:
    base = min(30.0, 0.5 * 2 ** min(attempt - 1, 6))  # socket.js: scheduleRetry
    return min(30.0, base * (0.75 + random.random() * 0.5))


@dataclass
class ChatRun:
    index: int
    library: str
    web: int
    id: str = ""
    token: str = ""
    waiting: bool = False  # started towards the `wait` library: sits in the queue until released
    started_at: float = 0.0


class Patron:
    """chat.js over the socket transport: outbox, `after`, reconnect with backoff."""

    def __init__(self, load: Load, chat: ChatRun) -> None:
        self.load, self.chat = load, chat
        self.after = 0
        self.outbox: dict[str, Sent] = {}
        self.ws: ClientConnection | None = None
        self.base = ""
        self.joined = False
        self.watch: SeqWatch | None = None
        self.sockets = 0
        self.fails = 0
        self.n = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def who(self) -> str:
        return f"patron {self.chat.index}"

    async def run(self) -> None:
        ledger = self.load.ledger
        while not self.load.stopping:
            try:
                ws, _base = await self.load.balancer.open("/ws/patron/", self.chat.web, {})
            except ConnectionError:
                ledger.counts["patron connect refused everywhere"] += 1
                await self._retry(joined_before=False)
                continue
            self.ws, self.sockets, self.base = ws, self.sockets + 1, _base
            joined_before = False
            try:
                await ws.send(json.dumps({"type": "join", "chat": self.chat.id, "token": self.chat.token,
                                          "after": self.after}))
                # chat.js gives the socket 7 s to say `joined`, else it switches to HTTP polling;
                # these clients count it and keep to the socket.
                first = await asyncio.wait_for(self._until_joined(ws), 7.0)
                if first is not None:
                    joined_before = True
                    await self._flush(ws)
                    async for raw in ws:
                        self._frame(json.loads(raw))
            except TimeoutError:
                ledger.counts["patron not joined within 7 s (chat.js would switch to polling)"] += 1
            except ConnectionClosed:
                pass
            except OSError:
                pass
            finally:
                self.joined = False
                self.ws = None
                with contextlib.suppress(Exception):
                    await ws.close()
            if self.load.stopping:
                return
            if joined_before:
                ledger.counts["patron socket closed after join"] += 1
            await self._retry(joined_before)

    async def _retry(self, joined_before: bool) -> None:
        if joined_before:
            self.fails = 0
        delay = backoff_patron(self.fails)
        self.fails += 1
        await asyncio.sleep(delay)

    async def _until_joined(self, ws: ClientConnection) -> Frame | None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "joined":
                self.joined = True
                self.fails = 0
                self.watch = SeqWatch(self.load.ledger, f"{self.who} socket {self.sockets}", self.chat.id, self.after)
                return frame
            if frame.get("type") == "error":
                self.load.ledger.problem(f"{self.who}: error before joined: {frame}")
        return None

    async def _flush(self, ws: ClientConnection) -> None:
        assert self.watch is not None
        for sent in list(self.outbox.values()):
            self.watch.resent.add(sent.client_id)
            self.load.ledger.counts["patron message sent again after a reconnect"] += 1
            await ws.send(json.dumps({"type": "message", "body": sent.body, "client_id": sent.client_id}))

    def _frame(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "message" and frame.get("resent"):
            kind = "ack"  # the echo of a line sent again, whose seq this socket had already (docs/protocol.md)
        ledger = self.load.ledger
        if kind == "message":
            assert self.watch is not None
            self.watch.see(frame, "patron")
            self.after = max(self.after, int(frame["seq"]))
            cid = frame.get("client_id") or ""
            if frame["sender"] == "patron" and cid in self.outbox:
                sent = self.outbox.pop(cid)
                sent.acked_seq = int(frame["seq"])
            elif frame["sender"] == "librarian" and cid:
                ledger.got[(self.chat.id, "patron")].add(cid)
        elif kind == "ack":
            assert self.watch is not None
            self.watch.ack(frame)
            sent = self.outbox.pop(str(frame.get("client_id")), None)
            if sent is not None:
                sent.acked_seq = int(frame["seq"])
        elif kind == "error":
            ledger.problem(f"{self.who}: {frame}")
        elif kind == "state":
            self.load.states[self.chat.id] = str(frame.get("state"))

    async def say(self) -> None:
        self.n += 1
        cid = f"p{self.chat.index}-{self.n}-{uuid.uuid4().hex[:4]}"
        sent = Sent(self.chat.id, "patron", cid, f"patron {self.chat.index} says {self.n}", clock())
        self.load.ledger.sent[cid] = sent
        self.outbox[cid] = sent
        ws = self.ws
        if ws is not None and self.joined:  # else it goes with the outbox on the next join
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "message", "body": sent.body, "client_id": cid}))


class Librarian:
    """console.js with socket.js, and a person who accepts offers and answers every message."""

    def __init__(self, load: Load, username: str, web: int, *, hold: bool = False) -> None:
        self.load, self.username, self.web = load, username, web
        self.hold = hold  # a "slow" librarian: lets offers wait until released
        self.held: set[str] = set()
        self.max_seq: dict[str, int] = {}
        self.pending: dict[str, Sent] = {}
        self.offers: set[str] = set()
        self.ws: ClientConnection | None = None
        self.base = ""
        self.windows: list[list[str]] = []  # chats joined, per ping not yet answered, on the current socket
        self.connected = False  # a hello came on the current socket
        self.joined: set[str] = set()  # chats joined on the current socket
        self.watches: dict[str, SeqWatch] = {}
        self.sockets = 0
        self.attempt = 0
        self.answered: set[str] = set()
        self.hellos = 0
        self.ready = asyncio.Event()

    @property
    def who(self) -> str:
        return f"librarian {self.username}"

    async def run(self) -> None:
        cookie = f"sessionid={self.load.sessions[self.username]}"
        ledger = self.load.ledger
        while not self.load.stopping:
            try:
                ws, _base = await self.load.balancer.open("/ws/staff/", self.web, {"Cookie": cookie})
            except ConnectionError:
                ledger.counts["staff connect refused everywhere"] += 1
                await self._retry()
                continue
            self.ws, self.sockets, self.base = ws, self.sockets + 1, _base
            self.joined, self.watches, self.windows = set(), {}, []
            had_hello = False
            try:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("type") == "hello":
                        had_hello = True
                    await self._frame(ws, frame)
            except (ConnectionClosed, OSError):
                pass
            finally:
                self.connected = False
                self.ws = None
                with contextlib.suppress(Exception):
                    await ws.close()
            if self.load.stopping:
                return
            if ws.close_code in (4401, 4403):
                ledger.problem(f"{self.who}: closed {ws.close_code}: the console would stop here")
                return
            if had_hello:
                ledger.counts["staff socket closed after hello"] += 1
            await self._retry()

    async def _retry(self) -> None:
        self.attempt += 1
        await asyncio.sleep(backoff_staff(self.attempt))

    async def _send(self, ws: ClientConnection, frame: Frame) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    def _send_again_later(self, ws: ClientConnection, sent: Sent, after: float = 2.0) -> None:
        """A reply refused for the socket's frame rate (a console resuming many chats at once) is sent
        again shortly, unless acknowledged meanwhile (a reconnect's hello sends it again too)."""

        async def again() -> None:
            await asyncio.sleep(after)
            if sent.client_id in self.pending:
                await self._send(ws, {"type": "message", "chat": sent.chat, "body": sent.body,
                                      "client_id": sent.client_id})

        task = asyncio.get_running_loop().create_task(again())
        _SENDING_AGAIN.add(task)
        task.add_done_callback(_SENDING_AGAIN.discard)

    async def _join(self, ws: ClientConnection, chat: str, *, ordered: bool = True) -> None:
        after = self.max_seq.get(chat, 0)
        watch = SeqWatch(self.load.ledger, f"{self.who} socket {self.sockets}", chat, after, window=True,
                         ordered=ordered)
        self.watches[chat] = watch
        await self._send(ws, {"type": "join", "chat": chat, "after": after})
        self.joined.add(chat)
        for sent in [s for s in self.pending.values() if s.chat == chat]:
            watch.resent.add(sent.client_id)
            self.load.ledger.counts["librarian message sent again after a reconnect"] += 1
            await self._send(ws, {"type": "message", "chat": chat, "body": sent.body, "client_id": sent.client_id})

    async def _frame(self, ws: ClientConnection, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "message" and frame.get("resent"):
            kind = "ack"  # the echo of a line sent again, whose seq this socket had already (docs/protocol.md)
        ledger = self.load.ledger
        if kind == "hello":
            self.hellos += 1
            self.attempt = 0  # socket.js: only a hello proves the server took us back
            self.connected = True
            if frame.get("presence") != "available":
                if self.hellos > 1:
                    ledger.counts["librarian found away after a reconnect"] += 1
                await self._send(ws, {"type": "presence", "status": "available"})
            else:
                self.ready.set()
            held = {c["chat"] for c in frame.get("chats", [])}
            for lost in self.held - held:
                ledger.counts["chat no longer held after a reconnect"] += 1
                self.held.discard(lost)
            self.held |= held
            for chat in sorted(held):
                await self._join(ws, chat)
            await self._ping(ws, sorted(held))
            self.offers = {o["chat"] for o in frame.get("offers", [])}
            for chat in sorted(self.offers):
                await self._maybe_accept(ws, chat)
        elif kind == "presence":
            # Ready once the server has this librarian available: a chat started before that finds
            # nobody to answer at its library and ends unstaffed (a one-step plan), as it should.
            if frame.get("status") == "available":
                self.ready.set()
        elif kind == "offer":
            self.offers.add(frame["chat"])
            await self._maybe_accept(ws, frame["chat"])
        elif kind == "offer_withdrawn":
            self.offers.discard(frame["chat"])
        elif kind == "assigned":
            chat = frame["chat"]
            self.offers.discard(chat)
            self.held.add(chat)
            self.load.owner[chat] = self
            # Like the console, join for the whole transcript (what the patron wrote while the chat
            # waited). Live messages flow from `assigned` on (docs/protocol.md), so they may come before
            # that history, which then leaves them out (routing.sockets.base send_history): until the join
            # is answered the watch takes seqs in any order, each once, none missing when it closes.
            await self._join(ws, chat, ordered=False)
            await self._ping(ws, [chat])
        elif kind == "pong":
            for chat in self.windows.pop(0) if self.windows else []:
                watch = self.watches.get(chat)
                if watch is not None:
                    watch.close_window()
        elif kind == "accept_failed":
            ledger.counts[f"accept_failed {frame.get('reason')}"] += 1
        elif kind == "unassigned":
            self.held.discard(frame["chat"])
            self.joined.discard(frame["chat"])
            ledger.counts[f"unassigned {frame.get('reason')}"] += 1
        elif kind == "message":
            chat = frame["chat"]
            watch = self.watches.get(chat)
            if watch is None:  # a live message before this socket joined the chat (hello's last_seq)
                watch = self.watches[chat] = SeqWatch(ledger, f"{self.who} socket {self.sockets}", chat,
                                                      int(frame["seq"]) - 1, window=True)
            watch.see(frame, "librarian")
            self.max_seq[chat] = max(self.max_seq.get(chat, 0), int(frame["seq"]))
            cid = frame.get("client_id") or ""
            if frame["sender"] == "librarian" and cid in self.pending:
                sent = self.pending.pop(cid)
                sent.acked_seq = int(frame["seq"])
            elif frame["sender"] == "patron" and cid:
                ledger.got[(chat, "librarian")].add(cid)
                if cid not in self.load.replied:  # every patron message gets one answer
                    self.load.replied.add(cid)
                    reply = f"r-{cid}"
                    sent = Sent(chat, "librarian", reply, f"{self.username} answers {cid}", clock())
                    ledger.sent[reply] = sent
                    self.pending[reply] = sent
                    await self._send(ws, {"type": "message", "chat": chat, "body": sent.body, "client_id": reply})
        elif kind == "ack":
            watch = self.watches.get(frame["chat"])
            if watch is not None:
                watch.ack(frame)
            sent = self.pending.pop(str(frame.get("client_id")), None)
            if sent is not None:
                sent.acked_seq = int(frame["seq"])
        elif kind == "error":
            cid = frame.get("client_id")
            sent = self.pending.get(cid) if isinstance(cid, str) else None
            if sent is not None and sent.chat in self.load.ended:
                # An answer to a chat that ended before it was stored: refused with an error naming its
                # client_id, which the console shows on that line (console.js `failed`). Not lost, and
                # not to be sent again. (Ending a chat frees its librarian's capacity, so a chat that
                # waited can be accepted, and answered from its history, just before it ends too.)
                del self.pending[cid]
                sent.refused = str(frame.get("detail") or frame.get("code"))
                ledger.counts["librarian answer refused: the chat had ended"] += 1
            elif frame.get("code") != "rate_limited":
                ledger.problem(f"{self.who}: {frame}")
            else:
                ledger.counts["rate_limited"] += 1
                if sent is not None:  # as the console's "send again": once the socket's meter has refilled
                    self._send_again_later(ws, sent)

    async def _ping(self, ws: ClientConnection, chats: list[str]) -> None:
        """The server answers frames in order: its pong comes after the history of these joins."""
        self.windows.append(chats)
        await self._send(ws, {"type": "ping"})

    async def _maybe_accept(self, ws: ClientConnection, chat: str) -> None:
        if not self.hold:
            await self._send(ws, {"type": "accept", "chat": chat})

    async def release(self) -> None:
        """The slow librarian gets to the desk: accepts what is offered, and from now on at once."""
        self.hold = False
        for chat in sorted(self.offers):
            ws = self.ws
            if ws is not None and self.connected:
                await self._send(ws, {"type": "accept", "chat": chat})
                # A person accepts one chat at a time; ten accepts (and their joins) in one burst
                # would run past the socket's frame limit (30 at once, 10 a second).
                await asyncio.sleep(0.4)


# --- the load ---------------------------------------------------------------------------------------


class Load:
    """`chats` concurrent chats on a stack, each patron and its librarian talking every `interval` s."""

    def __init__(self, stack: Stack, sessions: dict[str, str], *, chats: int = 200, libraries: int = 10,
                 librarians_per_library: int = 2, interval: float = 12.0, ramp_rate: float = 10.0) -> None:
        self.stack = stack
        self.sessions = sessions
        self.n_chats, self.n_libraries, self.per_library = chats, libraries, librarians_per_library
        self.interval, self.ramp_rate = interval, ramp_rate
        self.balancer = Balancer(stack)
        self.ledger = Ledger()
        self.stopping = False
        self.chats: dict[str, ChatRun] = {}
        self.patrons: dict[str, Patron] = {}
        self.librarians: list[Librarian] = []
        self.slow: list[Librarian] = []
        self.owner: dict[str, Librarian] = {}
        self.states: dict[str, str] = {}
        self.replied: set[str] = set()
        self.ended: set[str] = set()  # chats a test ended (their patrons said their last)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="load", daemon=True)
        self._tasks: list[asyncio.Future[Any]] = []
        self._next = 0

    # The event loop runs in its own thread; tests call in with `call`.
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Load:
        # One process holds every client socket: raise the descriptor limit as far as allowed.
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self._thread.start()
        self.call(self._start())
        return self

    def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(Exception):
            self.call(self._stop(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    async def _start(self) -> None:
        webs = len(self.stack.ports)
        k = 0
        for i in range(self.n_libraries):
            for j in range(self.per_library):
                self.librarians.append(Librarian(self, f"f-l{i:02d}-{j}", k % webs))
                k += 1
        self.slow = [Librarian(self, "f-slow-wait", 0, hold=True), Librarian(self, "f-slow-waitp", 1 % webs, hold=True)]
        for lib in [*self.librarians, *self.slow]:
            self._spawn(lib.run())
        await asyncio.wait_for(asyncio.gather(*(lib.ready.wait() for lib in [*self.librarians, *self.slow])), 120)
        log(f"load: {len(self.librarians)} librarians and {len(self.slow)} slow ones connected")
        t0 = clock()
        async with httpx.AsyncClient(timeout=60) as http:
            starts = []
            for j in range(self.n_chats):
                await asyncio.sleep(max(0.0, t0 + j / self.ramp_rate - clock()))
                starts.append(asyncio.ensure_future(self._start_chat(http, f"f{j % self.n_libraries:02d}")))
            await asyncio.gather(*starts)
        self._spawn(self._talk())
        log(f"load: {len(self.chats)} chats started in {clock() - t0:.0f}s")

    async def _start_chat(self, http: httpx.AsyncClient, library: str, *, waiting: bool = False) -> ChatRun:
        chat = ChatRun(self._next, library, self._next % len(self.stack.ports), waiting=waiting)
        self._next += 1
        chat.started_at = clock()
        made: Frame | None = None
        for attempt in range(10):  # a page would show "could not start": the patron clicks again
            bases = self.balancer.bases()
            base = bases[(chat.web + attempt) % len(bases)]
            try:
                r = await http.post(f"{base}/api/v1/{CONSORTIUM}/chats",
                                    json={"question": f"Fault question {chat.index}", "library": library},
                                    headers={"Origin": base})
                if r.status_code == 201:
                    made = r.json()
                    break
                self.ledger.counts[f"chat start answered {r.status_code}"] += 1
            except httpx.HTTPError:
                self.ledger.counts["chat start failed to connect"] += 1
            await asyncio.sleep(1)
        if made is None:
            raise RuntimeError(f"chat {chat.index} could not start")
        chat.id, chat.token = made["id"], made["token"]
        self.chats[chat.id] = chat
        patron = Patron(self, chat)
        self.patrons[chat.id] = patron
        patron.task = asyncio.ensure_future(patron.run())
        self._tasks.append(patron.task)
        return chat

    async def _talk(self) -> None:
        """Each patron sends every `interval` seconds (random phase); librarians answer each one."""
        due: dict[str, float] = {}
        while not self.stopping:
            now = clock()
            for cid, patron in list(self.patrons.items()):
                if cid not in self.patrons:
                    continue  # it left (the soak's churn) while this pass awaited an earlier send
                at = due.setdefault(cid, now + random.uniform(0, self.interval))
                if now >= at:
                    due[cid] = at + self.interval
                    await patron.say()
            await asyncio.sleep(0.1)

    # -- what tests call ------------------------------------------------------------------------------

    def start_waiting(self, n: int) -> list[ChatRun]:
        async def go() -> list[ChatRun]:
            async with httpx.AsyncClient(timeout=60) as http:
                return list(await asyncio.gather(*(self._start_chat(http, "wait", waiting=True) for _ in range(n))))
        return self.call(go())

    def release_slow(self) -> None:
        async def go() -> None:
            for lib in self.slow:
                await lib.release()
        self.call(go())

    def hold_slow(self) -> None:
        for lib in self.slow:
            lib.hold = True

    def not_joined(self) -> list[str]:
        """Clients that are not (back) in a joined state now."""
        out = [p.who for p in list(self.patrons.values()) if not (p.ws is not None and p.joined)]
        for lib in [*self.librarians, *self.slow]:
            if not lib.connected:
                out.append(lib.who)
            elif lib.held - lib.joined:
                out.append(f"{lib.who} (not joined to {len(lib.held - lib.joined)} held chats)")
        return out

    def on(self, web: str) -> list[str]:
        """Clients whose current socket is to the web process `web` (e.g. one just killed)."""
        base = self.stack.base(web)
        return [c.who for c in [*list(self.patrons.values()), *self.librarians, *self.slow] if c.ws is not None
                and c.base == base]

    def active_chats(self) -> set[str]:
        """Chats that a librarian bot holds now (messages can reach both sides)."""
        return {c for lib in [*self.librarians, *self.slow] for c in list(lib.held)}

    def settle(self, timeout: float = 180) -> float:
        """Wait until every client is joined again, every message sent has been acknowledged, and every
        acknowledged message reached the other side. Returns the seconds it took; fails with what is
        still missing at the deadline."""
        t0 = clock()
        snapshot: set[str] | None = None
        while True:
            absent = self.not_joined()
            unacked = [s for s in self.ledger.unacked() if clock() - s.at > 2]
            active = self.active_chats()
            undelivered = [s for s in self.ledger.undelivered(active) if snapshot and s.client_id in snapshot]
            if not absent and not unacked and not undelivered and snapshot is not None:
                return clock() - t0
            if snapshot is None and not absent:
                snapshot = {s.client_id for s in self.ledger.acked()}  # then wait for these to arrive
            if clock() - t0 > timeout:
                stuck = sorted({s.chat for s in unacked[:5]} | {s.chat for s in undelivered[:5]})
                said = ([p for p in self.ledger.problems if any(c in p for c in stuck)] or self.ledger.problems)[:5]
                states = waiting_chats(self.stack, stuck) if stuck else {}
                raise AssertionError(
                    f"load did not settle in {timeout:.0f}s: {len(absent)} clients not joined {absent[:5]}, "
                    f"{len(unacked)} messages never acknowledged {[(s.chat, s.client_id) for s in unacked[:5]]}, "
                    f"{len(undelivered)} acknowledged but not delivered "
                    f"{[(s.chat, s.sender, s.client_id) for s in undelivered[:5]]}; counts {dict(self.ledger.counts)}; "
                    f"those chats' states {states}, problems {said}")
            time.sleep(0.5)

    def check_stored(self) -> list[str]:
        """Every acknowledged message is in PostgreSQL, once, with its body, under its chat and sender."""
        acked = self.ledger.acked()  # before the query: what is acknowledged later may be stored later
        rows = self.stack.sql("SELECT chat_id || '|' || sender || '|' || client_id || '|' || md5(body) "
                              "FROM routing_message WHERE client_id IS NOT NULL")
        stored: Counter[tuple[str, str, str]] = Counter()
        digest: dict[tuple[str, str, str], str] = {}
        for line in rows.splitlines():
            chat, sender, cid, md5 = line.split("|")
            stored[(chat, sender, cid)] += 1
            digest[(chat, sender, cid)] = md5
        problems = []
        for s in acked:
            key = (s.chat, s.sender, s.client_id)
            if stored[key] != 1:
                problems.append(f"{key} acknowledged but stored {stored[key]} times")
            elif digest[key] != hashlib.md5(s.body.encode()).hexdigest():
                problems.append(f"{key} stored with another body")
        return problems

    def report(self) -> dict[str, Any]:
        acked = self.ledger.acked()
        return {"chats": len(self.chats), "messages_sent": len(self.ledger.sent), "acknowledged": len(acked),
                "patron_sockets": sum(p.sockets for p in list(self.patrons.values())),
                "staff_sockets": sum(lib.sockets for lib in [*self.librarians, *self.slow]),
                "seq_problems": dict(self.ledger.seq_problems), "counts": dict(self.ledger.counts),
                "problems": self.ledger.problems[:10]}

    def assert_whole(self, timeout: float = 180) -> dict[str, Any]:
        """The checks after every fault: settled (joined, acknowledged, delivered), stored once, seqs in order."""
        seconds = self.settle(timeout)
        stored = self.check_stored()
        assert not stored, f"{len(stored)} acknowledged messages not stored right: {stored[:10]}"
        assert not self.ledger.seq_problems, f"{dict(self.ledger.seq_problems)}: {self.ledger.problems[:10]}"
        assert not self.ledger.problems, self.ledger.problems[:10]
        out = self.report()
        out["settled_in_s"] = round(seconds, 1)
        return out


# --- the routing trace --------------------------------------------------------------------------------


def traces(stack: Stack, chat_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    ids = ",".join(f"'{c}'" for c in chat_ids)
    rows = stack.sql("SELECT chat_id, kind, data::text, extract(epoch from at) FROM routing_traceevent "
                     f"WHERE chat_id IN ({ids}) ORDER BY chat_id, at, id")
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in chat_ids}
    for line in rows.splitlines():
        chat, kind, data, at = line.split("|", 3)
        out[chat].append({"kind": kind, "at": float(at), **json.loads(data)})
    return out


def deadlines_fired_once(events: list[dict[str, Any]]) -> list[str]:
    """Within each stay in routing (split at `requeued` and `transferred`), a step is entered once and
    left by escalation once: a deadline that fired twice would show twice."""
    problems = []
    epochs: list[list[dict[str, Any]]] = [[]]
    for e in events:
        if e["kind"] in ("requeued", "transferred"):
            epochs.append([])
        epochs[-1].append(e)
    for epoch in epochs:
        escalated = [e.get("from") for e in epoch if e["kind"] == "escalated"]
        entered = [e.get("step") for e in epoch if e["kind"] == "step_entered"]
        accepted = [e for e in epoch if e["kind"] == "accepted"]
        if len(escalated) != len(set(escalated)):
            problems.append(f"escalated twice from a step: {escalated}")
        if len(entered) != len(set(entered)):
            problems.append(f"entered a step twice: {entered}")
        if len(accepted) > 1:
            problems.append(f"accepted {len(accepted)} times")
    return problems


def waiting_chats(stack: Stack, chat_ids: list[str]) -> dict[str, str]:
    ids = ",".join(f"'{c}'" for c in chat_ids)
    rows = stack.sql(f"SELECT id, state FROM routing_chat WHERE id IN ({ids})")
    return dict(line.split("|") for line in rows.splitlines())


@dataclass
class UnderLoad:
    """A started stack, the load of concurrent chats on it, and the /healthz log polled meanwhile."""
    stack: Stack
    load: Load
    health: HealthLog


def stop_under_load(stack: Stack, load: Load | None, health: HealthLog | None) -> None:
    """Stop what was started (the /healthz log, the load), print the end of the stack's logs, stop it."""
    if health is not None:
        health.stop()
    if load is not None:
        load.stop()
    print(stack.logs()[-6000:])
    stack.stop()


@contextlib.contextmanager
def running(stack: Stack, load: Load | None = None) -> Iterator[HealthLog]:
    health = HealthLog(stack).start()
    try:
        yield health
    finally:
        health.stop()
