"""consortium.twisted_writes: daphne's writes go to the socket at once, and nothing written is lost,
reordered or raised when the kernel takes only part of it or the client has gone.

Each case runs in a process of its own: a Twisted reactor is installed once per process (as daphne
installs its asyncio reactor), and this test process must keep Twisted's own writes for the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = textwrap.dedent('''
    import json, socket, sys, threading, time
    from twisted.internet import asyncioreactor
    asyncioreactor.install()
    from twisted.internet import protocol, reactor, tcp
    from consortium import twisted_writes

    PATCHED = sys.argv[1] == "patched"
    CASE = sys.argv[2]
    if PATCHED:
        assert twisted_writes.install() and twisted_writes.install()  # idempotent
    report = {}

    class Writer(protocol.Protocol):
        def connectionMade(self):
            t = self.transport
            if CASE == "small":
                t.write(b"hello")
                # Nothing left waiting for the reactor's next turn: the bytes are in the kernel already.
                report["registered_after_write"] = t in reactor._writers
                t.write(b" world")
                t.loseConnection()
            elif CASE == "large":
                # More than the kernel takes at once: the rest waits in Twisted's buffer, and what is
                # written after it must go behind it, not past it.
                for i in range(50):
                    t.write(b"<%d>" % i)
                t.write(bytes(range(256)) * 40_000)
                for i in range(50, 100):
                    t.write(b"<%d>" % i)
                t.loseConnection()
            elif CASE == "gone":
                gone.wait(10)  # the client has reset the connection; the reactor has not read that yet
                time.sleep(0.2)
                self.late()

        def late(self):
            try:
                for _ in range(200):
                    self.transport.write(b"x" * 10_000)  # the client has reset the connection
                report["raised"] = None
            except Exception as error:
                report["raised"] = repr(error)

        def connectionLost(self, reason):
            report["lost"] = True
            reactor.callLater(0.1, reactor.stop)

    factory = protocol.Factory()
    factory.protocol = Writer
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    received = bytearray()
    gone = threading.Event()

    def client():
        s = socket.create_connection(("127.0.0.1", port.getHost().port))
        if CASE == "gone":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
            s.close()  # a reset, as a client that vanished
            gone.set()
            return
        time.sleep(0.2)  # let the server's buffer fill first
        while chunk := s.recv(65536):
            received.extend(chunk)
        s.close()

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    reactor.callLater(20, reactor.stop)
    reactor.run()
    reader.join(10)  # what the kernel holds for the client is read to the end
    report["received"] = received.hex() if len(received) < 100 else len(received)
    if CASE == "large":
        expected = b"".join(b"<%d>" % i for i in range(50)) + bytes(range(256)) * 40_000 + b"".join(
            b"<%d>" % i for i in range(50, 100))
        report["intact"] = bytes(received) == expected
    report["patched"] = tcp.Connection.write.__module__ == "consortium.twisted_writes"
    print(json.dumps(report))
''')


def run(mode: str, case: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", SERVER, mode, case], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_small_write_leaves_at_once_and_arrives_whole() -> None:
    patched = run("patched", "small")
    assert patched["patched"] is True
    assert patched["registered_after_write"] is False  # sent, not left for the reactor's next turn
    assert bytes.fromhex(str(patched["received"])) == b"hello world"
    # Twisted's own write leaves it for the next turn: what the patch changes.
    plain = run("plain", "small")
    assert plain["patched"] is False and plain["registered_after_write"] is True
    assert bytes.fromhex(str(plain["received"])) == b"hello world"


@pytest.mark.parametrize("mode", ["patched", "plain"])
def test_a_write_larger_than_the_kernel_takes_keeps_every_byte_in_order(mode: str) -> None:
    report = run(mode, "large")
    assert report["intact"] is True
    assert report["lost"] is True  # closed after everything was sent


def test_writing_to_a_client_that_reset_raises_nothing_and_closes() -> None:
    report = run("patched", "gone")
    assert report["raised"] is None
    assert report["lost"] is True


# As daphne starts: its asyncio reactor installed, then the application imported (the embedded settings).
DAPHNE_START = ("from twisted.internet import asyncioreactor; asyncioreactor.install(); import consortium.asgi; "
                "from twisted.internet import tcp; print(tcp.Connection.write.__module__)")


@pytest.mark.parametrize(("setting", "module"), [(None, "consortium.twisted_writes"),
                                                  ("false", "twisted.internet._newtls")])
def test_the_application_under_daphne_writes_directly_unless_switched_off(
        tmp_path: Path, setting: str | None, module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "VR_DIRECT_WRITES",
                                                            "DJANGO_SETTINGS_MODULE"}}
    env.update({"VR_DATA_DIR": str(tmp_path), **({"VR_DIRECT_WRITES": setting} if setting else {})})
    done = subprocess.run([sys.executable, "-c", DAPHNE_START], capture_output=True, text=True, timeout=60, env=env,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == module
