"""Reading a library's hours from an iCalendar file, and writing them back out (round trip)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from libraries import ical, services
from libraries.hours import schedule_for
from libraries.models import Closure
from tests.factories import make_consortium, make_library, set_weekly_hours

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)

# As a library's calendar exports them: CRLF lines, a folded line, a VTIMEZONE, escapes in text.
LIBRARY_ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Library//Hours//EN\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\nUID:weekday@example.org\r\nSUMMARY:Open\\, weekdays\r\n"
    "DTSTART;TZID=America/New_York:20260302T090000\r\nDTEND;TZID=America/New_York:20260302T170000\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,\r\n TH,FR\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:evening@example.org\r\nSUMMARY:Late opening\r\n"
    "DTSTART;TZID=America/New_York:20260304T180000\r\nDTEND;TZID=America/New_York:20260304T210000\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=WE\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:sat@example.org\r\nSUMMARY:Saturday (written in UTC)\r\n"
    "DTSTART:20260307T150000Z\r\nDURATION:PT4H\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:sun@example.org\r\nSUMMARY:Sunday night into Monday (floating)\r\n"
    "DTSTART:20260308T220000\r\nDTEND:20260309T010000\r\nRRULE:FREQ=WEEKLY;BYDAY=SU\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:xmas@example.org\r\nSUMMARY:Christmas\r\n"
    "DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261226\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:eve@example.org\r\nSUMMARY:New Year's Eve\r\n"
    "DTSTART;TZID=America/New_York:20261231T090000\r\nDTEND;TZID=America/New_York:20261231T120000\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:old@example.org\r\nSUMMARY:Summer hours 2025\r\n"
    "DTSTART;TZID=America/New_York:20250602T080000\r\nDTEND;TZID=America/New_York:20250602T200000\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250831T000000Z\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:fortnight@example.org\r\nSUMMARY:Book club\r\n"
    "DTSTART;TZID=America/New_York:20260303T190000\r\nDTEND;TZID=America/New_York:20260303T200000\r\n"
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:cancelled@example.org\r\nSTATUS:CANCELLED\r\nSUMMARY:Cancelled\r\n"
    "DTSTART;TZID=America/New_York:20260305T060000\r\nDTEND;TZID=America/New_York:20260305T070000\r\n"
    "RRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def h(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def test_weekly_events_become_weekly_hours_in_the_queues_zone() -> None:
    found = ical.hours_from_ics(LIBRARY_ICS, "America/New_York", today=TODAY)
    assert found.weekly == {
        0: [(h("00:00"), h("01:00")), (h("09:00"), h("17:00"))],  # Sunday's late night runs into Monday
        1: [(h("09:00"), h("17:00"))],
        2: [(h("09:00"), h("17:00")), (h("18:00"), h("21:00"))],
        3: [(h("09:00"), h("17:00"))],
        4: [(h("09:00"), h("17:00"))],
        5: [(h("10:00"), h("14:00"))],  # 15:00 UTC in March (EST) is 10:00 in New York
        6: [(h("22:00"), h("24:00"))],
    }
    assert found.closures == [(date(2026, 12, 24), date(2026, 12, 25), "Christmas")], "DTEND of a day is exclusive"
    assert found.special == {date(2026, 12, 31): [(h("09:00"), h("12:00"))]}
    assert len(found.notes) == 2
    assert "Summer hours 2025" in found.notes[0] and "2025-08-31" in found.notes[0]
    assert "Book club" in found.notes[1] and "every 2" in found.notes[1]


def test_the_same_calendar_read_for_a_queue_in_another_zone_is_moved_to_its_clock() -> None:
    found = ical.hours_from_ics(LIBRARY_ICS, "America/Chicago", today=TODAY)
    assert found.weekly[1] == [(h("08:00"), h("16:00"))]


@pytest.mark.parametrize(("text", "problem"), [
    ("hello", "HELLO has no value"),
    (":nameless", "not a calendar line"),
    ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n", "does not close"),
    ("BEGIN:VCALENDAR\r\n", "never closed"),
    ("BEGIN:VEVENT\r\nEND:VEVENT\r\n", "is this an iCalendar"),
])
def test_what_is_not_a_calendar_is_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(ical.CalendarError, match=problem):
        ical.hours_from_ics(text, "America/New_York", today=TODAY)


def test_an_unreadable_event_is_skipped_and_named() -> None:
    text = ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Odd zone\r\nDTSTART;TZID=Mars/Olympus:"
            "20260302T090000\r\nDTEND;TZID=Mars/Olympus:20260302T170000\r\nRRULE:FREQ=WEEKLY\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    found = ical.hours_from_ics(text, "America/New_York", today=TODAY)
    assert found.weekly == {} and found.notes == ['"Odd zone": time zone \'Mars/Olympus\' is not an IANA name; '
                                                  "skipped"]
    outlook = text.replace("Mars/Olympus", "Central Standard Time")
    assert ical.hours_from_ics(outlook, "America/New_York", today=TODAY).weekly == {0: [(600, 1080)]}


@pytest.mark.django_db
def test_a_queues_hours_survive_the_round_trip_through_ics() -> None:
    consortium = make_consortium("ics")
    library = make_library(consortium, "tampa", timezone="America/Chicago")
    queue = library.local_queue
    set_weekly_hours(queue, {0: [(540, 720), (780, 1020)], 2: [(540, 720)], 5: [(600, 1440)], 6: [(0, 120)]})
    services.closure_add(queue, NOW, date(2026, 12, 25), date(2026, 12, 26), "Christmas, closed")
    services.special_hours_set(queue, NOW, date(2026, 12, 24), [(540, 720)], "Christmas Eve")
    before = schedule_for(queue)
    text = ical.hours_calendar(queue, NOW)

    queue.weekly.all().delete()
    queue.closures.all().delete()
    queue.special_hours.all().delete()
    found = ical.hours_from_ics(text, queue.timezone, today=TODAY)
    assert found.notes == []
    services.queue_hours_import(queue, NOW, found)
    queue.refresh_from_db()
    after = schedule_for(queue)
    assert after.weekly == before.weekly
    assert after.closures == before.closures and after.special == before.special
    assert Closure.objects.get(queue=queue).reason == "Christmas, closed", "escaped and read back"


def test_long_lines_are_folded_without_splitting_a_character() -> None:
    line = "SUMMARY:" + "é" * 60
    folded = ical.fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert ical.unfold(folded + "\r\n") == [line]


def test_a_zone_without_clock_changes_gets_one_observance() -> None:
    lines = ical.vtimezone("America/Phoenix", 2026, 2027)
    assert lines[:2] == ["BEGIN:VTIMEZONE", "TZID:America/Phoenix"]
    assert "TZOFFSETTO:-0700" in lines and not any(line.startswith("RRULE") for line in lines)


def test_european_rules_are_last_sundays() -> None:
    lines = ical.vtimezone("Europe/Madrid", 2026, 2028)
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in lines
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in lines
