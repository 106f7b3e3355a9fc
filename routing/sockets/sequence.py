"""Which message seqs of a chat one socket has accounted for, so that it emits each at most once.

A socket's seqs do not always go out in order: after `assigned`, or when a console's join comes after
the hold-back window (routing.sockets.base), live messages flow from the chat's last seq at that
moment while the older ones wait for the join's history. So "the last seq sent" cannot tell whether a
seq went out; this can: every seq up to `floor` is accounted for, and so is each one in `extra`.
"Accounted for" is sent to this client, claimed by it (a join's `after`: it has those), or left out on
purpose (an internal note, on a patron's socket). `extra` empties into `floor` as the gaps below it
fill, so it stays as small as the number of seqs in flight out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Accounted:
    floor: int = 0
    extra: set[int] = field(default_factory=set)

    def has(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.extra

    def add(self, seq: int) -> None:
        if seq > self.floor:
            self.extra.add(seq)
            self._compact()

    def add_upto(self, seq: int) -> None:
        """Everything up to `seq` (a join's history has been sent, or the client claims it with `after`)."""
        if seq > self.floor:
            self.floor = seq
            self.extra = {s for s in self.extra if s > seq}
            self._compact()  # what `extra` held just above the new floor joins it

    def _compact(self) -> None:
        while self.floor + 1 in self.extra:
            self.floor += 1
            self.extra.discard(self.floor)

    @property
    def top(self) -> int:
        return max([self.floor, *self.extra])


# How much longer a hold-back window may last, at most, for the time its socket spent busy (see HeldBack).
BUSY_EXTENSION_MAX = 50.0


class BusyClock:
    """How long a socket has spent handling frames and events, on the monotonic clock.

    A consumer handles one message at a time (Channels' dispatch), so a join sent right after hello
    waits behind whatever the socket is doing: under a reconnect storm (Redis back after an outage,
    every console resuming at once) a console's joins of its chats, each waiting for a database thread,
    took longer than the window between them. Time spent busy is time the socket could not read a join."""

    def __init__(self) -> None:
        self.total = 0.0
        self.since: float | None = None

    def start(self, now: float) -> None:
        self.since = now

    def stop(self, now: float) -> None:
        if self.since is not None:
            self.total += now - self.since
            self.since = None

    def spent(self, now: float) -> float:
        return self.total + (now - self.since if self.since is not None else 0.0)


@dataclass
class HeldBack:
    """Live messages of one chat kept back while the client's (re)join of it is pending. The window
    lasts `seconds` of the socket's *free* time: it is extended by the time the socket spent busy
    since it opened (at most BUSY_EXTENSION_MAX), so a join queued behind other work still comes in
    time; `seconds` = inf while a join is being answered."""

    opened: float
    seconds: float
    busy_at_open: float
    frames: list[tuple[dict[str, object], bool]] = field(default_factory=list)

    def until(self, busy: BusyClock, now: float) -> float:
        extension = min(BUSY_EXTENSION_MAX, busy.spent(now) - self.busy_at_open)
        return self.opened + self.seconds + extension

    def open_at(self, busy: BusyClock, now: float) -> bool:
        return now < self.until(busy, now)
