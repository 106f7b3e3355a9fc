"""Properties of the router's decision core over random consortia (docs/routing.md).

Each example is a few queues (some open, some rota-driven, some direct), a handful of present
librarians, a plan of 1-3 steps built from those queues, a chat somewhere along it with random
offers and declines, and an instant. No database, no clock: every time is `now` plus or minus seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.router import (
    BROADCAST,
    DIRECT,
    Decision,
    Librarian,
    OpenOffer,
    Situation,
    Step,
    WaitingChat,
    audience,
    cannot_answer,
    decide,
    decide_reading,
    eligible,
    step_mode,
)

QUEUES = ("a", "b", "c", "d")
LANGUAGES = ("en", "es")
LIBRARIAN_IDS = range(1, 7)
BASE = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)

SETTINGS = settings(max_examples=200, deadline=None)


@dataclass(frozen=True)
class Case:
    chat: WaitingChat
    situation: Situation

    @property
    def now(self) -> datetime:
        return self.situation.now


# Strategies are built once: building them inside each draw made generation ten times slower.
QUEUE_SETS = st.frozensets(st.sampled_from(QUEUES))
SOME_QUEUES = st.frozensets(st.sampled_from(QUEUES), min_size=1)
STEP_QUEUES = st.lists(st.sampled_from(QUEUES), min_size=1, max_size=2, unique=True).map(tuple)
LANGUAGE_SETS = st.frozensets(st.sampled_from(LANGUAGES))
IDS = st.sampled_from(range(1, 9))  # 7 and 8 are never present: offers and declines of absent librarians
ID_SETS = st.frozensets(IDS)
MODES = st.fixed_dictionaries({q: st.sampled_from((BROADCAST, DIRECT)) for q in QUEUES})
CHANGES_IN = st.fixed_dictionaries({q: st.none() | st.integers(1, 7200) for q in QUEUES})  # seconds after now
OFFER_EXPIRY = st.none() | st.integers(-30, 30)  # None: a broadcast offer; else a direct one, seconds after now
GONE_FOR = st.none() | st.integers(0, 180)


def ago(draw: st.DrawFn, now: datetime, most: int) -> datetime:
    return now - timedelta(seconds=draw(st.integers(0, most)))


@st.composite
def librarians(draw: st.DrawFn, now: datetime) -> tuple[Librarian, ...]:
    ids = draw(st.lists(st.sampled_from(LIBRARIAN_IDS), unique=True, max_size=len(LIBRARIAN_IDS)))
    found = []
    for id in ids:
        queues = draw(SOME_QUEUES)
        capacity = draw(st.integers(1, 3))
        found.append(Librarian(
            id=id, queues=queues, capacity=capacity, active=draw(st.integers(0, capacity)),
            languages=draw(LANGUAGE_SETS), idle_since=ago(draw, now, 3600), on_shift=draw(QUEUE_SETS) & queues,
        ))
    return tuple(found)


@st.composite
def plans(draw: st.DrawFn) -> tuple[Step, ...]:
    count = draw(st.integers(1, 3))
    return tuple(Step(f"step-{i}", draw(STEP_QUEUES), None if i == count - 1 else draw(st.integers(1, 120)))
                 for i in range(count))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    now = BASE + timedelta(seconds=draw(st.integers(0, 10**6)))
    present: dict[str, list[Librarian]] = {}
    for librarian in draw(librarians(now)):
        for queue in librarian.queues:
            present.setdefault(queue, []).append(librarian)
    sit = Situation(
        now=now,
        open_queues=draw(QUEUE_SETS),
        present={queue: tuple(libs) for queue, libs in present.items()},
        queue_mode=draw(MODES),
        rota_driven=draw(QUEUE_SETS),
        next_change={q: None if s is None else now + timedelta(seconds=s) for q, s in draw(CHANGES_IN).items()},
        offer_timeout=draw(st.integers(1, 60)),
        max_wait=draw(st.integers(1, 900)),
        patron_grace=draw(st.integers(1, 120)),
    )

    plan = draw(plans())
    step_index = draw(st.integers(-1, len(plan) - 1))
    arrived = ago(draw, now, 1200)
    entered = None
    offers: tuple[OpenOffer, ...] = ()
    offered = declined = frozenset[int]()
    if step_index >= 0:  # a new chat has no offers yet
        entered = ago(draw, now, 300)
        offer_ids = draw(st.lists(IDS, unique=True, max_size=4))
        expiries = [draw(OFFER_EXPIRY) for _ in offer_ids]
        offers = tuple(OpenOffer(lib_id, BROADCAST, None) if s is None
                       else OpenOffer(lib_id, DIRECT, now + timedelta(seconds=s))
                       for lib_id, s in zip(offer_ids, expiries, strict=True))
        declined = draw(ID_SETS) - set(offer_ids)
        offered = frozenset(offer_ids) | declined | draw(ID_SETS)
    gone_for = draw(GONE_FOR)
    waiting = WaitingChat(
        id="chat", plan=plan, step_index=step_index, step_entered_at=entered, arrived_at=arrived,
        created_at=arrived, language=draw(st.sampled_from(("", *LANGUAGES))), offers=offers, offered=offered,
        declined=declined, max_wait_passed=draw(st.booleans()),
        patron_gone_since=None if gone_for is None else now - timedelta(seconds=gone_for),
    )
    return Case(waiting, sit)


# --- helpers: what the decision leaves behind -----------------------------------------------------


def by_id(sit: Situation) -> dict[int, Librarian]:
    return {lib.id: lib for libs in sit.present.values() for lib in libs}


def without(sit: Situation, away: list[int]) -> Situation:
    """The situation once librarians who let a direct offer expire have been set away."""
    present = {queue: tuple(lib for lib in libs if lib.id not in away) for queue, libs in sit.present.items()}
    return replace(sit, present=present)


def kept_offers(chat: WaitingChat, decision: Decision) -> list[OpenOffer]:
    return [o for o in chat.offers if o.librarian not in decision.expired and o.librarian not in decision.withdraw]


def declined_now(chat: WaitingChat, decision: Decision) -> frozenset[int]:
    """Declines that count in the decision's step: a step change starts afresh."""
    if decision.step_changed:
        return frozenset()
    return chat.declined | set(decision.expired)


def after(chat: WaitingChat, decision: Decision) -> WaitingChat:
    """The waiting chat as `routing.services` stores it once the decision is applied."""
    offers = (*kept_offers(chat, decision), *(OpenOffer(o.librarian, o.mode, o.expires_at) for o in decision.offers))
    new_ids = {o.librarian for o in decision.offers}
    if decision.step_changed:
        # Offers still open follow the chat into its new step; the old step's declines stay behind.
        offered, declined = frozenset(o.librarian for o in offers), frozenset[int]()
    else:
        offered, declined = chat.offered | new_ids, chat.declined | set(decision.expired)
    return replace(chat, step_index=decision.step_index, step_entered_at=decision.step_entered_at, offers=offers,
                   offered=offered, declined=declined, max_wait_passed=decision.max_wait_passed)


# --- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(cases())
def test_offers_only_go_to_eligible_librarians_through_an_open_audience_queue(case: Case):
    chat, sit = case.chat, case.situation
    decision = decide(chat, sit)
    if not decision.offers:
        return
    index = decision.step_index
    last_step = index == len(chat.plan) - 1
    present = by_id(sit)
    for offer in decision.offers:
        librarian = present[offer.librarian]
        assert offer.queue in audience(chat.plan, index)
        assert offer.queue in sit.open_queues
        assert librarian in sit.present[offer.queue]
        assert offer.queue not in sit.rota_driven or offer.queue in librarian.on_shift
        assert not chat.language or last_step or chat.language in librarian.languages
        assert librarian.active < librarian.capacity
        assert offer.librarian not in declined_now(chat, decision)
        assert offer.librarian not in decision.expired


@SETTINGS
@given(cases())
def test_nobody_is_offered_twice(case: Case):
    chat, decision = case.chat, decide(case.chat, case.situation)
    new = [o.librarian for o in decision.offers]
    assert len(new) == len(set(new))
    assert not set(new) & {o.librarian for o in kept_offers(chat, decision)}
    if not decision.step_changed:
        assert not {o.librarian for o in decision.offers if o.mode == DIRECT} & chat.offered


@SETTINGS
@given(cases())
def test_step_index_never_decreases(case: Case):
    decision = decide(case.chat, case.situation)
    assert decision.step_index >= case.chat.step_index
    if decision.step_changed:
        assert decision.step_entered_at == case.now


@SETTINGS
@given(cases())
def test_unstaffed_only_for_a_new_chat_no_step_can_answer(case: Case):
    chat, sit = case.chat, case.situation
    decision = decide(chat, sit)
    last = len(chat.plan) - 1
    nobody_anywhere = all(cannot_answer(step, sit, chat.language, i == last) is not None
                          for i, step in enumerate(chat.plan))
    if decision.state == "unstaffed":
        assert chat.step_index == -1
        assert nobody_anywhere
        assert decision.offers == []
    elif decision.state == "queued" and chat.step_index == -1:
        assert not nobody_anywhere


@SETTINGS
@given(cases())
def test_broadcast_offers_every_eligible_librarian(case: Case):
    chat, sit = case.chat, case.situation
    decision = decide(chat, sit)
    if decision.state != "queued":
        return
    step = chat.plan[decision.step_index]
    if step_mode(step, sit) != BROADCAST:
        return
    candidates = eligible(chat, decision.step_index, declined_now(chat, decision), without(sit, decision.expired))
    holding = {o.librarian for o in kept_offers(chat, decision)} | {o.librarian for o in decision.offers}
    assert set(candidates) <= holding


@SETTINGS
@given(cases())
def test_direct_mode_makes_at_most_one_new_offer(case: Case):
    chat, sit = case.chat, case.situation
    decision = decide(chat, sit)
    if decision.state == "queued" and step_mode(chat.plan[decision.step_index], sit) == DIRECT:
        assert len(decision.offers) <= 1
        assert all(o.expires_at == case.now + timedelta(seconds=sit.offer_timeout) for o in decision.offers)


@SETTINGS
@given(cases())
def test_deadline_is_none_or_strictly_after_now(case: Case):
    decision = decide(case.chat, case.situation)
    assert decision.deadline is None or decision.deadline > case.now


@SETTINGS
@given(cases())
def test_abandoned_withdraws_every_open_offer(case: Case):
    decision = decide(case.chat, case.situation)
    if decision.state == "abandoned":
        assert decision.withdraw == {o.librarian: "abandoned" for o in case.chat.offers}
        assert decision.offers == []


@SETTINGS
@given(cases())
def test_deciding_again_at_the_same_instant_changes_nothing(case: Case):
    chat, sit = case.chat, case.situation
    first = decide(chat, sit)
    if first.state != "queued":
        return
    second = decide(after(chat, first), without(sit, first.expired))
    assert second.offers == []
    assert not second.step_changed
    assert second.step_index == first.step_index
    assert second.withdraw == {}
    assert second.expired == []
    assert second.notes == []
    assert second.deadline == first.deadline


def restricted(sit: Situation, queues: frozenset[str] | None) -> Situation:
    """The situation as routing.selectors.situation_for reads it for these queues only: their hours,
    modes and changes, the present librarians serving them, shifts on them (None: everything)."""
    if queues is None:
        return sit
    present = {queue: tuple(replace(lib, on_shift=lib.on_shift & queues) for lib in libs)
               for queue, libs in sit.present.items() if queue in queues}
    return replace(sit, open_queues=sit.open_queues & queues, present=present,
                   queue_mode={q: m for q, m in sit.queue_mode.items() if q in queues},
                   rota_driven=sit.rota_driven & queues,
                   next_change={q: c for q, c in sit.next_change.items() if q in queues})


@SETTINGS
@given(cases())
def test_deciding_on_the_steps_read_so_far_decides_as_on_the_whole_plan(case: Case):
    """decide_reading reads the world step by step (routing.services.route): its answer is decide's."""
    reads: list[frozenset[str] | None] = []

    def read(queues: frozenset[str] | None) -> Situation:
        reads.append(queues)
        return restricted(case.situation, queues)

    whole = decide(case.chat, restricted(case.situation, frozenset(audience(case.chat.plan, len(case.chat.plan) - 1))))
    assert decide_reading(case.chat, case.now, read) == whole
    assert 1 <= len(reads) <= 2
