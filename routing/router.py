"""The router: given a waiting chat, the time, the hours and who is present, decide what happens next.

Plain, typed Python with no I/O, so that "why did library B get this chat?" can be answered by
reading this one module (and tested with an injected clock). `routing.services` loads a
`Situation` from the database, calls `decide`, and applies the `Decision` in a transaction.

The rules are those of docs/routing.md; the comments say where this module had to choose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NamedTuple

BROADCAST = "broadcast"
DIRECT = "direct"


@dataclass(frozen=True)
class Step:
    name: str
    queues: tuple[str, ...]
    wait: int | None  # seconds; None on the last step, which has no timeout
    # A transfer to a named librarian is a one-step plan that only that librarian can answer.
    librarian: int | None = None


@dataclass(frozen=True)
class Librarian:
    """A present librarian (connected or within the reconnect grace, status available)."""

    id: int
    queues: frozenset[str]  # the library's local queue and the shared queues on the profile
    capacity: int
    active: int
    languages: frozenset[str]
    idle_since: datetime
    on_shift: frozenset[str] = frozenset()  # rota-driven queues this librarian is on shift for now


class OpenOffer(NamedTuple):
    # A tuple, not a frozen dataclass: a chat in a shared queue's step holds an open offer per
    # librarian of its audience (~100), read for each of the hundreds of chats that one librarian's
    # presence change re-routes, and a dataclass cost three times as much to make.
    librarian: int
    mode: str
    expires_at: datetime | None


@dataclass(frozen=True)
class WaitingChat:
    id: str
    plan: tuple[Step, ...]
    step_index: int  # -1: not routed yet (a new chat)
    step_entered_at: datetime | None
    arrived_at: datetime
    created_at: datetime
    language: str = ""
    offers: tuple[OpenOffer, ...] = ()  # offers still open
    offered: frozenset[int] = frozenset()  # everyone offered in the current step, whatever came of it
    declined: frozenset[int] = frozenset()  # declined or let expire in the current step
    max_wait_passed: bool = False
    patron_gone_since: datetime | None = None


@dataclass(frozen=True)
class Situation:
    """The world at one instant, as far as routing is concerned."""

    now: datetime
    open_queues: frozenset[str]
    present: Mapping[str, tuple[Librarian, ...]]  # queue slug -> present librarians serving it
    queue_mode: Mapping[str, str] = field(default_factory=dict)
    rota_driven: frozenset[str] = frozenset()
    next_change: Mapping[str, datetime | None] = field(default_factory=dict)  # queue -> next open/close
    offer_timeout: int = 20
    max_wait: int = 600
    patron_grace: int = 60
    # queue -> its present librarians with room who serve it now (capacity and rota: the same for every
    # chat): worked out once per situation, which a presence change shares among hundreds of chats.
    _with_room: dict[str, tuple[Librarian, ...]] = field(default_factory=dict, init=False, repr=False,
                                                         compare=False)

    def with_room(self, queue: str) -> tuple[Librarian, ...]:
        found = self._with_room.get(queue)
        if found is None:
            found = self._with_room[queue] = tuple(
                lib for lib in self.present.get(queue, ()) if lib.active < lib.capacity and _serves(lib, queue, self))
        return found


@dataclass(frozen=True)
class NewOffer:
    librarian: int
    queue: str
    mode: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Note:
    """One line of the chat's trace."""

    kind: str
    data: dict[str, object]


@dataclass
class Decision:
    state: str  # queued | unstaffed | abandoned
    step_index: int
    step_entered_at: datetime | None
    step_changed: bool = False
    notes: list[Note] = field(default_factory=list)
    offers: list[NewOffer] = field(default_factory=list)
    withdraw: dict[int, str] = field(default_factory=dict)  # librarian -> reason
    expired: list[int] = field(default_factory=list)  # direct offers let expire: those librarians go away
    max_wait_passed: bool = False
    deadline: datetime | None = None


def audience(plan: tuple[Step, ...], step_index: int) -> tuple[str, ...]:
    """The queues of steps 1..k, in plan order: moving on never takes a chat from earlier queues."""
    seen: dict[str, None] = {}
    for step in plan[: step_index + 1]:
        for queue in step.queues:
            seen.setdefault(queue, None)
    return tuple(seen)


def _speaks(librarian: Librarian, language: str, last_step: bool) -> bool:
    # In every step but the last, a chat with a language goes only to librarians who list it.
    return not language or last_step or language in librarian.languages


def _serves(librarian: Librarian, queue: str, situation: Situation) -> bool:
    return queue not in situation.rota_driven or queue in librarian.on_shift


def _present_in(step: Step, situation: Situation) -> list[Librarian]:
    found: list[Librarian] = []
    for queue in step.queues:
        if queue in situation.open_queues:
            found.extend(lib for lib in situation.present.get(queue, ()) if _serves(lib, queue, situation))
    return found


def cannot_answer(step: Step, situation: Situation, language: str, last_step: bool) -> str | None:
    """Why a step cannot answer right now ('closed' or 'nobody'), or None if it can.

    Busy is not absent: present librarians at capacity still make a step worth waiting on.
    """
    if step.librarian is not None:
        ids = {lib.id for libs in situation.present.values() for lib in libs}
        return None if step.librarian in ids else "nobody"
    if not any(q in situation.open_queues for q in step.queues):
        return "closed"
    if not any(_speaks(lib, language, last_step) for lib in _present_in(step, situation)):
        return "nobody"
    return None


def eligible(chat: WaitingChat, step_index: int, declined: frozenset[int],
             situation: Situation) -> dict[int, tuple[Librarian, str]]:
    """Who may be offered the chat now, each with the queue it reaches them through (audience order)."""
    last_step = step_index == len(chat.plan) - 1
    step = chat.plan[step_index]
    found: dict[int, tuple[Librarian, str]] = {}
    if step.librarian is not None:
        for libs in situation.present.values():
            for lib in libs:
                if lib.id == step.librarian and lib.active < lib.capacity and lib.id not in declined:
                    queue = step.queues[0] if step.queues else ""
                    return {lib.id: (lib, queue)}
        return found
    language = chat.language
    for queue in audience(chat.plan, step_index):
        if queue not in situation.open_queues:
            continue
        for lib in situation.with_room(queue):
            if lib.id in found or lib.id in declined or not _speaks(lib, language, last_step):
                continue
            found[lib.id] = (lib, queue)
    return found


def step_mode(step: Step, situation: Situation) -> str:
    """A step offers the way its first queue is set to (documented in docs/routing.md).

    A transfer to a named librarian is offered to that librarian without a countdown: it is not a
    queue's rotation, and letting it expire would set them away for a chat meant for them.
    """
    if step.librarian is not None or not step.queues:
        return BROADCAST
    return situation.queue_mode.get(step.queues[0], BROADCAST)


def _withdraw_reason(librarian_id: int, audience_queues: tuple[str, ...], situation: Situation) -> str:
    """Why an open offer goes: 'closed' when every queue it could come through has closed."""
    for libs in situation.present.values():
        for lib in libs:
            if lib.id == librarian_id:
                reachable = [q for q in audience_queues if q in lib.queues]
                if reachable and not any(q in situation.open_queues for q in reachable):
                    return "closed"
                return "unavailable"
    return "unavailable"


def _enter(chat: WaitingChat, start: int, situation: Situation, decision: Decision, *, new_chat: bool) -> bool:
    """Enter the first step from `start` on that can answer. False when none can (a new chat: unstaffed)."""
    last = len(chat.plan) - 1
    for index in range(start, len(chat.plan)):
        step = chat.plan[index]
        reason = cannot_answer(step, situation, chat.language, index == last)
        if reason is None or (index == last and not new_chat):
            # The last step is always entered by a waiting chat: it has no timeout and nowhere to go.
            decision.step_index = index
            decision.step_entered_at = situation.now
            decision.step_changed = True
            data: dict[str, object] = {"step": step.name, "queues": list(step.queues)}
            if reason:
                data["note"] = f"nobody can answer now ({reason}); waiting in the last step"
            decision.notes.append(Note("step_entered", data))
            return True
        decision.notes.append(Note("step_skipped", {"step": step.name, "reason": reason,
                                                    "queues": list(step.queues)}))
    return False


def decide(chat: WaitingChat, situation: Situation) -> Decision:
    now = situation.now
    decision = Decision(state="queued", step_index=chat.step_index, step_entered_at=chat.step_entered_at,
                        max_wait_passed=chat.max_wait_passed)
    open_offers = {offer.librarian: offer for offer in chat.offers}

    if chat.patron_gone_since is not None:
        gone_at = chat.patron_gone_since + timedelta(seconds=situation.patron_grace)
        if now >= gone_at:
            decision.state = "abandoned"
            decision.notes.append(Note("abandoned", {"patron_gone_since": chat.patron_gone_since.isoformat()}))
            decision.withdraw = {lib: "abandoned" for lib in open_offers}
            return decision

    # A direct offer left too long: withdrawn, counted as a decline, and the librarian is set away.
    declined = set(chat.declined)
    offered = set(chat.offered)
    for offer in chat.offers:
        if offer.expires_at is not None and offer.expires_at <= now:
            decision.expired.append(offer.librarian)
            decision.notes.append(Note("offer_expired", {"librarian": offer.librarian}))
            declined.add(offer.librarian)
            del open_offers[offer.librarian]
    if decision.expired:
        # That librarian is set away by this very decision, so is no longer present: without this, a
        # step change at the same instant (declines start afresh) offered them the chat again, and a
        # step only they staffed was not left at once as docs/routing.md asks ("no present librarian").
        away = set(decision.expired)
        situation = replace(situation, present={queue: tuple(lib for lib in libs if lib.id not in away)
                                                for queue, libs in situation.present.items()})

    last = len(chat.plan) - 1
    if chat.step_index < 0:
        decision.notes.append(Note("routing", {"steps": [s.name for s in chat.plan]}))
        if not _enter(chat, 0, situation, decision, new_chat=True):
            decision.state = "unstaffed"
            decision.step_index = -1
            decision.notes.append(Note("unstaffed", {"reason": "no step could answer"}))
            return decision
    elif chat.step_index < last:
        step = chat.plan[chat.step_index]
        assert chat.step_entered_at is not None
        reason: str | None = None
        if step.wait is not None and now >= chat.step_entered_at + timedelta(seconds=step.wait):
            reason = "timeout"
        else:
            reason = cannot_answer(step, situation, chat.language, last_step=False)
        if reason is not None:
            decision.notes.append(Note("escalated", {"from": step.name, "reason": reason}))
            _enter(chat, chat.step_index + 1, situation, decision, new_chat=False)

    if decision.step_changed:
        # A new step: declines start afresh; offers still open stay open and belong to the new step.
        declined = set()
        offered = set(open_offers)

    index = decision.step_index
    step = chat.plan[index]
    candidates = eligible(chat, index, frozenset(declined), situation)
    for lib in open_offers:
        if lib not in candidates:
            decision.withdraw[lib] = _withdraw_reason(lib, audience(chat.plan, index), situation)
    kept = {lib: offer for lib, offer in open_offers.items() if lib in candidates}

    mode = step_mode(step, situation)
    if mode == BROADCAST:
        for lib_id, (_lib, queue) in candidates.items():
            if lib_id not in kept:
                decision.offers.append(NewOffer(lib_id, queue, BROADCAST, None))
    elif not kept:
        # Direct: one librarian at a time, fewest active chats first, then longest idle.
        fresh = [(lib, queue) for lib_id, (lib, queue) in candidates.items() if lib_id not in offered]
        if fresh:
            chosen, queue = min(fresh, key=lambda pair: (pair[0].active, pair[0].idle_since, pair[0].id))
            expires = now + timedelta(seconds=situation.offer_timeout)
            decision.offers.append(NewOffer(chosen.id, queue, DIRECT, expires))
    for new in decision.offers:
        decision.notes.append(Note("offered", {"librarian": new.librarian, "queue": new.queue, "mode": new.mode}))

    max_wait_at = chat.arrived_at + timedelta(seconds=situation.max_wait)
    if not chat.max_wait_passed and now >= max_wait_at:
        decision.max_wait_passed = True
        decision.notes.append(Note("max_wait", {"waited": int((now - chat.arrived_at).total_seconds())}))

    decision.deadline = _next_deadline(chat, decision, kept, situation, max_wait_at)
    return decision


def _next_deadline(chat: WaitingChat, decision: Decision, kept: Mapping[int, OpenOffer],
                   situation: Situation, max_wait_at: datetime) -> datetime | None:
    """The next instant at which this decision could come out differently without anyone acting."""
    times: list[datetime] = []
    index = decision.step_index
    step = chat.plan[index]
    if index < len(chat.plan) - 1 and step.wait is not None and decision.step_entered_at is not None:
        times.append(decision.step_entered_at + timedelta(seconds=step.wait))
    times.extend(o.expires_at for o in kept.values() if o.expires_at is not None)
    times.extend(o.expires_at for o in decision.offers if o.expires_at is not None)
    if not decision.max_wait_passed:
        times.append(max_wait_at)
    for queue in audience(chat.plan, index):
        change = situation.next_change.get(queue)
        if change is not None:
            times.append(change)
    if chat.patron_gone_since is not None:
        times.append(chat.patron_gone_since + timedelta(seconds=situation.patron_grace))
    return min(times) if times else None


def decide_reading(chat: WaitingChat, now: datetime, read: Callable[[frozenset[str] | None], Situation]) -> Decision:
    """decide, with the world read only as far along the plan as the decision goes.

    A decision that ends in step k looks only at the queues of steps 1..k (the audience, and the
    steps skipped on the way); so the situation is read first for the steps up to the chat's own
    (the next one too, when its wait is over), and again for the whole plan only when the decision
    went past them. For a new chat whose home library is staffed, that reads the few librarians of
    its local queue instead of everyone serving its partners' and the shared queues. `read(queues)`
    gives the situation at `now` for those queues (None: every queue, for a plan that names a
    librarian, whom any queue may hold). The answer is decide's on the whole plan's situation: the
    property tests check it.
    """
    plan = chat.plan
    last = len(plan) - 1
    reach = _reach(chat, now)
    first = frozenset(audience(plan, reach)) if reach is not None else None
    if reach is not None and reach < last:
        decision = decide(chat, read(first))
        if decision.state == "abandoned" or 0 <= decision.step_index <= reach:
            return decision
        return decide(chat, read(frozenset(audience(plan, last))))
    return decide(chat, read(first))


def first_reading(plan: tuple[Step, ...], step_index: int, step_entered_at: datetime | None,
                  now: datetime) -> frozenset[str] | None:
    """The queues whose situation decide_reading reads first for a chat at this step of this plan
    (None: every queue): what a caller can ask for before the chat is in hand (route.chat_route, with
    the lock)."""
    view = WaitingChat(id="", plan=plan, step_index=step_index, step_entered_at=step_entered_at,
                       arrived_at=now, created_at=now)
    reach = _reach(view, now)
    return None if reach is None else frozenset(audience(plan, reach))


def _reach(chat: WaitingChat, now: datetime) -> int | None:
    """The last step whose queues decide_reading reads first (None: a plan that names a librarian,
    whom any queue may hold: every queue is read)."""
    plan = chat.plan
    last = len(plan) - 1
    if any(step.librarian is not None for step in plan):
        return None
    reach = max(chat.step_index, 0)
    if 0 <= chat.step_index < last and chat.step_entered_at is not None:
        wait = plan[chat.step_index].wait
        if wait is not None and now >= chat.step_entered_at + timedelta(seconds=wait):
            reach += 1  # it moves on: read the step it is likely to enter too
    return min(reach, last)
