"""The production stack as real processes, for live tests: every line of deploy/Procfile, a fresh
PostgreSQL database, Redis, and consortium files imported with manage.py. Also a small protocol
client (httpx + websockets) that, like a third-party client, knows only the wire protocol."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml

ROOT = Path(__file__).resolve().parents[2]
PY = Path(sys.executable)
Frame = dict[str, Any]


_SIGN_IN_ALL = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
keys = {}
for user in get_user_model().objects.filter(username__startswith=PREFIX):
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    keys[user.username] = s.session_key
print(json.dumps(keys))
"""

_MIGRATE_AND_IMPORT = """
from django.core.management import call_command
call_command("migrate", "--noinput", verbosity=0)
for path in PATHS:
    call_command("import_consortium", path, "--quiet")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procfile() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for line in (ROOT / "deploy" / "Procfile").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            kinds[name.strip()] = command.strip()
    return kinds


def _psql(server: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", f"{server}/postgres", "-q", "-tA", "-c", sql], check=check, capture_output=True,
                          text=True, timeout=120)


def migrations_digest() -> str:
    """What the schema of a freshly migrated database depends on: every migration file, and Django."""
    digest = hashlib.sha256(importlib.metadata.version("django").encode())
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrated_template(server: str, env: dict[str, str]) -> str:
    """A database migrated to this code's migrations, made once per server and set of migrations, for every
    stack's database to be copied from: migrating a fresh database took 15 s of each stack's start on a
    2-core machine (12 s of CPU), copying this one a fifth of a second, and a test run starts some forty
    stacks. Made under a lock (the pytest-xdist processes of one run share it), migrated under another
    name and renamed when done, so that no copy is ever taken of a half-migrated one."""
    name = f"vr_tpl_{migrations_digest()}"
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _psql(server, f"SELECT 1 FROM pg_database WHERE datname = '{name}'").stdout.strip() != "1":
            building = f"{name}_building_{os.getpid()}"
            _psql(server, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            _psql(server, f'CREATE DATABASE "{building}"')
            migrate = subprocess.run([str(PY), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                                     env={**env, "DATABASE_URL": f"{server}/{building}"}, capture_output=True,
                                     text=True, timeout=600)
            if migrate.returncode != 0:
                raise RuntimeError(f"migrating the template failed:\n{migrate.stdout}\n{migrate.stderr}")
            _psql(server, f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return name


def database_from_template(server: str, dbname: str, template: str) -> None:
    # Copying needs the template to have no sessions; another process copying it at the same instant
    # can make PostgreSQL say so for a moment.
    for attempt in range(20):
        made = _psql(server, f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"', check=False)
        if made.returncode == 0:
            return
        if "being accessed by other users" not in made.stderr or attempt == 19:
            raise RuntimeError(f"creating {dbname} from {template} failed: {made.stderr}")
        time.sleep(0.25)


def pg_server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise RuntimeError("live tests need DATABASE_URL pointing at PostgreSQL")
    return url.rsplit("/", 1)[0]


@dataclass
class Stack:
    env: dict[str, str]
    workdir: Path
    dbname: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    server: str = ""  # the PostgreSQL server (URL without a database) holding `dbname`

    @classmethod
    def prepare(cls, worlds: list[dict[str, Any]], server: str | None = None, db_prefix: str | None = None,
                admission: bool = False, **env_over: str) -> Stack:
        """A fresh database on `server` (default: DATABASE_URL's server) with `worlds` imported. Its name
        starts with `db_prefix` (default VR_LIVE_DB_PREFIX, else vr_live), so people sharing a server can
        tell theirs. `admission`: chat starts shed past capacity as in production (routing/admission.py);
        off by default, see below."""
        server = server or pg_server_url()
        prefix = db_prefix or os.environ.get("VR_LIVE_DB_PREFIX", "vr_live")
        dbname = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        workdir = Path(tempfile.mkdtemp(prefix="vr-live-"))
        tag = uuid.uuid4().hex[:8]
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update({
            "DATABASE_URL": f"{server}/{dbname}",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
            "VR_CHANNEL_PREFIX": f"vrl{tag}",
            "VR_CELERY_QUEUE": f"vrl{tag}",
            "DJANGO_SECRET_KEY": "live-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "DJANGO_DEBUG": "false",
            "HTTPS": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CHAT_START_RATE": "1000/m",
            "EMAIL_URL": f"file://{workdir}/mail",
            "VR_DATA_DIR": str(workdir / "data"),
            "PATH": f"{PY.parent}:{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        })
        if not admission:
            # The live tests check behaviour, not capacity: a machine loaded by the test run itself must
            # not shed their chat starts (routing/admission.py). The benchmarks and the overload test
            # keep production's limits (admission=True); the busy page's test sets its own.
            env.update({"VR_CHAT_START_MAX_IN_FLIGHT": "0", "VR_CHAT_START_MAX_LOOP_LAG": "0",
                        "VR_CHAT_START_MAX_DB_BACKLOG": "0", "VR_MAX_CHATS_PER_PROCESS": "0"})
        env.update(env_over)
        database_from_template(server, dbname, migrated_template(server, env))
        stack = cls(env=env, workdir=workdir, dbname=dbname, server=server)
        paths = []
        for world in worlds:
            path = workdir / f"{world['consortium']['slug']}.yaml"
            path.write_text(yaml.safe_dump(world, sort_keys=False))
            paths.append(str(path))
        # One Django start for the migration (nothing left to do on a copy of the template: the release
        # step's own check) and every import (each manage.py costs a second or two of start-up; a module's
        # stack imports up to a dozen worlds), each import still the real command.
        stack.manage("shell", "-c", _MIGRATE_AND_IMPORT.replace("PATHS", json.dumps(paths)))
        return stack

    def sign_in_all(self, username_prefix: str) -> dict[str, str]:
        """A session key for every staff account whose username starts with `username_prefix`, without
        passwords: a session row exactly like the one Django's login() writes (a password hash costs
        about a second here, times hundreds of accounts)."""
        out = self.manage("shell", "-c", _SIGN_IN_ALL.replace("PREFIX", json.dumps(username_prefix)))
        return dict(json.loads(out.strip().splitlines()[-1]))

    def manage(self, *args: str) -> str:
        r = subprocess.run([str(PY), "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        return r.stdout

    @contextlib.contextmanager
    def running(self, log_tail: int = 6000, **start: int) -> Iterator[Stack]:
        """Every Procfile process started (`start`'s arguments), then on the way out the tail of the
        logs printed (pytest shows it when a test failed) and everything stopped: a module's stack."""
        try:
            self.start(**start)
            yield self
        finally:
            print(self.logs()[-log_tail:])
            self.stop()

    def start(self, webs: int = 1, **copies: int) -> None:
        for kind, command in procfile().items():
            if kind == "release":
                continue
            for i in range(webs if kind == "web" else copies.get(kind, 1)):
                self.start_one(f"{kind}{i + 1}", command)
        for port in self.ports.values():
            self.wait_http(port)

    def start_one(self, name: str, command: str | None = None) -> None:
        command = command or procfile()[re.sub(r"\d+$", "", name)]
        env = dict(self.env)
        if name.startswith("web"):
            self.ports.setdefault(name, free_port())
            env["PORT"] = str(self.ports[name])
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(["bash", "-c", "exec " + command], cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"web on {port} did not answer; logs in {self.workdir}\n{self.logs()}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # daphne drains open sockets on SIGTERM; do not wait for that
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM every process at once, then SIGKILL whatever is still running 10 s later (daphne drains
        open sockets on SIGTERM, Celery finishes its task): one wait for all, not one per process."""
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _psql(self.server or pg_server_url(), f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)', check=False)

    def base(self, web: str = "web1") -> str:
        return f"http://127.0.0.1:{self.ports[web]}"

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}"
                         for f in sorted(self.workdir.glob("*.log")))

    def sql(self, query: str) -> str:
        r = subprocess.run(["psql", self.env["DATABASE_URL"], "-tA", "-c", query], capture_output=True, text=True,
                           check=True)
        return r.stdout.strip()


class Socket:
    """A WebSocket keeping every frame it receives, so a test can wait for one by predicate."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self.seen: list[Frame] = []
        self.closed: int | None = None
        self._cond = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                async with self._cond:
                    frame = json.loads(raw)
                    self.frames.append(frame)
                    self.seen.append(frame)
                    self._cond.notify_all()
        except websockets.ConnectionClosed as e:
            self.closed = e.rcvd.code if e.rcvd else 1006
        finally:
            if self.closed is None:
                self.closed = self.ws.close_code or 1006
            async with self._cond:
                self._cond.notify_all()

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def expect(self, kind: str | Callable[[Frame], bool], timeout: float = 5.0, **match: Any) -> Frame:
        def check(f: Frame) -> bool:
            if callable(kind):
                return kind(f)
            return f.get("type") == kind and all(f.get(k) == v for k, v in match.items())

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._cond:
            while True:
                for i, f in enumerate(self.frames):
                    if check(f):
                        return self.frames.pop(i)
                left = deadline - loop.time()
                if left <= 0 or self.closed is not None:
                    raise AssertionError(f"no {kind} {match} in {timeout}s (closed={self.closed}); "
                                         f"last frames {self.seen[-10:]}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), left)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


async def connect(base: str, path: str, headers: dict[str, str] | None = None) -> Socket:
    ws = await websockets.connect("ws" + base[4:] + path, additional_headers={"Origin": base, **(headers or {})},
                                  open_timeout=20, max_size=2**22)
    return Socket(ws)


def login(base: str, username: str, password: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=20) as c:
        page = c.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        r = c.post("/accounts/login/", data={"username": username, "password": password,
                                             "csrfmiddlewaretoken": token[1] if token else ""},
                   headers={"Referer": base + "/accounts/login/", "Origin": base})
        assert r.status_code == 302, f"login of {username}: {r.status_code}"
        return dict(c.cookies.items())


async def librarian(base: str, username: str, password: str, cookies: dict[str, str] | None = None,
                    available: bool = True) -> tuple[Socket, Frame, dict[str, str]]:
    cookies = cookies or await asyncio.to_thread(login, base, username, password)
    sock = await connect(base, "/ws/staff/", {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    hello = await sock.expect("hello", timeout=15)
    if available:
        await sock.send({"type": "presence", "status": "available"})
        await sock.expect("presence", status="available", timeout=10)
    return sock, hello, cookies


async def launcher_says_open(stack: Stack, consortium: str, library: str) -> None:
    """Until the availability answer each web process keeps (5 s) has caught up with a librarian who
    just went available: an earlier test's "closed" may still be kept."""
    async with httpx.AsyncClient(timeout=10) as c:
        for _ in range(100):
            r = await c.get(f"{stack.base()}/api/v1/{consortium}/availability?library={library}")
            if r.status_code == 200 and r.json()["state"] != "closed":
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the launcher still says closed with a librarian available")


async def start_chat(base: str, consortium: str, question: str, **fields: Any) -> Frame:
    async with httpx.AsyncClient(timeout=20) as c:
        r = await c.post(f"{base}/api/v1/{consortium}/chats", json={"question": question, **fields},
                         headers={"Origin": base})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def patron(base: str, chat: Frame, after: int = 0) -> Socket:
    sock = await connect(base, "/ws/patron/")
    await sock.send({"type": "join", "chat": chat["id"], "token": chat["token"], "after": after})
    await sock.expect("joined", timeout=15)
    return sock


def world(slug: str, libraries: list[dict[str, Any]], staff: list[dict[str, Any]], **settings: int) -> dict[str, Any]:
    base = {"local_timeout": 3, "partner_timeout": 3, "offer_timeout": 3, "max_wait": 600, "reconnect_grace": 3,
            "patron_grace": 5, "idle_timeout": 1200, "librarian_capacity": 3}
    base.update(settings)
    return {
        "consortium": {"slug": slug, "name": slug.title(), "timezone": "America/New_York", "settings": base},
        "queues": [{"slug": "statewide", "name": "Statewide", "hours": "always"}],
        "libraries": [{"name": f"{lib['slug'].title()} Library", "kind": "public", "timezone": "America/New_York",
                       "hours": "always", **lib} for lib in libraries],
        "staff": [{"name": s["username"].upper(), "email": f"{s['username']}@example.org", "role": "librarian",
                   "password": PASSWORD, **s} for s in staff],
    }


PASSWORD = "Live-test-pw-1"
