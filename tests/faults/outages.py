"""Private servers and a private network for the fault tests: a Redis and a PostgreSQL of the test's
own (never the machine's shared ones: other people's tests use those), which the test may stop and
restart, and a network namespace joined to this host by a veth pair, whose link the test may cut.

Everything here is a context manager that cleans up in `finally`, also when the test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.live.stack import free_port


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout}s")


# --- Redis -----------------------------------------------------------------------------------------


class PrivateRedis:
    """redis-server on a free loopback port, no persistence: stopping it loses what it held, as a
    crashed or restarted Redis without a disk would (the worst case for the channel layer and Celery)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="vr_h3_redis_"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--maxclients", "10000"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(self.answers, 20, f"redis on {self.port}")

    def answers(self) -> bool:
        r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5)
        return r.stdout.strip() == "PONG"

    def stop(self) -> None:
        """Gone at once, as a crash: SIGKILL, no goodbye to the clients beyond the kernel's RSTs."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    try:
        redis.start()
        yield redis
    finally:
        redis.close()


# --- PostgreSQL ------------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no /usr/lib/postgresql/*/bin/{name}: the PostgreSQL server package is needed")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: initdb into a temporary folder, run as the `postgres`
    OS user (PostgreSQL refuses to run as root), on a free loopback port, trust authentication."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="vr_h3_pg_"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres", "postgres")

    @property
    def server(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def _as_postgres(self, *argv: str, timeout: float = 120) -> None:
        r = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True,
                           timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {r.stdout}\n{r.stderr}\n{self.log_tail()}")

    def init(self) -> None:
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                          "-E", "UTF8", "--locale", "C")

    def start(self) -> None:
        # fsync off: a test cluster, thrown away after; the restart below is a clean one either way.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-o", options,
                          "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: what `systemctl restart postgresql` does (every session terminated, then a clean
        shutdown); immediate: a crash (no shutdown checkpoint, recovery at the next start)."""
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def log_tail(self) -> str:
        path = self.dir / "pg.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.close()


# --- a network namespace ---------------------------------------------------------------------------


@dataclass
class Namespace:
    """A network namespace joined to this host by a veth pair on a private /30: 10.200.0.1 here,
    10.200.0.2 inside. Nothing else is routed: traffic stays between the two ends."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str = "10.200.0.1"
    ns_ip: str = "10.200.0.2"

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              check=True, timeout=30)

    def popen(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)  # type: ignore[call-overload]

    def cut(self) -> None:
        """The link goes dark, as a pulled cable or a dead Wi-Fi: the namespace's end is set down, so
        nothing at all crosses any more, and neither side sends a FIN or an RST (there is no link to
        send it on). Both kernels keep their half of the connection open."""
        self.run("ip", "link", "set", self.ns_if, "down")


def _ip(*argv: str, check: bool = True) -> None:
    subprocess.run(["ip", *argv], capture_output=True, text=True, check=check, timeout=30)


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    for tool in ("ip",):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: install iproute2")
    tag = uuid.uuid4().hex[:6]
    ns = Namespace(name=f"vrh3{tag}", host_if=f"vrh3h{tag}", ns_if=f"vrh3n{tag}")
    try:
        _ip("netns", "add", ns.name)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        _ip("link", "set", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        ns.run("ip", "addr", "add", f"{ns.ns_ip}/30", "dev", ns.ns_if)
        ns.run("ip", "link", "set", ns.ns_if, "up")
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        _ip("link", "del", ns.host_if, check=False)  # takes its peer with it
        _ip("netns", "del", ns.name, check=False)

