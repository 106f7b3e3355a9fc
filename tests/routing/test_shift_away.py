"""The automatic away at the end of a librarian's shift (libraries/duty.py, routing.services), through
the timer's sweep (sweeps.due_sweep) with an injected clock: the warning, the end, back-to-back
shifts, swaps, staying on, library hours, a clock change, and what a reconnecting console is told."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from libraries import rota
from libraries.models import Queue, Shift, StaffProfile
from routing.models import ChatState, LibrarianPresence, Offer
from routing.services import common, offers, shifts, sweeps
from routing.services.presence import presence_set, staff_connected, staff_disconnected
from tests.factories import make_shared_queue, set_weekly_hours
from tests.routing.routing_helpers import (
    T0,
    Sent,
    World,
    at,
    fresh,
    go_online,
    open_offers,
    patron_joins,
    staff,
    start,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)

NY = ZoneInfo("America/New_York")
# T0 is Monday 2 March 2026, 10:00 in New York (EST).
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 12:00 EST
WARNING = NOON - timedelta(minutes=5)  # the consortium's default shift_warning is 300 s


def monday_shift(queue: Queue, start_hour: int, end_hour: int, *people: StaffProfile) -> Shift:
    shift = rota.shift_create(queue, T0 - timedelta(days=7), weekday=0, start_minute=start_hour * 60,
                              end_minute=end_hour * 60)
    for person in people:
        rota.shift_assign(shift, person, T0 - timedelta(days=7))
    return shift


def presence(librarian: StaffProfile) -> LibrarianPresence:
    return LibrarianPresence.objects.get(pk=librarian.pk)


def shift_frames(sent: Sent, librarian: StaffProfile) -> list[dict[str, object]]:
    return [f for f in sent.to_librarian(librarian) if f["type"] in {"shift", "shift_ending", "presence"}]


def on_rota(w: World) -> StaffProfile:
    """sam, of an always-open library (its hours say nothing of him), on the 09:00-12:00 Monday shift."""
    sam = staff(w.hub, "sam", queues=[w.statewide])
    monday_shift(w.statewide, 9, 12, sam)
    return sam


def test_on_shift_the_console_is_warned_then_set_away_at_the_end_keeping_its_chat(sent: Sent) -> None:
    w = world(idle_timeout=3 * 3600)  # the chat he holds is not ended by its own silence meanwhile
    sam = on_rota(w)
    go_online(sam, T0)
    assert shifts.shift_state(sam) == {"type": "shift", "ends_at": NOON.isoformat()}
    held = start(w.consortium, at(10))
    patron_joins(held, at(11))
    offers.chat_accept(sam, held.pk, at(12))
    waiting = start(w.consortium, WARNING - timedelta(seconds=30))
    patron_joins(waiting, WARNING - timedelta(seconds=29))
    assert open_offers(waiting) == {sam.pk}
    sent.clear()

    sweeps.due_sweep(WARNING - timedelta(seconds=1))
    assert shift_frames(sent, sam) == []
    sweeps.due_sweep(WARNING)
    assert shift_frames(sent, sam) == [{"type": "shift_ending", "ends_at": NOON.isoformat(), "extend_by": 1800}]
    assert shifts.shift_state(sam)["type"] == "shift_ending", "a console connecting now gets the warning"
    sweeps.due_sweep(NOON - timedelta(seconds=1))
    assert presence(sam).status == "available" and len(shift_frames(sent, sam)) == 1

    sweeps.due_sweep(NOON)
    p = presence(sam)
    assert p.status == "away" and p.away_reason == "shift_end" and p.shift_due is None
    assert shift_frames(sent, sam)[-1] == {"type": "presence", "status": "away", "reason": "shift_end",
                                           "ends_at": NOON.isoformat()}
    # Away as the toggle does it: the open offer is withdrawn; the chat he holds stays his.
    assert open_offers(fresh(waiting)) == set()
    assert Offer.objects.get(chat=waiting, librarian=sam).reason == "unavailable"
    assert fresh(held).state == ChatState.ACTIVE and fresh(held).librarian == sam
    # Fired once: another sweep, or a second timer, has nothing left to do.
    before = len(sent.events)
    assert sweeps.due_sweep(NOON + timedelta(seconds=1)) == 0
    assert len(sent.events) == before


def test_back_to_back_shifts_are_one_stretch(sent: Sent) -> None:
    w = world()
    sam = on_rota(w)
    evening = make_shared_queue(w.consortium, "spanish")
    monday_shift(evening, 12, 14, sam)  # another queue, starting as the first ends
    go_online(sam, T0)
    two = NOON + timedelta(hours=2)
    assert presence(sam).shift_end == two
    sweeps.due_sweep(WARNING)
    sweeps.due_sweep(NOON)
    assert presence(sam).status == "available" and shift_frames(sent, sam) == []
    sweeps.due_sweep(two)
    assert presence(sam).status == "away"


def test_a_stretch_the_rota_lengthens_after_the_warning_moves_the_end_later(sent: Sent) -> None:
    w = world()
    sam = on_rota(w)
    go_online(sam, T0)
    sweeps.due_sweep(WARNING)
    assert shift_frames(sent, sam)[-1]["type"] == "shift_ending"
    monday_shift(w.statewide, 12, 13, sam)  # a coordinator adds him to the next hour
    sweeps.due_sweep(NOON)
    one = NOON + timedelta(hours=1)
    assert presence(sam).status == "available"
    assert shift_frames(sent, sam)[-1] == {"type": "shift", "ends_at": one.isoformat()}, "warning withdrawn"
    sweeps.due_sweep(one)
    assert presence(sam).status == "away"


def test_a_shift_handed_over_by_a_swap_is_the_colleagues(sent: Sent) -> None:
    w = world()
    ana = staff(w.hub, "ana", queues=[w.statewide])
    cy = staff(w.hub, "cy", queues=[w.statewide])
    shift = monday_shift(w.statewide, 9, 12, ana)
    swap = rota.swap_offer(shift, date(2026, 3, 2), ana, T0 - timedelta(days=1))
    rota.swap_take(swap.pk, cy, T0 - timedelta(days=1))
    go_online(cy, T0)
    assert presence(cy).shift_end == NOON, "cy works the date she took"
    go_online(ana, T0)
    # Ana handed it over: off duty, so her being available is overtime, for shift_extension (30 min).
    assert presence(ana).shift_end == T0 + timedelta(minutes=30)
    sweeps.due_sweep(T0 + timedelta(minutes=25))
    assert shift_frames(sent, ana)[-1]["type"] == "shift_ending"
    sweeps.due_sweep(T0 + timedelta(minutes=30))
    assert presence(ana).status == "away" and presence(cy).status == "available"
    sweeps.due_sweep(NOON)
    assert presence(cy).status == "away"


def test_staying_on_extends_the_end_and_warns_again_before_the_new_one(sent: Sent) -> None:
    w = world()
    sam = on_rota(w)
    go_online(sam, T0)
    sweeps.due_sweep(WARNING)
    sent.clear()
    said = NOON - timedelta(minutes=2)
    frame = shifts.shift_stay_on(sam, said)
    later = said + timedelta(minutes=30)
    assert frame == {"type": "shift", "ends_at": later.isoformat()}
    assert sent.to_librarian(sam) == [frame], "every console of his is told"
    sweeps.due_sweep(NOON)
    assert presence(sam).status == "available"
    sweeps.due_sweep(later - timedelta(minutes=5))
    assert shift_frames(sent, sam)[-1] == {"type": "shift_ending", "ends_at": later.isoformat(), "extend_by": 1800}
    # Minutes of his own choosing; a second "stay on" never shortens what the first gave.
    assert shifts.shift_stay_on(sam, later - timedelta(minutes=4), seconds=600)["ends_at"] == (
        later + timedelta(minutes=6)).isoformat()
    assert shifts.shift_stay_on(sam, later - timedelta(minutes=3), seconds=60)["ends_at"] == (
        later + timedelta(minutes=6)).isoformat()
    sweeps.due_sweep(later + timedelta(minutes=6))
    assert presence(sam).status == "away"


def test_a_librarian_already_away_is_left_alone_and_cannot_stay_on(sent: Sent) -> None:
    w = world()
    sam = on_rota(w)
    go_online(sam, T0)
    presence_set(sam, "away", at(60))
    assert presence(sam).shift_due is None and shifts.shift_state(sam) == {"type": "shift", "ends_at": None}
    sent.clear()
    sweeps.due_sweep(WARNING)
    sweeps.due_sweep(NOON)
    assert sent.events == []
    with pytest.raises(common.ServiceError) as refused:
        shifts.shift_stay_on(sam, NOON)
    assert refused.value.reason == "invalid" and "away" in refused.value.detail


def test_without_a_rota_shift_the_home_librarys_hours_end_the_stretch(sent: Sent) -> None:
    w = world()
    set_weekly_hours(w.home.local_queue, {0: [(9 * 60, 17 * 60)]})
    lena = staff(w.home, "lena")
    five = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 17:00 EST
    go_online(lena, T0)
    assert presence(lena).shift_end == five
    # An evening rota shift starting as the library closes: one stretch to its end.
    monday_shift(w.statewide, 17, 19, lena)
    sweeps.due_sweep(five)
    assert presence(lena).status == "available"
    assert shift_frames(sent, lena)[-1] == {"type": "shift", "ends_at": (five + timedelta(hours=2)).isoformat()}
    sweeps.due_sweep(five + timedelta(hours=2))
    assert presence(lena).status == "away"


def test_nothing_known_of_when_a_librarian_works_means_no_automatic_away(sent: Sent) -> None:
    w = world()  # every library open around the clock, no rota
    lena = staff(w.home, "lena")
    go_online(lena, T0)
    assert shifts.shift_state(lena) == {"type": "shift", "ends_at": None}
    sweeps.due_sweep(T0 + timedelta(days=2))
    assert presence(lena).status == "available" and shift_frames(sent, lena) == []


def test_the_repeated_hour_of_a_fall_back_night_is_worked_in_full(sent: Sent) -> None:
    w = world()
    sam = staff(w.hub, "sam", queues=[w.statewide])
    # Sunday 1 November 2026, 00:00-03:00 on the clock in New York: four real hours (EDT then EST).
    night = rota.shift_create(w.statewide, T0, weekday=6, start_minute=0, end_minute=3 * 60)
    rota.shift_assign(night, sam, T0)
    start_at = datetime(2026, 11, 1, 0, 30, tzinfo=NY).astimezone(UTC)
    end = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # 03:00 EST
    assert end - start_at == timedelta(hours=3, minutes=30)
    go_online(sam, start_at)
    assert presence(sam).shift_end == end
    sweeps.due_sweep(end - timedelta(hours=1))  # 03:00 as the clock first read it (EDT): not the end
    assert presence(sam).status == "available"
    sweeps.due_sweep(end)
    assert presence(sam).status == "away"


def test_a_reconnecting_console_gets_the_warning_back_and_a_lost_one_nothing(sent: Sent) -> None:
    w = world(reconnect_grace=30)
    sam = on_rota(w)
    channel = go_online(sam, T0)
    sweeps.due_sweep(WARNING)
    staff_disconnected(channel, WARNING + timedelta(seconds=10))
    state = staff_connected(sam, "staff-sam-2", "p1", WARNING + timedelta(seconds=20))
    assert state.presence == "available"
    assert state.shift == {"type": "shift_ending", "ends_at": NOON.isoformat(), "extend_by": 1800}
    # Closed without signing out: the grace runs out, he is offline and nothing is left scheduled.
    staff_disconnected("staff-sam-2", WARNING + timedelta(seconds=30))
    sweeps.due_sweep(WARNING + timedelta(seconds=60))
    p = presence(sam)
    assert not p.online and p.shift_due is None and p.shift_end is None
    state = staff_connected(sam, "staff-sam-3", "p1", NOON + timedelta(minutes=1))
    assert state.presence == "away" and state.shift == {"type": "shift", "ends_at": None}
