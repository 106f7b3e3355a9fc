#!/usr/bin/env python
"""CPU of the reactor's thread per small write on daphne's reactor (Twisted's asyncio reactor):
Twisted's own writes (buffered until the reactor's next turn) against consortium/twisted_writes.py's
(sent at once). 200 loopback connections, a 200-byte write to each in turn, four a loop turn, as a
socket server's frames go out; a thread of the same process reads them (its CPU is not counted).

    .venv/bin/python bench/twisted_writes.py twisted
    .venv/bin/python bench/twisted_writes.py direct

Run each a few times, alternately: the figures are in docs/benchmarks.md (session 24).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from twisted.internet import asyncioreactor

asyncioreactor.install()
from twisted.internet import protocol  # noqa: E402
from twisted.internet import reactor as _reactor  # noqa: E402

reactor: Any = _reactor  # the asyncio reactor just installed (twisted's stubs type the module, not it)

CONNECTIONS, WRITES, PER_TURN, SIZE = 200, 40_000, 4, 200


class Kept(protocol.Protocol):
    def connectionMade(self) -> None:
        served.append(self)


served: list[Kept] = []
clients: list[socket.socket] = []
state: dict[str, Any] = {"written": 0}


def connect_all(port: int) -> None:
    for _ in range(CONNECTIONS):
        clients.append(socket.create_connection(("127.0.0.1", port)))


def read_all() -> None:
    selector = selectors.DefaultSelector()
    for s in clients:
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
    received = 0
    while received < WRITES * SIZE:
        for key, _ in selector.select(1):
            with contextlib.suppress(BlockingIOError):
                received += len(key.fileobj.recv(65536))  # type: ignore[union-attr]


def step() -> None:
    for _ in range(PER_TURN):
        served[state["written"] % CONNECTIONS].transport.write(b"x" * SIZE)
        state["written"] += 1
    if state["written"] < WRITES:
        reactor.callLater(0, step)
    else:
        state["cpu"] = time.thread_time() - state["cpu0"]
        reactor.callLater(0.5, reactor.stop)


def start() -> None:
    if len(served) < CONNECTIONS or len(clients) < CONNECTIONS:
        reactor.callLater(0.05, start)
        return
    threading.Thread(target=read_all, daemon=True).start()
    state["cpu0"] = time.thread_time()
    step()


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "direct"
    if mode == "direct":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from consortium.twisted_writes import install

        assert install()
    factory = protocol.Factory()
    factory.protocol = Kept
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    threading.Thread(target=connect_all, args=(port.getHost().port,), daemon=True).start()
    reactor.callLater(0.1, start)
    reactor.run()
    print(f"{mode}: {1e6 * state['cpu'] / WRITES:.1f} us of the reactor thread's CPU per write")


if __name__ == "__main__":
    main()
