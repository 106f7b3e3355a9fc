"""Python's cyclic garbage collector in a web process: settled once the application is loaded.

A web process holds a socket and its consumer, session, scope, task and channel-layer queue for every
patron and librarian connected: at 1,000 chats on two processes about 80,000 such objects each, over
the ~128,000 that importing Django, Channels, Twisted and the project leaves behind. CPython's
collector scans every tracked object of a generation when it collects it, and the event loop waits:
measured in the web processes of `bench/ws_load.py --chats 1000` (a gc.callbacks hook timing each
collection), a full collection took 120-700 ms, and one fell in the minute of steady state of most
runs, delaying every frame of the process; so did young collections of 10-30 ms every few seconds.
Those pauses were the delivery's p99 and max (p99 32-89 ms, max 262-303 ms against the bare relay's
7-8 ms and 77-129 ms). Settled, the same runs had no pause of 10 ms or more in their steady state.

So, once, when the application has been imported under a server:

- `gc.freeze()`: what exists then (modules, classes, functions, settings, URL patterns: objects that
  live as long as the process) moves to the permanent generation and is never scanned again. A full
  collection of a process at rest went from 70 ms to nothing here.
- the young generation is collected after `young` allocations (default 10,000; CPython's is 700):
  most of a frame's objects are freed by reference counting long before, so fewer collections run,
  fewer short-lived objects survive into the older generations, and full collections, which CPython
  starts only when the old generation has grown by a quarter, come far less often. A young
  collection then scans at most those 10,000 objects (a few ms).

Cyclic garbage is still collected, a little later: memory is held by the soak test
(tests/faults/test_soak.py) like everything else. `VR_GC_YOUNG=0` leaves CPython's collector as it is.
"""

from __future__ import annotations

import gc
import sys


def under_daphne() -> bool:
    """Is this process daphne's command line (deploy/Procfile's web line), importing the application?"""
    return "daphne.cli" in sys.modules


def settle(young: int) -> bool:
    """Freeze what is loaded and collect the young generation after `young` allocations; True if done,
    False with `young` 0. Called once the application is loaded, by a server process only (daphne's
    command line, manage.py serve): the test suite and management commands keep CPython's collector."""
    if young <= 0:
        return False
    gc.collect()  # what importing left as garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
    return True
