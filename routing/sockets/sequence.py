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
