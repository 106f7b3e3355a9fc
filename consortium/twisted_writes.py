"""Daphne's writes sent at once: a TCP connection's bytes go to the socket when written, not on the
reactor's next turn.

Twisted's FileDescriptor.write only buffers, and registers the socket for writability; the reactor
sends on its next turn and then unregisters it. On daphne's asyncio reactor each frame sent to a
client (every message delivered, every keep-alive ping) therefore costs an add_writer and a
remove_writer on the event loop (two epoll_ctl calls and their Python around them) and a loop turn
of its own. asyncio's own transports, which the bare relay of bench/ws_load.py uses, send at once
and register only when the kernel's buffer is full. `install` makes daphne's plain TCP connections
do the same: when nothing is waiting to be sent and the connection is not being closed, the bytes
go to the socket at once; what the kernel does not take (a full buffer), and every other case (TLS,
bytes already waiting, a half-closed or closing connection, an error on the socket), takes Twisted's
own path, so order, back-pressure (producers) and error handling stay Twisted's.
"""

from __future__ import annotations

import sys
from typing import Any

_installed = False


def install() -> bool:
    """Patch twisted.internet.tcp.Connection.write (idempotent); True if it is (now) patched.

    Only where a reactor is already installed (daphne installs its asyncio reactor before it imports
    the application; importing twisted.internet.reactor here would install Twisted's default one),
    and only the asyncio reactor, whose registered writers this checks: under another reactor,
    Twisted's writes are left as they are."""
    global _installed
    if _installed:
        return True
    if "twisted.internet.reactor" not in sys.modules:
        return False
    from twisted.internet import asyncioreactor, reactor, tcp

    if not isinstance(reactor, asyncioreactor.AsyncioSelectorReactor):
        return False
    writers = reactor._writers  # the connections registered for writability (asyncioreactor.addWriter)
    buffered = tcp.Connection.write

    def write(self: Any, data: bytes) -> None:
        if (self.TLS or not self.connected or self.disconnecting or self._writeDisconnected
                or self._tempDataBuffer or self.offset != len(self.dataBuffer) or self in writers
                or type(data) is not bytes):
            buffered(self, data)
            return
        try:
            sent = self.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            buffered(self, data)  # the reactor's write meets the error and closes the connection its way
            return
        if sent < len(data):
            buffered(self, data[sent:])

    tcp.Connection.write = write  # type: ignore[method-assign]
    _installed = True
    return True
