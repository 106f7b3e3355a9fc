"""The rota against the database: occurrences across clock changes, crews with swaps, who is on shift,
what routing sees of it, commitments, and the private calendar feed (checked by reading it back)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from libraries import ical, rota
from libraries.models import Queue, Shift, ShiftSwap, StaffProfile
from routing import events
from routing.models import Chat
from routing.selectors import situation_for
from routing.services import presence, sweeps
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import fresh, go_online, open_offers, patron_joins, start

pytestmark = pytest.mark.django_db(transaction=True)

NY = ZoneInfo("America/New_York")
# Monday 9 March 2026, 19:00 in New York (EDT since Sunday the 8th).
MON_19 = datetime(2026, 3, 9, 19, 0, tzinfo=NY)
EVENING = (18 * 60, 22 * 60)


def local(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=NY)


@pytest.fixture(autouse=True)
def _quiet_channel_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)


@pytest.fixture
def w() -> dict[str, object]:
    consortium = make_consortium("rota")
    evening = make_shared_queue(consortium, "evening", rota_driven=True)
    statewide = make_shared_queue(consortium, "statewide")
    tampa = make_library(consortium, "tampa", always_open=False)
    orlando = make_library(consortium, "orlando", always_open=False)
    return {
        "consortium": consortium, "evening": evening, "statewide": statewide, "tampa": tampa, "orlando": orlando,
        "ana": make_staff(tampa, "ana"), "ben": make_staff(orlando, "ben"), "cy": make_staff(tampa, "cy"),
        "dan": make_staff(orlando, "dan", queues=[evening]),
    }


def monday_evening(queue: Queue, *people: StaffProfile, minimum: int = 1) -> Shift:
    shift = rota.shift_create(queue, MON_19 - timedelta(days=7), weekday=0, start_minute=EVENING[0],
                              end_minute=EVENING[1], min_librarians=minimum)
    for person in people:
        rota.shift_assign(shift, person, MON_19 - timedelta(days=7))
    return shift


# --- occurrences in time ----------------------------------------------------------------------------


def test_a_shift_keeps_its_wall_clock_hours_across_both_clock_changes() -> None:
    sunday_early = rota.ShiftTime(1, "q", NY, weekday=6, start_minute=60, end_minute=240)
    spring = rota.occurrence_on(sunday_early, date(2026, 3, 8))
    assert spring is not None
    assert (spring.start, spring.end) == (local(2026, 3, 8, 1), local(2026, 3, 8, 4))
    assert spring.end - spring.start == timedelta(hours=2), "01:00-04:00 loses the skipped hour"
    autumn = rota.occurrence_on(sunday_early, date(2026, 11, 1))
    assert autumn is not None and autumn.end - autumn.start == timedelta(hours=4), "and gains the repeated one"
    assert rota.occurrence_on(sunday_early, date(2026, 3, 9)) is None, "a Monday"


def test_next_shift_change_counts_every_boundary_even_between_back_to_back_shifts() -> None:
    shifts = [rota.ShiftTime(1, "q", NY, 0, 18 * 60, 22 * 60), rota.ShiftTime(2, "q", NY, 0, 22 * 60, 24 * 60)]
    assert rota.next_shift_change(shifts, local(2026, 3, 9, 21)) == {"q": local(2026, 3, 9, 22)}
    assert rota.next_shift_change(shifts, local(2026, 3, 9, 23)) == {"q": local(2026, 3, 10, 0)}
    assert rota.next_shift_change(shifts, local(2026, 3, 10, 1)) == {"q": local(2026, 3, 16, 18)}, "next week"


# --- who is on shift --------------------------------------------------------------------------------


def test_on_shift_follows_assignments_and_taken_swaps_only(w: dict) -> None:
    shift = monday_evening(w["evening"], w["ana"], w["ben"])
    swap = rota.swap_offer(shift, date(2026, 3, 9), w["ben"], MON_19 - timedelta(days=2))
    everyone = [w["ana"].pk, w["ben"].pk, w["cy"].pk, w["dan"].pk]
    assert rota.on_shift(everyone, [w["evening"]], MON_19) == {
        w["ana"].pk: frozenset({"evening"}), w["ben"].pk: frozenset({"evening"})}, "an open offer changes nothing"

    rota.swap_take(swap.pk, w["cy"], MON_19 - timedelta(days=1))
    with CaptureQueriesContext(connection) as queries:
        now_on = rota.on_shift(everyone, [w["evening"]], MON_19)
    assert set(now_on) == {w["ana"].pk, w["cy"].pk}
    assert len(queries) == 2, "the shifts, then the crews of those going on (one UNION)"
    assert set(rota.on_shift(everyone, [w["evening"]], MON_19 + timedelta(days=7))) == {w["ana"].pk, w["ben"].pk}
    assert rota.on_shift(everyone, [w["evening"]], MON_19 + timedelta(hours=4)) == {}, "22:00: the shift is over"


def test_swap_rules(w: dict) -> None:
    shift = monday_evening(w["evening"], w["ana"], w["ben"])
    before = MON_19 - timedelta(days=1)
    with pytest.raises(rota.RotaError, match="only a shift you are assigned to"):
        rota.swap_offer(shift, date(2026, 3, 9), w["cy"], before)
    with pytest.raises(rota.RotaError, match="does not happen"):
        rota.swap_offer(shift, date(2026, 3, 10), w["ana"], before)
    with pytest.raises(rota.RotaError, match="over"):
        rota.swap_offer(shift, date(2026, 3, 2), w["ana"], before)
    swap = rota.swap_offer(shift, date(2026, 3, 9), w["ana"], before)
    with pytest.raises(rota.RotaError, match="already"):
        rota.swap_offer(shift, date(2026, 3, 9), w["ana"], before)
    with pytest.raises(rota.RotaError, match="withdraw"):
        rota.swap_take(swap.pk, w["ana"], before)
    with pytest.raises(rota.RotaError, match="on that shift already"):
        rota.swap_take(swap.pk, w["ben"], before)
    rota.swap_take(swap.pk, w["cy"], before)
    with pytest.raises(rota.RotaError, match="took that shift already"):
        rota.swap_take(swap.pk, w["dan"], before)
    with pytest.raises(rota.RotaError, match="before someone takes it"):
        rota.swap_withdraw(swap.pk, w["ana"])
    assert ShiftSwap.objects.get(pk=swap.pk).taken_by == w["cy"]

    other = make_consortium("other")
    stranger = make_staff(make_library(other, "far"), "stranger")
    with pytest.raises(rota.RotaError, match="not staff of this consortium"):
        rota.shift_assign(shift, stranger, before)
    with pytest.raises(rota.RotaError, match="shared queues"):
        rota.shift_create(Queue.objects.get(slug="tampa"), before, weekday=0, start_minute=0, end_minute=60)


def test_commitments_count_assigned_weekly_hours_against_each_target(w: dict) -> None:
    monday_evening(w["evening"], w["ana"], w["cy"], w["ben"])  # 4 h each
    morning = rota.shift_create(w["statewide"], MON_19, weekday=2, start_minute=9 * 60, end_minute=10 * 60 + 30)
    rota.shift_assign(morning, w["ben"], MON_19)
    rota.library_target_set(w["tampa"], 10)
    rota.library_target_set(w["orlando"], 5)
    found = {c.library.slug: c for c in rota.commitments(w["consortium"])}
    assert found["tampa"].committed_hours == 8 and found["tampa"].short_by == 2
    assert found["orlando"].committed_hours == 5.5 and found["orlando"].short_by == 0


# --- what routing sees ---------------------------------------------------------------------------------


def test_a_rota_driven_queue_is_offered_only_to_librarians_on_shift(w: dict) -> None:
    now = local(2026, 3, 9, 21, 55).astimezone(UTC)  # five minutes before the shift ends
    monday_evening(w["evening"], w["ana"], w["cy"])
    go_online(w["ana"], now)  # on shift; the queue is not on her profile: the shift is enough
    go_online(w["dan"], now)  # serves the queue by profile, but is not on shift
    go_online(w["ben"], now)  # neither
    chat = start(w["consortium"], now)  # no home library: the consortium step, the first shared queue
    patron_joins(chat, now)
    assert [s["queues"] for s in chat.plan] == [["evening"]]
    assert open_offers(chat) == {w["ana"].pk}
    assert fresh(chat).deadline == local(2026, 3, 9, 22).astimezone(UTC), "looked at again when the shift ends"

    situation = situation_for(w["consortium"], now)
    assert situation.next_change["evening"] == local(2026, 3, 9, 22)
    assert {lib.id for lib in situation.present["evening"]} == {w["ana"].pk, w["dan"].pk}


def test_the_next_shift_is_offered_the_waiting_chat_the_moment_it_starts(w: dict) -> None:
    early = rota.shift_create(w["evening"], MON_19, weekday=0, start_minute=18 * 60, end_minute=20 * 60)
    late = rota.shift_create(w["evening"], MON_19, weekday=0, start_minute=20 * 60, end_minute=22 * 60)
    rota.shift_assign(early, w["ana"], MON_19)
    rota.shift_assign(late, w["ben"], MON_19)
    now = local(2026, 3, 9, 19, 58).astimezone(UTC)
    go_online(w["ana"], now)
    go_online(w["ben"], now)
    chat = start(w["consortium"], now)
    patron_joins(chat, now)
    assert open_offers(chat) == {w["ana"].pk}
    eight = local(2026, 3, 9, 20).astimezone(UTC)
    assert fresh(chat).deadline == eight
    sweeps.due_sweep(eight)
    assert open_offers(chat) == {w["ben"].pk}, "ana's offer withdrawn as her shift ends, ben's made"


def test_a_librarian_put_on_the_current_shift_is_offered_waiting_chats_at_once(w: dict) -> None:
    shift = monday_evening(w["evening"], w["ana"])
    now = MON_19.astimezone(UTC)
    go_online(w["ana"], now)
    go_online(w["cy"], now)
    chat = start(w["consortium"], now)
    assert open_offers(chat) == {w["ana"].pk}
    rota.shift_assign(shift, w["cy"], now)
    assert open_offers(Chat.objects.get(pk=chat.pk)) == {w["ana"].pk, w["cy"].pk}


def test_an_on_shift_librarian_becoming_available_is_offered_at_once(w: dict) -> None:
    # cy's profile does not list the queue: being on its shift is what makes the change matter.
    monday_evening(w["evening"], w["ana"], w["cy"])
    now = MON_19.astimezone(UTC)
    go_online(w["ana"], now)
    presence.staff_connected(w["cy"], "staff-cy", "p1", now)  # connected, still away
    chat = start(w["consortium"], now)
    patron_joins(chat, now)
    assert open_offers(chat) == {w["ana"].pk}
    presence.presence_set(w["cy"], "available", now + timedelta(seconds=5))
    assert open_offers(chat) == {w["ana"].pk, w["cy"].pk}


# --- the calendar feed, read back -------------------------------------------------------------------------


def _expand(feed: str, start: datetime, end: datetime) -> set[tuple[datetime, datetime]]:
    """What a calendar client shows: weekly series minus EXDATEs, plus single events."""
    shown = set()
    for event in ical.parse(feed).walk("VEVENT"):
        first, last = event.DTSTART, event.DTEND
        assert isinstance(first, datetime) and isinstance(last, datetime)
        exdates = event.get("EXDATE", [])
        skipped = {d.dt for line in (exdates if isinstance(exdates, list) else [exdates]) for d in line.dts}
        rule = event.get("RRULE")
        step = 0
        while True:
            a = first.replace(tzinfo=None) + timedelta(weeks=step)
            b = last.replace(tzinfo=None) + timedelta(weeks=step)
            occ = (a.replace(tzinfo=first.tzinfo), b.replace(tzinfo=last.tzinfo))
            if occ[0] >= end or (step and not rule):
                break
            if occ[1] > start and occ[0] not in skipped:
                shown.add(occ)
            step += 1
    return shown


def test_the_feed_lists_exactly_the_shifts_the_librarian_works(w: dict) -> None:
    shift = monday_evening(w["evening"], w["ana"], w["ben"])
    late = rota.shift_create(w["statewide"], MON_19, weekday=4, start_minute=22 * 60, end_minute=24 * 60)
    rota.shift_assign(late, w["ana"], MON_19 - timedelta(days=7))
    handed = rota.swap_offer(shift, date(2026, 3, 16), w["ana"], MON_19)
    rota.swap_take(handed.pk, w["cy"], MON_19)
    taken = rota.swap_offer(shift, date(2026, 3, 23), w["ben"], MON_19)
    with pytest.raises(rota.RotaError, match="on that shift already"):
        rota.swap_take(taken.pk, w["ana"], MON_19)
    rota.swap_take(taken.pk, w["cy"], MON_19)

    ana = StaffProfile.objects.get(pk=w["ana"].pk)
    feed = ical.rota_feed(ana, MON_19.astimezone(UTC))
    assert feed.startswith("BEGIN:VCALENDAR\r\n") and feed.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in feed.split("\r\n")), "folded at 75 octets"
    assert "RRULE:FREQ=WEEKLY;BYDAY=MO" in feed and "RRULE:FREQ=WEEKLY;BYDAY=FR" in feed
    assert "BEGIN:VTIMEZONE" in feed and "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU" in feed
    window = (local(2026, 3, 9, 0), local(2026, 4, 6, 0))
    expected = {(o.start, o.end) for o in rota.librarian_occurrences(ana, *window)}
    assert _expand(feed, *window) == expected
    assert (local(2026, 3, 16, 18), local(2026, 3, 16, 22)) not in expected, "handed to cy"
    assert (local(2026, 3, 13, 22), local(2026, 3, 14, 0)) in expected, "Friday 22:00-24:00"

    cy = StaffProfile.objects.get(pk=w["cy"].pk)
    assert _expand(ical.rota_feed(cy, MON_19.astimezone(UTC)), *window) == {
        (local(2026, 3, 16, 18), local(2026, 3, 16, 22)), (local(2026, 3, 23, 18), local(2026, 3, 23, 22))}


def test_the_feed_address_is_secret_and_can_be_replaced(w: dict, client: object) -> None:
    monday_evening(w["evening"], w["ana"])
    token = rota.feed_token_issue(w["ana"])
    assert token and rota.feed_token_issue(w["ana"]) is None, "made once, and shown only then"
    response = client.get(f"/rota/feed/{token}.ics")  # type: ignore[attr-defined]
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert b"SUMMARY:Evening shift" in response.content
    new = rota.feed_token_reset(w["ana"])
    assert client.get(f"/rota/feed/{token}.ics").status_code == 404  # type: ignore[attr-defined]
    assert client.get(f"/rota/feed/{new}.ics").status_code == 200  # type: ignore[attr-defined]
    assert client.get("/rota/feed/guess.ics").status_code == 404  # type: ignore[attr-defined]
