"""The router's decision core against docs/routing.md, one rule per test.

No database and no real clock: every instant is T0 plus a fixed number of seconds. The default plan
is local (home, 45 s) -> partners (two partner libraries, 60 s) -> consortium (statewide, no wait).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from routing.plan import plan_from_json
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
    decide,
)

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
HOME, P1, P2, STATE = "home", "partner-1", "partner-2", "statewide"
ALL_QUEUES = (HOME, P1, P2, STATE)
PLAN = plan_from_json([
    {"name": "local", "queues": [HOME], "wait": 45},
    {"name": "partners", "queues": [P1, P2], "wait": 60},
    {"name": "consortium", "queues": [STATE], "wait": None},
])
LOCAL, PARTNERS, CONSORTIUM = 0, 1, 2


# --- builders -------------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lib(id: int, *queues: str, capacity: int = 3, active: int = 0, languages: Iterable[str] = ("en",),
        idle: float = -600, on_shift: Iterable[str] = ()) -> Librarian:
    """A present librarian serving `queues`, idle since `idle` seconds after T0."""
    return Librarian(id=id, queues=frozenset(queues), capacity=capacity, active=active,
                     languages=frozenset(languages), idle_since=at(idle), on_shift=frozenset(on_shift))


def situation(*librarians: Librarian, now: datetime = T0, open_queues: Iterable[str] = ALL_QUEUES,
              modes: Mapping[str, str] | None = None, rota: Iterable[str] = (),
              next_change: Mapping[str, datetime | None] | None = None, offer_timeout: int = 20,
              max_wait: int = 600, patron_grace: int = 60) -> Situation:
    present: dict[str, list[Librarian]] = {}
    for librarian in librarians:
        for queue in librarian.queues:
            present.setdefault(queue, []).append(librarian)
    return Situation(now=now, open_queues=frozenset(open_queues),
                     present={queue: tuple(libs) for queue, libs in present.items()},
                     queue_mode=dict(modes or {}), rota_driven=frozenset(rota), next_change=dict(next_change or {}),
                     offer_timeout=offer_timeout, max_wait=max_wait, patron_grace=patron_grace)


def chat(*, step: int = -1, entered: datetime | None = None, plan: tuple[Step, ...] = PLAN, language: str = "",
         offers: Iterable[OpenOffer] = (), offered: Iterable[int] = (), declined: Iterable[int] = (),
         arrived: datetime = T0, gone: datetime | None = None, max_wait_passed: bool = False) -> WaitingChat:
    """A waiting chat; a chat in a step entered it at T0 unless told. `offered` always covers offers and declines."""
    offers = tuple(offers)
    if step >= 0 and entered is None:
        entered = T0
    return WaitingChat(id="chat-1", plan=plan, step_index=step, step_entered_at=entered, arrived_at=arrived,
                       created_at=arrived, language=language, offers=offers,
                       offered=frozenset(offered) | {o.librarian for o in offers} | frozenset(declined),
                       declined=frozenset(declined), max_wait_passed=max_wait_passed, patron_gone_since=gone)


def broadcast(librarian: int) -> OpenOffer:
    return OpenOffer(librarian, BROADCAST, None)


def direct(librarian: int, expires_at: datetime) -> OpenOffer:
    return OpenOffer(librarian, DIRECT, expires_at)


def offered_to(decision: Decision) -> list[int]:
    return [offer.librarian for offer in decision.offers]


def notes(decision: Decision, kind: str) -> list[dict[str, object]]:
    return [note.data for note in decision.notes if note.kind == kind]


# --- the route plan -------------------------------------------------------------------------------


def test_default_plan_is_local_then_partners_then_consortium():
    assert [step.name for step in PLAN] == ["local", "partners", "consortium"]
    assert [step.queues for step in PLAN] == [(HOME,), (P1, P2), (STATE,)]


def test_partner_step_waits_and_last_step_has_no_wait():
    assert [step.wait for step in PLAN] == [45, 60, None]


def test_plan_from_json_drops_the_wait_of_a_custom_last_step():
    plan = plan_from_json([{"name": "spanish", "queues": ["es"], "wait": 30}, {"name": "all", "queues": ["x"],
                                                                                "wait": 90}])
    assert plan == (Step("spanish", ("es",), 30), Step("all", ("x",), None))


def test_audience_is_the_union_of_the_steps_so_far():
    assert audience(PLAN, LOCAL) == (HOME,)
    assert audience(PLAN, PARTNERS) == (HOME, P1, P2)
    assert audience(PLAN, CONSORTIUM) == (HOME, P1, P2, STATE)


# --- cumulative audience --------------------------------------------------------------------------


def test_escalating_to_partners_keeps_the_local_librarians_offers():
    decision = decide(chat(step=LOCAL, offers=[broadcast(1)]), situation(lib(1, HOME), lib(2, P1), now=at(45)))
    assert decision.step_index == PARTNERS
    assert decision.withdraw == {}
    assert offered_to(decision) == [2]


def test_local_librarian_is_still_offered_after_escalation_to_partners():
    decision = decide(chat(step=PARTNERS), situation(lib(1, HOME), now=at(10)))
    assert [(o.librarian, o.queue) for o in decision.offers] == [(1, HOME)]


# --- skipping what cannot answer ------------------------------------------------------------------


def test_closed_step_is_skipped_at_once():
    decision = decide(chat(), situation(lib(1, HOME), lib(2, P1), open_queues=(P1, P2, STATE)))
    assert decision.step_index == PARTNERS
    assert decision.step_entered_at == T0
    assert [(n["step"], n["reason"]) for n in notes(decision, "step_skipped")] == [("local", "closed")]
    assert offered_to(decision) == [2]


def test_step_with_nobody_present_is_skipped_at_once():
    decision = decide(chat(), situation(lib(2, P1)))
    assert decision.step_index == PARTNERS
    assert [(n["step"], n["reason"]) for n in notes(decision, "step_skipped")] == [("local", "nobody")]


def test_escalation_skips_a_later_step_that_cannot_answer():
    decision = decide(chat(step=LOCAL), situation(lib(1, HOME, active=3), lib(3, STATE), now=at(45)))
    assert decision.step_index == CONSORTIUM
    assert notes(decision, "escalated") == [{"from": "local", "reason": "timeout"}]
    assert [(n["step"], n["reason"]) for n in notes(decision, "step_skipped")] == [("partners", "nobody")]


def test_busy_step_is_not_skipped():
    decision = decide(chat(), situation(lib(1, HOME, capacity=2, active=2), lib(2, P1)))
    assert decision.step_index == LOCAL
    assert notes(decision, "step_skipped") == []
    assert decision.offers == []
    assert decision.deadline == at(45)


def test_busy_step_is_waited_on_for_its_full_wait():
    busy = situation(lib(1, HOME, active=3), lib(2, P1), now=at(44))
    assert not decide(chat(step=LOCAL), busy).step_changed
    decision = decide(chat(step=LOCAL), situation(lib(1, HOME, active=3), lib(2, P1), now=at(45)))
    assert decision.step_index == PARTNERS
    assert 1 not in offered_to(decision)


# --- unstaffed and the last step ------------------------------------------------------------------


def test_new_chat_is_unstaffed_when_nobody_is_present_anywhere():
    decision = decide(chat(), situation())
    assert decision.state == "unstaffed"
    assert decision.step_index == -1
    assert [n["reason"] for n in notes(decision, "step_skipped")] == ["nobody", "nobody", "nobody"]
    assert len(notes(decision, "unstaffed")) == 1
    assert decision.offers == []


def test_new_chat_is_unstaffed_when_every_queue_is_closed():
    decision = decide(chat(), situation(lib(1, HOME), lib(2, P1), lib(3, STATE), open_queues=()))
    assert decision.state == "unstaffed"
    assert [n["reason"] for n in notes(decision, "step_skipped")] == ["closed", "closed", "closed"]


def test_chat_escalating_into_an_unstaffed_last_step_waits_there():
    decision = decide(chat(step=PARTNERS), situation(lib(2, P1, active=3), now=at(60)))
    assert decision.state == "queued"
    assert decision.step_index == CONSORTIUM
    assert notes(decision, "unstaffed") == []
    assert [n["step"] for n in notes(decision, "step_entered")] == ["consortium"]


def test_chat_in_the_last_step_stays_there_whatever_happens():
    decision = decide(chat(step=CONSORTIUM), situation(now=at(5000), open_queues=()))
    assert decision.state == "queued"
    assert decision.step_index == CONSORTIUM
    assert not decision.step_changed


# --- timing ---------------------------------------------------------------------------------------


def test_escalates_exactly_at_the_step_deadline():
    decision = decide(chat(step=LOCAL), situation(lib(1, HOME, active=3), lib(2, P1), now=at(45)))
    assert decision.step_changed
    assert decision.step_index == PARTNERS
    assert decision.step_entered_at == at(45)
    assert notes(decision, "escalated") == [{"from": "local", "reason": "timeout"}]


def test_does_not_escalate_a_microsecond_before_the_step_deadline():
    now = at(45) - timedelta(microseconds=1)
    decision = decide(chat(step=LOCAL), situation(lib(1, HOME, active=3), lib(2, P1), now=now))
    assert not decision.step_changed
    assert decision.step_index == LOCAL
    assert notes(decision, "escalated") == []


def test_decision_deadline_is_the_step_deadline():
    sit = situation(lib(1, HOME, active=3), lib(2, P1, active=3))
    assert decide(chat(), sit).deadline == at(45)
    assert decide(chat(step=LOCAL, entered=at(-40)), situation(lib(1, HOME), now=at(1))).deadline == at(5)


def test_deadline_after_escalation_counts_from_the_new_step():
    decision = decide(chat(step=LOCAL), situation(lib(1, HOME, active=3), lib(2, P1, active=3), now=at(45)))
    assert decision.deadline == at(45 + 60)


def test_max_wait_sets_the_flag_and_notes_it():
    decision = decide(chat(step=CONSORTIUM), situation(now=at(600)))
    assert decision.max_wait_passed
    assert len(notes(decision, "max_wait")) == 1


def test_max_wait_not_flagged_before_max_wait():
    decision = decide(chat(step=CONSORTIUM), situation(now=at(600) - timedelta(microseconds=1)))
    assert not decision.max_wait_passed
    assert notes(decision, "max_wait") == []
    assert decision.deadline == at(600)


def test_max_wait_counts_from_arrival_not_step_entry():
    decision = decide(chat(step=CONSORTIUM, arrived=at(-500), entered=at(0)), situation(now=at(100)))
    assert decision.max_wait_passed


def test_max_wait_is_noted_once():
    decision = decide(chat(step=CONSORTIUM, max_wait_passed=True), situation(now=at(900)))
    assert decision.max_wait_passed
    assert notes(decision, "max_wait") == []


# --- broadcast and declines -----------------------------------------------------------------------


def test_broadcast_offers_every_eligible_librarian():
    decision = decide(chat(), situation(lib(1, HOME), lib(2, HOME), lib(3, HOME)))
    assert sorted(offered_to(decision)) == [1, 2, 3]
    assert {(o.queue, o.mode, o.expires_at) for o in decision.offers} == {(HOME, BROADCAST, None)}


def test_broadcast_does_not_offer_again_to_librarians_with_an_open_offer():
    decision = decide(chat(step=LOCAL, offers=[broadcast(1)]), situation(lib(1, HOME), lib(2, HOME), now=at(1)))
    assert offered_to(decision) == [2]
    assert decision.withdraw == {}


def test_declined_librarian_is_not_offered_again_in_the_same_step():
    decision = decide(chat(step=LOCAL, declined=[1]), situation(lib(1, HOME), lib(2, HOME), now=at(1)))
    assert offered_to(decision) == [2]


def test_declined_librarian_is_offered_again_after_a_step_change():
    decision = decide(chat(step=LOCAL, declined=[1]), situation(lib(1, HOME), lib(2, P1), now=at(45)))
    assert decision.step_index == PARTNERS
    assert sorted(offered_to(decision)) == [1, 2]


# --- direct offers --------------------------------------------------------------------------------

DIRECT_HOME = {HOME: DIRECT}


def test_direct_offers_one_librarian_at_a_time():
    decision = decide(chat(), situation(lib(1, HOME), lib(2, HOME), lib(3, HOME), modes=DIRECT_HOME))
    assert len(decision.offers) == 1
    assert decision.offers[0].mode == DIRECT


def test_direct_offers_the_librarian_with_fewest_active_chats_first():
    sit = situation(lib(1, HOME, active=2, idle=-900), lib(2, HOME, active=0, idle=-1), lib(3, HOME, active=1),
                    modes=DIRECT_HOME)
    assert offered_to(decide(chat(), sit)) == [2]


def test_direct_breaks_ties_by_longest_idle():
    sit = situation(lib(1, HOME, idle=-60), lib(2, HOME, idle=-600), lib(3, HOME, idle=-30), modes=DIRECT_HOME)
    assert offered_to(decide(chat(), sit)) == [2]


def test_direct_offer_expires_offer_timeout_after_now():
    sit = situation(lib(1, HOME), modes=DIRECT_HOME, now=at(7), offer_timeout=35)
    decision = decide(chat(step=LOCAL), sit)
    assert [o.expires_at for o in decision.offers] == [at(7 + 35)]


def test_expired_direct_offer_moves_to_the_next_librarian():
    sit = situation(lib(1, HOME, idle=-900), lib(2, HOME, idle=-10), modes=DIRECT_HOME, now=at(20))
    decision = decide(chat(step=LOCAL, offers=[direct(1, at(20))]), sit)
    assert decision.expired == [1]
    assert notes(decision, "offer_expired") == [{"librarian": 1}]
    assert [(o.librarian, o.expires_at) for o in decision.offers] == [(2, at(40))]
    assert 1 not in decision.withdraw


def test_direct_offer_is_kept_until_it_expires():
    sit = situation(lib(1, HOME), lib(2, HOME), modes=DIRECT_HOME, now=at(19))
    decision = decide(chat(step=LOCAL, offers=[direct(1, at(20))]), sit)
    assert decision.expired == []
    assert decision.offers == []
    assert decision.deadline == at(20)


def test_direct_never_offers_the_same_librarian_twice_in_a_step():
    sit = situation(lib(1, HOME), lib(2, HOME), lib(3, HOME, active=2), modes=DIRECT_HOME, now=at(30))
    decision = decide(chat(step=LOCAL, offered=[1, 2], declined=[2]), sit)
    assert offered_to(decision) == [3]
    assert decide(chat(step=LOCAL, offered=[1, 2, 3], declined=[2]), sit).offers == []


def test_direct_step_deadline_counts_from_step_entry_not_the_last_offer():
    sit = situation(lib(1, HOME), lib(2, HOME), lib(3, P1), modes=DIRECT_HOME, now=at(40))
    decision = decide(chat(step=LOCAL, offers=[direct(1, at(40))]), sit)
    assert offered_to(decision) == [2]
    assert decision.deadline == at(45)

    later = situation(lib(1, HOME), lib(2, HOME), lib(3, P1), modes=DIRECT_HOME, now=at(45))
    decision = decide(chat(step=LOCAL, offers=[direct(2, at(60))], declined=[1]), later)
    assert decision.step_index == PARTNERS
    assert notes(decision, "escalated") == [{"from": "local", "reason": "timeout"}]


# --- eligibility ----------------------------------------------------------------------------------


def test_librarian_at_capacity_is_not_offered():
    decision = decide(chat(), situation(lib(1, HOME, capacity=2, active=2), lib(2, HOME, capacity=3, active=2)))
    assert offered_to(decision) == [2]


def test_non_last_step_offers_only_librarians_who_speak_the_language():
    decision = decide(chat(language="es"), situation(lib(1, HOME), lib(2, HOME, languages=("en", "es"))))
    assert offered_to(decision) == [2]


def test_earlier_steps_non_speakers_are_not_offered_in_a_later_non_last_step():
    decision = decide(chat(step=PARTNERS, language="es"), situation(lib(1, HOME), lib(2, P1, languages=["es"])))
    assert offered_to(decision) == [2]


def test_last_step_offers_everyone_whatever_the_language():
    sit = situation(lib(1, HOME), lib(2, STATE), lib(3, STATE, languages=["es"]), now=at(1))
    assert sorted(offered_to(decide(chat(step=CONSORTIUM, language="es"), sit))) == [1, 2, 3]


def test_step_whose_present_librarians_do_not_speak_the_language_is_skipped_as_nobody():
    decision = decide(chat(language="es"), situation(lib(1, HOME), lib(2, P1, languages=["es"])))
    assert [(n["step"], n["reason"]) for n in notes(decision, "step_skipped")] == [("local", "nobody")]
    assert decision.step_index == PARTNERS
    assert offered_to(decision) == [2]


def test_rota_driven_queue_offers_only_librarians_on_shift():
    sit = situation(lib(1, STATE, on_shift=[STATE]), lib(2, STATE), rota=[STATE], now=at(1))
    assert offered_to(decide(chat(step=CONSORTIUM), sit)) == [1]


def test_rota_driven_step_with_nobody_on_shift_is_skipped_as_nobody():
    plan = (Step("after-hours", ("after",), 30), Step("consortium", (STATE,), None))
    sit = situation(lib(1, "after"), lib(2, STATE), rota=["after"], open_queues=["after", STATE])
    decision = decide(chat(plan=plan), sit)
    assert [(n["step"], n["reason"]) for n in notes(decision, "step_skipped")] == [("after-hours", "nobody")]
    assert offered_to(decision) == [2]


# --- queues closing -------------------------------------------------------------------------------


def test_queue_closing_while_the_chat_waits_moves_it_on():
    sit = situation(lib(1, HOME), lib(2, P1), open_queues=(P1, P2, STATE), now=at(10))
    decision = decide(chat(step=LOCAL, offers=[broadcast(1)]), sit)
    assert decision.step_index == PARTNERS
    assert decision.step_entered_at == at(10)
    assert notes(decision, "escalated") == [{"from": "local", "reason": "closed"}]
    assert decision.withdraw == {1: "closed"}, "the protocol's reason when the offer's queue closed"
    assert offered_to(decision) == [2]


def test_deadline_includes_the_next_change_of_an_audience_queue():
    sit = situation(lib(1, HOME), next_change={HOME: at(30), STATE: at(5)})
    assert decide(chat(), sit).deadline == at(30)


# --- the patron leaving ---------------------------------------------------------------------------


def test_patron_gone_longer_than_grace_abandons_and_withdraws_every_offer():
    sit = situation(lib(1, HOME), lib(2, HOME), now=at(61))
    decision = decide(chat(step=LOCAL, offers=[broadcast(1), broadcast(2)], gone=at(0)), sit)
    assert decision.state == "abandoned"
    assert decision.withdraw == {1: "abandoned", 2: "abandoned"}
    assert decision.offers == []
    assert len(notes(decision, "abandoned")) == 1


def test_patron_gone_within_grace_keeps_waiting_until_the_grace_ends():
    sit = situation(lib(1, HOME), lib(2, HOME), now=at(20))
    decision = decide(chat(step=LOCAL, offers=[broadcast(1), broadcast(2)], gone=at(-30)), sit)
    assert decision.state == "queued"
    assert decision.withdraw == {}
    assert decision.deadline == at(30)


# --- transfers and withdrawals --------------------------------------------------------------------


def test_transfer_to_a_librarian_offers_only_that_librarian():
    plan = (Step("transfer", (HOME,), None, librarian=2),)
    decision = decide(chat(plan=plan), situation(lib(1, HOME), lib(2, HOME), lib(3, HOME)))
    assert offered_to(decision) == [2]


def test_open_offer_of_a_librarian_no_longer_eligible_is_withdrawn_as_unavailable():
    sit = situation(lib(1, HOME, active=3), lib(2, HOME), now=at(5))
    decision = decide(chat(step=LOCAL, offers=[broadcast(1), broadcast(2), broadcast(3)]), sit)
    assert decision.withdraw == {1: "unavailable", 3: "unavailable"}
    assert decision.offers == []


# --- a librarian who lets a direct offer expire is set away -----------------------------------------


def test_librarian_whose_direct_offer_expires_as_the_step_changes_is_not_offered_again():
    # The offer expires at the step deadline; the librarian is being set away, so is not present.
    sit = situation(lib(1, HOME), lib(2, P1), modes=DIRECT_HOME, now=at(45))
    decision = decide(chat(step=LOCAL, offers=[direct(1, at(45))]), sit)
    assert decision.step_index == PARTNERS
    assert decision.expired == [1]
    assert offered_to(decision) == [2]


def test_step_only_staffed_by_a_librarian_whose_offer_just_expired_moves_on():
    sit = situation(lib(1, HOME), lib(2, P1), modes=DIRECT_HOME, now=at(20))
    decision = decide(chat(step=LOCAL, offers=[direct(1, at(20))]), sit)
    assert decision.expired == [1]
    assert notes(decision, "escalated") == [{"from": "local", "reason": "nobody"}]
    assert decision.step_index == PARTNERS
    assert offered_to(decision) == [2]


# --- the rota (libraries/rota.py fills Librarian.on_shift and the shift changes in next_change) -----


def test_a_chat_waiting_on_a_rota_driven_queue_is_decided_again_at_the_next_shift_change():
    sit = situation(lib(1, STATE, on_shift=[STATE]), rota=[STATE], now=at(100),
                    next_change={STATE: at(1800), HOME: at(7200)})
    decision = decide(chat(step=CONSORTIUM), sit)
    assert offered_to(decision) == [1]
    assert decision.deadline == at(600), "max_wait comes first here"
    later = decide(chat(step=CONSORTIUM, max_wait_passed=True), situation(
        lib(1, STATE, on_shift=[STATE]), rota=[STATE], now=at(700), next_change={STATE: at(1800)}))
    assert later.deadline == at(1800)


def test_an_offer_is_withdrawn_when_its_librarian_goes_off_shift_and_the_next_shift_is_offered():
    sit = situation(lib(1, STATE), lib(2, STATE, on_shift=[STATE]), rota=[STATE], now=at(1800))
    decision = decide(chat(step=CONSORTIUM, offers=[broadcast(1)]), sit)
    assert decision.withdraw == {1: "unavailable"}
    assert offered_to(decision) == [2]


def test_being_on_shift_on_one_rota_driven_queue_does_not_serve_another():
    sit = situation(lib(1, "after", STATE, on_shift=["after"]), rota=["after", STATE],
                    open_queues=[*ALL_QUEUES, "after"])
    decision = decide(chat(step=CONSORTIUM), sit)
    assert offered_to(decision) == []


def test_a_rota_driven_last_step_keeps_the_home_librarians_of_the_cumulative_audience():
    sit = situation(lib(1, HOME), lib(2, STATE, on_shift=[STATE]), lib(3, STATE), rota=[STATE])
    decision = decide(chat(step=CONSORTIUM), sit)
    assert sorted(offered_to(decision)) == [1, 2], "the home librarian stays, only the rota queue needs a shift"
