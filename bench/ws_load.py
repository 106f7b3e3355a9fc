#!/usr/bin/env python
"""Real-time load: real WebSocket clients against the production stack, and the bare baseline in the same run.

    .venv/bin/python bench/ws_load.py --chats 200  --duration 60           # bare baseline, then Django
    .venv/bin/python bench/ws_load.py --chats 1000 --duration 60 --webs 2   # figures: docs/benchmarks.md
    .venv/bin/python bench/ws_load.py --chats 200  --target django          # one side only
    .venv/bin/python bench/ws_load.py --chats 1000 --store-floor            # and the durable floor between

The production stack is every line of deploy/Procfile (daphne x --webs, the timer, the Celery worker)
on a fresh PostgreSQL database and Redis, started by tests/live/stack.py; the baseline is
bench/bare_relay.py (plain `websockets` + redis.asyncio, same Redis), as many processes as webs.
With --store-floor, the same relay keeping every line in PostgreSQL before publishing it (bare_relay.py
--store, a fresh database) runs between the two: the floor of any relay that stores what is typed
before anyone is told, so the ratios show how much of the stack's cost is the store and how much is
Django's and Channels'.
Both are driven the same way, from this one asyncio process, on loopback:

1. the world: --libraries libraries, one serving librarian per --chats-per-librarian chats (capacity
   --capacity), spread over the libraries, and enough idle staff accounts (signed in, console open,
   away) that the connect storm below opens exactly 2 x --chats sockets: one patron and one staff
   socket per chat. Librarians of a library, and the patrons of one library's chats, are spread over
   the web processes, so about half the traffic crosses processes through Redis.
2. ramp: the serving librarians connect and go available; a second later (their sign-ins drained)
   --chats chats start (POST, --ramp-rate a second, library= spread over the staffed libraries);
   each librarian bot accepts every offer.
   Measured: chat start (the POST leaving) -> first `offer` frame on a librarian's socket.
3. storm: the librarians' sockets close; then every socket connects at once (asyncio.gather): each
   patron joins its chat, each librarian reconnects (hello gives back its chats), each idle staff
   socket opens. Counted: handshake errors, and sockets that never got `joined` / `hello` (within
   --connect-timeout).
   Measured: web processes' RSS (/proc/<pid>/status) before and after, per socket.
4. steady state, --duration seconds: every patron sends a message every --interval seconds (random
   phase); the librarian bot holding the chat answers each one at once, so every participant sends
   one every --interval seconds. Measured on the receiving side, from a timestamp in the body (one
   process, one clock): patron -> librarian and librarian -> patron delivery latency. New chats keep
   starting (--probe-rate a second): start -> offer under load. CPU of the web processes (and of
   the PostgreSQL backends of the stack's database) per message.
5. drain: counted per chat by client_id, once late messages stop arriving (at most --drain s):
   messages sent and never received (must be 0), duplicates, and gaps in `seq` seen by a client.

The machine is shared: compare the ratios to the baseline (same run) rather than absolute figures.
The last line printed is a JSON summary (also written to --json FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

import httpx  # noqa: E402
import psycopg  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from tests.live.stack import Stack, free_port, world  # noqa: E402

CONSORTIUM = "bench"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
SETTLE = 1.0  # seconds between the librarians going available and the ramp (see drive)
Frame = dict[str, Any]
clock = time.perf_counter



# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50) * 1000, 2),
            "p90": round(percentile(values, 90) * 1000, 2), "p99": round(percentile(values, 99) * 1000, 2),
            "max": round(max(values) * 1000, 2)}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --- the world -----------------------------------------------------------------------------------


@dataclass
class Account:
    username: str
    library: str
    web: int
    serving: bool


@dataclass
class Plan:
    libraries: list[str]
    serving: list[Account]
    idle: list[Account]
    chat_library: list[str]
    chat_web: list[int]


def make_plan(args: argparse.Namespace) -> Plan:
    libraries = [f"lib{i:02d}" for i in range(args.libraries)]
    n_serving = max(1, math.ceil(args.chats / args.chats_per_librarian))
    staffed = min(len(libraries), n_serving)
    # Librarian i serves library i % L; the librarians of one library sit on different webs.
    serving = [Account(f"bench-l{i:04d}", libraries[i % len(libraries)], (i + i // len(libraries)) % args.webs, True)
               for i in range(n_serving)]
    n_idle = args.idle_staff if args.idle_staff is not None else max(0, args.chats - n_serving)
    idle = [Account(f"bench-i{k:04d}", libraries[k % len(libraries)], k % args.webs, False) for k in range(n_idle)]
    # Chat j asks library j % staffed (only libraries with a librarian: no fan-out to everyone);
    # successive chats of one library alternate webs, so about half cross processes.
    return Plan(libraries=libraries, serving=serving, idle=idle,
                chat_library=[libraries[j % staffed] for j in range(args.chats)],
                chat_web=[(j // staffed) % args.webs for j in range(args.chats)])


# --- targets -------------------------------------------------------------------------------------


class Shed(Exception):
    """A chat start refused for overload: 503 `busy` or 429, with Retry-After (routing/admission.py)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"shed {status}")
        self.status = status


class Target:
    name = ""
    bases: list[str]
    pids: list[int]

    def ws_url(self, base: str, path: str) -> str:
        return "ws" + base[4:] + path

    def staff(self, account: Account) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    async def start_chat(self, http: httpx.AsyncClient, base: str, library: str, question: str) -> Frame:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def database_pids(self) -> list[int]:
        """Server processes of the database behind this target (their CPU counts too)."""
        return []


class DjangoTarget(Target):
    """deploy/Procfile on a fresh database, through tests/live/stack.py."""

    name = "django"

    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        staff = [{"username": a.username, "library": a.library, "capacity": args.capacity}
                 for a in [*plan.serving, *plan.idle]]
        doc = world(CONSORTIUM, [{"slug": slug} for slug in plan.libraries], staff,
                    # Long graces and timeouts: nothing in the run should depend on a timer firing.
                    local_timeout=60, partner_timeout=60, offer_timeout=60, max_wait=3600, reconnect_grace=300,
                    patron_grace=300, idle_timeout=7200, librarian_capacity=args.capacity)
        for s in doc["staff"]:
            s.pop("password")  # no hashing: Stack.sign_in_all
        t = clock()
        # The per-address chat start limit would refuse a ramp from one address; nothing else changes.
        extra = dict(kv.split("=", 1) for kv in args.stack_env)
        self.stack = Stack.prepare([doc], CHAT_START_RATE="1000000/m", admission=True, **extra)
        self.sessions: dict[str, str] = self.stack.sign_in_all("bench-")
        self.stack.start(webs=args.webs)
        log(f"django: stack ready in {clock() - t:.0f}s ({self.stack.workdir})")
        self.bases = [self.stack.base(f"web{i + 1}") for i in range(args.webs)]
        # Started as `bash -c "exec daphne ..."`: the pid is daphne's own.
        self.pids = [self.stack.procs[f"web{i + 1}"].pid for i in range(args.webs)]

    def staff(self, account: Account) -> tuple[str, dict[str, str]]:
        base = self.bases[account.web]
        cookie = f"sessionid={self.sessions[account.username]}"
        return self.ws_url(base, "/ws/staff/"), {"Origin": base, "Cookie": cookie}

    async def start_chat(self, http: httpx.AsyncClient, base: str, library: str, question: str) -> Frame:
        r = await http.post(f"{base}/api/v1/{CONSORTIUM}/chats", json={"question": question, "library": library},
                            headers={"Origin": base})
        if r.status_code in (429, 503) and r.headers.get("Retry-After"):
            raise Shed(r.status_code)
        if r.status_code != 201:
            raise RuntimeError(f"chat start: {r.status_code} {r.text[:200]}")
        return dict(r.json())

    def stop(self) -> None:
        self.stack.stop()

    def database_pids(self) -> list[int]:
        rows = self.stack.sql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.stack.dbname}'")
        return [int(pid) for pid in rows.split()]


class BareTarget(Target):
    """bench/bare_relay.py, one process per web; with `store`, each keeping every line in a database
    of its own made for the run (bare_relay.py --store)."""

    name = "bare"
    store = False

    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="vr-bare-"))
        prefix = f"bare{uuid.uuid4().hex[:8]}"
        self.dbname = ""
        store: list[str] = []
        if self.store:
            self.dbname = f"vr_bare_{uuid.uuid4().hex[:8]}"
            self._admin(f"CREATE DATABASE {self.dbname}")
            store = ["--store", _database_url(self.dbname)]
        self.procs: list[subprocess.Popen[bytes]] = []
        ports = [free_port() for _ in range(args.webs)]
        for i, port in enumerate(ports):
            out = (self.workdir / f"bare{i + 1}.log").open("ab")
            self.procs.append(subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "bare_relay.py"), "--port", str(port), "--redis", REDIS_URL,
                 "--prefix", prefix, *store], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        self.bases = [f"http://127.0.0.1:{port}" for port in ports]
        self.pids = [p.pid for p in self.procs]
        deadline = time.monotonic() + 30
        for base in self.bases:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bare relay on {base} did not start; see {self.workdir}")
                time.sleep(0.1)

    def staff(self, account: Account) -> tuple[str, dict[str, str]]:
        base = self.bases[account.web]
        return (self.ws_url(base, f"/ws/staff/?librarian={account.username}&library={account.library}"),
                {"Origin": base})

    async def start_chat(self, http: httpx.AsyncClient, base: str, library: str, question: str) -> Frame:
        r = await http.get(f"{base}/api/start", params={"library": library, "question": question})
        if r.status_code != 201:
            raise RuntimeError(f"chat start: {r.status_code} {r.text[:200]}")
        return dict(r.json())

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.dbname:
            self._admin(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")

    def database_pids(self) -> list[int]:
        if not self.dbname:
            return []
        with psycopg.connect(_database_url("postgres"), autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.dbname]).fetchall()
        return [int(pid) for (pid,) in rows]

    @staticmethod
    def _admin(sql: str) -> None:
        with psycopg.connect(_database_url("postgres"), autocommit=True) as conn:
            conn.execute(sql)


class StoredBareTarget(BareTarget):
    """The durable floor (--store-floor): the bare relay, storing every line first."""

    name = "bare_store"
    store = True


def _database_url(dbname: str) -> str:
    """The run's PostgreSQL server (DATABASE_URL), database `dbname`."""
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{dbname}"))


# --- clients -------------------------------------------------------------------------------------


@dataclass
class ChatRun:
    index: int
    library: str
    web: int
    id: str = ""
    token: str = ""
    started_at: float = 0.0
    owner: Bot | None = None
    sent_by_patron: set[str] = field(default_factory=set)
    got_by_librarian: set[str] = field(default_factory=set)
    sent_by_librarian: set[str] = field(default_factory=set)
    got_by_patron: set[str] = field(default_factory=set)


class Run:
    """Everything measured while driving one target."""

    def __init__(self, target: Target, args: argparse.Namespace) -> None:
        self.target = target
        self.args = args
        self.counts: Counter[str] = Counter()
        self.chats: dict[str, ChatRun] = {}
        self.first_offer: dict[str, float] = {}
        self.early_owner: dict[str, Bot] = {}
        self.patron_to_librarian: list[float] = []
        self.librarian_to_patron: list[float] = []
        self.patron_ack: list[float] = []
        self.librarian_ack: list[float] = []
        self.start_answers: Counter[str] = Counter()  # "201", "shed 503", "shed 429", "failed"
        self.start_answer_ms: dict[str, list[float]] = {"created": [], "shed": []}

    def stamp(self, client_id: str) -> str:
        return f"{client_id}|{clock():.6f}"

    def age(self, body: str) -> float:
        return clock() - float(body.rsplit("|", 1)[1])


class Client:
    """One socket: reads frames in a task of its own and checks that message seqs come in order."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.waiting: dict[str, asyncio.Future[Frame]] = {}
        self.last_seq: dict[str, int] = {}

    async def open(self, url: str, headers: dict[str, str]) -> None:
        # Like a browser: permessage-deflate offered, the library's default keepalive.
        self.ws = await connect(url, additional_headers=headers, open_timeout=self.run.args.connect_timeout,
                                max_size=2**22)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                waiter = self.waiting.pop(kind, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                if kind == "message":
                    self._check_seq(frame)
                elif kind == "error":
                    self.run.counts[f"error frame: {frame.get('code')}"] += 1
                await self.on_frame(kind, frame)
        except ConnectionClosed:
            pass
        finally:
            for waiter in self.waiting.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(f"closed {self.ws.close_code}"))

    def _check_seq(self, frame: Frame) -> None:
        chat, seq = frame["chat"], int(frame["seq"])
        last = self.last_seq.get(chat)
        if last is not None and seq <= last:
            self.run.counts["seq repeated"] += 1
        elif last is not None and seq > last + 1:
            self.run.counts["seq gap"] += 1
        self.last_seq[chat] = max(seq, last or 0)

    def expect(self, kind: str) -> asyncio.Future[Frame]:
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.waiting[kind] = future
        return future

    async def send(self, frame: Frame) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def on_frame(self, kind: str, frame: Frame) -> None:
        pass

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader


class Bot(Client):
    """A librarian: goes available, accepts every offer, answers every patron message at once."""

    def __init__(self, run: Run, account: Account) -> None:
        super().__init__(run)
        self.account = account
        self.held: set[str] = set()

    async def connect(self) -> None:
        url, headers = self.run.target.staff(self.account)
        hello = self.expect("hello")
        await self.open(url, headers)
        frame = await asyncio.wait_for(hello, self.run.args.connect_timeout)
        for chat in frame.get("chats", []):
            self.held.add(chat["chat"])
            self.last_seq[chat["chat"]] = int(chat["last_seq"])
            # As the console does: resume each held chat (the server keeps its live messages back
            # until then, so that they come after the history, once).
            await self.send({"type": "join", "chat": chat["chat"], "after": int(chat["last_seq"])})
        if self.account.serving and frame.get("presence") != "available":
            answer = self.expect("presence")
            await self.send({"type": "presence", "status": "available"})
            await asyncio.wait_for(answer, self.run.args.connect_timeout)

    async def on_frame(self, kind: str, frame: Frame) -> None:
        run = self.run
        if kind == "offer" and self.account.serving:
            run.first_offer.setdefault(frame["chat"], clock())
            await self.send({"type": "accept", "chat": frame["chat"]})
        elif kind == "assigned":
            self.held.add(frame["chat"])
            self.last_seq.setdefault(frame["chat"], int(frame.get("last_seq") or 0))
            await self.send({"type": "join", "chat": frame["chat"], "after": self.last_seq[frame["chat"]]})
            chat = run.chats.get(frame["chat"])
            if chat is not None:
                chat.owner = self
            else:  # the offer, the accept and this frame all beat the POST's answer
                run.early_owner[frame["chat"]] = self
        elif kind == "accept_failed":
            run.counts[f"accept_failed: {frame.get('reason')}"] += 1
        elif kind == "message":
            cid = frame.get("client_id") or ""
            chat = run.chats.get(frame["chat"])
            if chat is None:
                return
            if frame["sender"] == "patron" and cid.startswith("p"):
                run.patron_to_librarian.append(run.age(frame["body"]))
                if cid in chat.got_by_librarian:
                    run.counts["duplicate patron message"] += 1
                chat.got_by_librarian.add(cid)
                reply = "l" + cid[1:]
                chat.sent_by_librarian.add(reply)
                await self.send({"type": "message", "chat": chat.id, "body": run.stamp(reply), "client_id": reply})
            elif frame["sender"] == "librarian" and cid.startswith("l"):
                run.librarian_ack.append(run.age(frame["body"]))


class Patron(Client):
    def __init__(self, run: Run, chat: ChatRun) -> None:
        super().__init__(run)
        self.chat = chat

    async def connect(self) -> None:
        base = self.run.target.bases[self.chat.web]
        joined = self.expect("joined")
        await self.open(self.run.target.ws_url(base, "/ws/patron/"), {"Origin": base})
        await self.send({"type": "join", "chat": self.chat.id, "token": self.chat.token, "after": 0})
        await asyncio.wait_for(joined, self.run.args.connect_timeout)

    async def on_frame(self, kind: str, frame: Frame) -> None:
        if kind != "message":
            return
        cid = frame.get("client_id") or ""
        if frame["sender"] == "librarian" and cid.startswith("l"):
            self.run.librarian_to_patron.append(self.run.age(frame["body"]))
            if cid in self.chat.got_by_patron:
                self.run.counts["duplicate librarian message"] += 1
            self.chat.got_by_patron.add(cid)
        elif frame["sender"] == "patron" and cid.startswith("p"):
            self.run.patron_ack.append(self.run.age(frame["body"]))

    async def talk(self, until: float, interval: float, phase: float) -> None:
        """A message every `interval` seconds on a fixed schedule (no drift from send times)."""
        start = clock() + phase
        n = 0
        while True:
            at = start + n * interval
            if at >= until:
                return
            await asyncio.sleep(max(0.0, at - clock()))
            cid = f"p{self.chat.index}-{n}"
            self.chat.sent_by_patron.add(cid)
            try:
                await self.send({"type": "message", "body": self.run.stamp(cid), "client_id": cid})
            except ConnectionClosed:
                self.run.counts["send on a closed patron socket"] += 1
                return
            n += 1


# --- the run -------------------------------------------------------------------------------------


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def timed(make: Callable[[], Any], times: list[float], t0: float) -> None:
    await make()
    times.append(clock() - t0)


async def loop_lag(until: float, lags: list[float]) -> None:
    """How late this client's own event loop wakes up: the share of a latency that is ours."""
    while clock() < until:
        t = clock()
        await asyncio.sleep(0.05)
        lags.append(clock() - t - 0.05)


async def drive(target: Target, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    run = Run(target, args)
    out: dict[str, Any] = {"target": target.name}
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        # 1. The serving librarians.
        bots = [Bot(run, a) for a in plan.serving]
        failed = [r for r in await asyncio.gather(*(b.connect() for b in bots), return_exceptions=True) if r]
        if failed:
            raise RuntimeError(f"{len(failed)} librarians could not connect: {describe(failed[0])}")
        log(f"{target.name}: {len(bots)} librarians available")
        # The consoles' sign-ins and presence calls of a moment ago drain first: a process just
        # started that 50 consoles join at once is busy for a moment, and sheds a start that falls in
        # it (routing/admission.py: its sockets' backlog), which is not what the ramp measures.
        await asyncio.sleep(SETTLE)

        # 2. Ramp: chats start at a steady rate; the bots accept.
        chats = [ChatRun(j, plan.chat_library[j], plan.chat_web[j]) for j in range(args.chats)]

        async def start(chat: ChatRun) -> None:
            chat.started_at = clock()
            try:
                made = await target.start_chat(http, target.bases[chat.web], chat.library,
                                               f"Bench question {chat.index}")
            except Shed as e:  # overload: refused at once, by design (routing/admission.py)
                run.start_answers[f"shed {e.status}"] += 1
                run.start_answer_ms["shed"].append(1000 * (clock() - chat.started_at))
                return
            except Exception as e:
                run.counts[f"chat start failed: {describe(e)}"] += 1
                run.start_answers["failed"] += 1
                return
            run.start_answers["201"] += 1
            run.start_answer_ms["created"].append(1000 * (clock() - chat.started_at))
            chat.id, chat.token = made["id"], made["token"]
            run.chats[chat.id] = chat
            chat.owner = run.early_owner.pop(chat.id, None)

        t0 = clock()
        starts = []
        for j, chat in enumerate(chats):
            await asyncio.sleep(max(0.0, t0 + j / args.ramp_rate - clock()))
            starts.append(asyncio.create_task(start(chat)))
        await asyncio.gather(*starts)
        deadline = clock() + 60
        while clock() < deadline and any(c.owner is None for c in run.chats.values()):
            await asyncio.sleep(0.2)
        live = [c for c in chats if c.owner is not None]
        offers = [run.first_offer[c.id] - c.started_at for c in chats if c.id in run.first_offer]
        out["ramp"] = {"seconds": round(clock() - t0, 1), "chats_started": len(run.chats), "chats_assigned": len(live),
                       "start_to_offer_ms": summary_ms(offers)}
        log(f"{target.name}: ramp {out['ramp']}")

        # 3. Storm: the librarians drop; then every socket connects at once.
        await asyncio.gather(*(b.close() for b in bots))
        bots = [Bot(run, a) for a in plan.serving]
        owner_of = {c.id: plan.serving.index(c.owner.account) for c in live if c.owner}
        await asyncio.sleep(3)
        rss_before = [rss_kib(p) for p in target.pids]
        patrons = [Patron(run, c) for c in live]
        idle = [Bot(run, a) for a in plan.idle]
        clients: list[Patron | Bot] = [*patrons, *bots, *idle]
        times: list[float] = []
        t0 = clock()
        results = await asyncio.gather(*(timed(c.connect, times, t0) for c in clients), return_exceptions=True)
        storm_seconds = clock() - t0
        errors: Counter[str] = Counter()
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                stage = "handshake" if client.ws is None else "after handshake"
                kind = "patron" if isinstance(client, Patron) else "staff"
                errors[f"{kind} {stage}: {describe(result)}"] += 1
        await asyncio.sleep(3)
        rss_after = [rss_kib(p) for p in target.pids]
        sockets = len(clients)
        for chat in live:  # the reconnected librarian holds its chats again
            chat.owner = bots[owner_of[chat.id]]
            if chat.id not in chat.owner.held:
                run.counts["chat missing from hello after reconnect"] += 1
        out["storm"] = {
            "sockets": sockets, "patron": len(patrons), "staff": len(bots) + len(idle),
            "seconds": round(storm_seconds, 2),
            "errors": sum(errors.values()), "error_kinds": dict(errors), "connect_ms": summary_ms(times),
            "rss_before_mib": [round(r / 1024, 1) for r in rss_before],
            "rss_after_mib": [round(r / 1024, 1) for r in rss_after],
            "kib_per_socket": round((sum(rss_after) - sum(rss_before)) / max(1, sockets), 1),
        }
        log(f"{target.name}: storm {out['storm']}")

        # 4. Steady state.
        talking = [p for p in patrons if p.ws is not None and p.reader is not None and not p.reader.done()]
        cpu_before = [cpu_seconds(p) for p in target.pids]
        db_before = {}
        for pid in target.database_pids():
            with contextlib.suppress(OSError):
                db_before[pid] = cpu_seconds(pid)
        lags: list[float] = []
        t0 = clock()
        until = t0 + args.duration
        lagger = asyncio.create_task(loop_lag(until, lags))
        # New chats keep arriving while the others talk (--probe-rate a second): start -> offer
        # under load. A bot accepts them; they have no patron socket and send nothing.
        probes: list[ChatRun] = []
        staffed = sorted(set(plan.chat_library))

        async def arrivals() -> None:
            k = 0
            tasks = []
            while args.probe_rate > 0 and (at := t0 + k / args.probe_rate) < until:
                await asyncio.sleep(max(0.0, at - clock()))
                probe = ChatRun(args.chats + k, staffed[k % len(staffed)], k % args.webs)
                probes.append(probe)
                tasks.append(asyncio.create_task(start(probe)))
                k += 1
            await asyncio.gather(*tasks)

        await asyncio.gather(arrivals(),
                             *(p.talk(until, args.interval, rng.uniform(0, args.interval)) for p in talking))
        await lagger
        elapsed = clock() - t0
        # Unrounded until reported: at 200 messages a second a bare relay process uses about 0.1 of a
        # core, so rounding each process to 0.01 before the sum moved the bare figure by up to 10%.
        cpu_used = [(cpu_seconds(p) - b) / elapsed for p, b in zip(target.pids, cpu_before, strict=True)]
        db_used = 0.0
        for pid, before in db_before.items():  # backends that lived through the whole steady state
            with contextlib.suppress(OSError):
                db_used += cpu_seconds(pid) - before
        for pid in target.database_pids():  # and those opened during it (all their CPU is of it)
            if pid not in db_before:
                with contextlib.suppress(OSError):
                    db_used += cpu_seconds(pid)

        # 5. Drain, then count: an overloaded server delivers late, which is not losing. Wait while
        # messages keep arriving (up to --drain seconds); what is missing after that is lost.
        deadline = clock() + args.drain
        drained_at = clock()
        missing, progress_at = -1, clock()
        while clock() < deadline and clock() - progress_at < 15:
            now_missing = sum(len(c.sent_by_patron - c.got_by_librarian) + len(c.sent_by_librarian - c.got_by_patron)
                              for c in live)
            if not now_missing:
                break
            if now_missing != missing:
                missing, progress_at = now_missing, clock()
            await asyncio.sleep(0.2)
        drain_seconds = clock() - drained_at
        sent_p = sum(len(c.sent_by_patron) for c in live)
        sent_l = sum(len(c.sent_by_librarian) for c in live)
        lost_p = sum(len(c.sent_by_patron - c.got_by_librarian) for c in live)
        lost_l = sum(len(c.sent_by_librarian - c.got_by_patron) for c in live)
        probe_offers = [run.first_offer[c.id] - c.started_at for c in probes if c.id in run.first_offer]
        out["steady"] = {
            "seconds": round(elapsed, 1), "chats_talking": len(talking),
            "start_to_offer_ms": summary_ms(probe_offers), "chats_started": len(probes),
            "messages_per_second": round((sent_p + sent_l) / elapsed, 1),
            "patron_to_librarian_ms": summary_ms(run.patron_to_librarian),
            "librarian_to_patron_ms": summary_ms(run.librarian_to_patron),
            "patron_ack_ms": summary_ms(run.patron_ack), "librarian_ack_ms": summary_ms(run.librarian_ack),
            "drain_seconds": round(drain_seconds, 1),
            "sent_by_patrons": sent_p, "lost_patron_to_librarian": lost_p,
            "sent_by_librarians": sent_l, "lost_librarian_to_patron": lost_l,
            "server_cpu_cores": [round(c, 3) for c in cpu_used], "database_cpu_cores": round(db_used / elapsed, 3),
            "server_cpu_ms_per_message": round(1000 * sum(cpu_used) / max(1.0, (sent_p + sent_l) / elapsed), 3),
            "database_cpu_ms_per_message": round(1000 * db_used / max(1, sent_p + sent_l), 3),
            "rss_end_mib": [round(rss_kib(p) / 1024, 1) for p in target.pids],
            "client_loop_lag_ms": summary_ms(lags),
        }
        out["counts"] = dict(run.counts)
        attempted = sum(run.start_answers.values())
        shed = sum(n for k, n in run.start_answers.items() if k.startswith("shed"))
        out["starts"] = {"attempted": attempted, "answers": dict(run.start_answers),
                         "shed_share": round(shed / max(1, attempted), 3),
                         "created_answer_ms": summary_ms([x / 1000 for x in run.start_answer_ms["created"]]),
                         "shed_answer_ms": summary_ms([x / 1000 for x in run.start_answer_ms["shed"]])}
        # Every socket's sequence (Client._check_seq): each seq once, none skipped (issue 14.3).
        out["seq"] = {"repeated": run.counts["seq repeated"], "skipped": run.counts["seq gap"],
                      "duplicate_messages": run.counts["duplicate patron message"]
                      + run.counts["duplicate librarian message"]}
        log(f"{target.name}: steady {out['steady']}")
        log(f"{target.name}: starts {out['starts']}, seq {out['seq']}")
        log(f"{target.name}: counts {out['counts']}")
        await asyncio.gather(*(c.close() for c in clients))
    return out


def ratios(django: dict[str, Any], bare: dict[str, Any]) -> dict[str, dict[str, float]]:
    """`django`'s figures as multiples of `bare`'s (either may be the durable floor, bare_store)."""
    pairs = {"patron_to_librarian": ("steady", "patron_to_librarian_ms"),
             "librarian_to_patron": ("steady", "librarian_to_patron_ms"),
             "start_to_offer_ramp": ("ramp", "start_to_offer_ms"),
             "start_to_offer_under_load": ("steady", "start_to_offer_ms"), "connect": ("storm", "connect_ms")}
    found: dict[str, dict[str, float]] = {}
    for name, (part, key) in pairs.items():
        d, b = django[part][key], bare[part][key]
        if d.get("n") and b.get("n"):
            found[name] = {q: round(d[q] / max(b[q], 0.001), 1) for q in ("p50", "p99")}
    found["kib_per_socket"] = {"x": round(django["storm"]["kib_per_socket"] / max(bare["storm"]["kib_per_socket"], 0.1),
                                          1)}
    # Issue 14's "CPU per message, web + PostgreSQL" against the bare relay's (which has no database;
    # the floor's own database counts on its side).
    d, b = django["steady"], bare["steady"]
    if b.get("server_cpu_ms_per_message"):
        found["cpu_per_message"] = {"x": round((d["server_cpu_ms_per_message"] + d["database_cpu_ms_per_message"])
                                               / (b["server_cpu_ms_per_message"] + b["database_cpu_ms_per_message"]),
                                               2)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=("both", "django", "bare", "bare_store"), default="both")
    parser.add_argument("--store-floor", action="store_true",
                        help="with --target both: also the bare relay storing every line in PostgreSQL, in between")
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--webs", type=int, default=2)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a participant's messages")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady state after the storm")
    parser.add_argument("--ramp-rate", type=float, default=10.0, help="chat starts a second during the ramp")
    parser.add_argument("--probe-rate", type=float, default=1.0,
                        help="chat starts a second during the steady state (start -> offer under load)")
    parser.add_argument("--libraries", type=int, default=50)
    parser.add_argument("--chats-per-librarian", type=int, default=10)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--idle-staff", type=int, default=None,
                        help="signed-in, away staff sockets (default: enough for 2 sockets per chat)")
    parser.add_argument("--connect-timeout", type=float, default=60.0,
                        help="seconds a socket may take to open and get joined / hello (a browser waits as long)")
    parser.add_argument("--drain", type=float, default=180.0,
                        help="seconds to wait for late messages after the steady state (stops when none come for 15 s)")
    parser.add_argument("--stack-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the production stack (experiments: LOG_LEVEL, settings)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    # One process holds every client socket (2 per chat, plus HTTP): raise the descriptor limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    plan = make_plan(args)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
                    "loadavg_at_start": os.getloadavg(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]},
        "chats": args.chats, "webs": args.webs, "interval": args.interval, "duration": args.duration,
        "librarians": len(plan.serving), "idle_staff": len(plan.idle),
    }
    targets: list[tuple[str, Callable[[argparse.Namespace, Plan], Target]]] = [
        ("bare", BareTarget), ("bare_store", StoredBareTarget), ("django", DjangoTarget)]
    for name, kind in targets:
        if args.target != name and not (args.target == "both" and (name != "bare_store" or args.store_floor)):
            continue
        target = kind(args, plan)
        try:
            result[name] = asyncio.run(drive(target, plan, args))
        finally:
            target.stop()
    for upper, lower in (("django", "bare"), ("bare_store", "bare"), ("django", "bare_store")):
        if upper in result and lower in result:
            result[f"ratio_{upper}_to_{lower}"] = ratios(result[upper], result[lower])
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    text = json.dumps(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
