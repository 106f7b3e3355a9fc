"""Reading a library's hours from an iCalendar file, and writing them back out (round trip)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from icalendar import Calendar, Event

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
    line = "é" * 60
    calendar, event = Calendar(), Event()
    event.add("SUMMARY", line)
    calendar.add_component(event)
    folded = calendar.to_ical().decode()
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert str(ical.parse(folded).walk("VEVENT")[0]["SUMMARY"]) == line


def test_a_zone_without_clock_changes_gets_one_observance() -> None:
    lines = ical.vtimezone("America/Phoenix", 2026, 2027).to_ical().decode().split("\r\n")
    assert lines[:2] == ["BEGIN:VTIMEZONE", "TZID:America/Phoenix"]
    assert "TZOFFSETTO:-0700" in lines and not any(line.startswith("RRULE") for line in lines)


def test_european_rules_are_last_sundays() -> None:
    lines = ical.vtimezone("Europe/Madrid", 2026, 2028).to_ical().decode().split("\r\n")
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in lines
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in lines


# --- real exports -----------------------------------------------------------------------------------------
# Shaped as Google Calendar, Outlook and LibCal write them (see the files); each must import as the hours,
# closures and special hours a coordinator reading it in that product would expect.

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")  # bytes: keep the CRLF line ends as exported


def test_a_google_calendar_export_imports() -> None:
    text = fixture("google_hours.ics")
    assert "X-WR-TIMEZONE:America/New_York\r\n" in text and "UNTIL=20250901T035959Z" in text
    found = ical.hours_from_ics(text, "America/New_York", today=TODAY)
    assert found.weekly == {d: [(h("09:00"), h("20:00"))] for d in range(4)} | {
        4: [(h("10:00"), h("17:00"))], 5: [(h("10:00"), h("17:00"))]}
    assert found.closures == [(date(2026, 5, 25), date(2026, 5, 25), "Closed \u2013 Memorial Day"),
                              (date(2026, 11, 26), date(2026, 11, 27), "Closed for Thanksgiving")]
    # The changed occurrence (RECURRENCE-ID) is that date's hours; Christmas Eve a one-off.
    assert found.special == {date(2026, 3, 11): [(h("09:00"), h("12:00"))],
                             date(2026, 12, 24): [(h("09:00"), h("13:00"))]}
    assert found.notes == [
        '"Summer Sunday hours" stopped repeating on 2025-09-01; skipped',
        '"Open" leaves out 2026-04-15, which the weekly hours cannot: add a closure or special hours there if the '
        "library is closed"], "past EXDATEs and those the file closes anyway need no word"


def test_an_outlook_export_imports_with_windows_zone_names() -> None:
    text = fixture("outlook_hours.ics")
    assert text.count("\r\n") == text.count("\n") and "TZID=Central Standard Time:" in text
    found = ical.hours_from_ics(text, "America/Chicago", today=TODAY)
    # Saturday is written in the file's own "Customized Time Zone" (Eastern rules): 11:00-15:00 there.
    assert found.weekly == {d: [(h("08:00"), h("18:00"))] for d in range(5)} | {5: [(h("10:00"), h("14:00"))]}
    assert found.closures == [(date(2026, 5, 25), date(2026, 5, 25), "Library closed - Memorial Day")]
    assert found.special == {date(2026, 5, 4): [(h("18:00"), h("23:00"))]}
    assert found.notes == []


def test_a_libcal_hours_feed_imports_day_by_day() -> None:
    # LibCal publishes each day's hours as its own event in UTC: each is that date's special hours.
    found = ical.hours_from_ics(fixture("libcal_hours.ics"), "America/New_York", today=TODAY)
    assert found.weekly == {}
    assert found.special == {
        date(2026, 3, 6): [(h("09:00"), h("17:00"))],  # 14:00Z in EST
        date(2026, 3, 9): [(h("09:00"), h("17:00"))],  # 13:00Z in EDT, the day after the clocks change
        date(2026, 3, 10): [(h("00:00"), h("24:00"))],
        date(2026, 3, 11): [(h("09:00"), h("24:00"))],
        date(2026, 3, 12): [(h("00:00"), h("02:00"))],  # open until 2 am
    }
    assert found.closures == [(date(2026, 3, 8), date(2026, 3, 8), "Main Library: Closed"),
                              (date(2026, 3, 16), date(2026, 3, 20), "Spring Break - Library Closed")]
    assert found.notes == []


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "timezone"), [("google_hours.ics", "America/New_York"),
                                                ("outlook_hours.ics", "America/Chicago"),
                                                ("libcal_hours.ics", "America/New_York")])
def test_each_export_is_accepted_by_the_hours_editor(name: str, timezone: str) -> None:
    library = make_library(make_consortium("exports"), "riverside", timezone=timezone)
    found = ical.hours_from_ics(fixture(name), timezone, today=TODAY)
    services.queue_hours_import(library.local_queue, NOW, found)
    schedule = schedule_for(library.local_queue)
    assert schedule.weekly == {d: tuple(found.weekly[d]) for d in found.weekly}
    assert len(schedule.closures) == len(found.closures) and set(schedule.special) == set(found.special)


# --- hostile files: the import's work is bounded (docs/security.md, "Calendar import") -----------------


def calendar(*events: str) -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n" + "".join(
        f"BEGIN:VEVENT\r\nUID:{n}@x\r\nSUMMARY:e{n}\r\n{body}END:VEVENT\r\n" for n, body in enumerate(events))
        + "END:VCALENDAR\r\n")


def test_an_event_from_year_1_to_9999_is_refused_by_its_length_not_read_day_by_day() -> None:
    # Read day by day this is 3.65 million days (minutes of work, and a year-1 date the queue's zone
    # cannot hold); the length check refuses it before a single day is read.
    found = ical.hours_from_ics(calendar("DTSTART:00010101T090000Z\r\nDTEND:99991231T170000Z\r\n",
                                         "DTSTART;VALUE=DATE:00010101\r\nDTEND;VALUE=DATE:99991231\r\n",
                                         "DTSTART:00020101T090000Z\r\nDTEND:99981231T170000Z\r\n"),
                                "America/New_York", today=TODAY)
    assert found.special == {} and found.closures == [] and found.weekly == {}
    assert len(found.notes) == 3 and all(f"more than the {ical.MAX_EVENT_DAYS} an import accepts" in note
                                         for note in found.notes), found.notes


def test_events_beyond_the_horizon_are_refused_with_the_reason() -> None:
    found = ical.hours_from_ics(calendar(
        "DTSTART:99991231T090000Z\r\nDTEND:99991231T100000Z\r\n",  # the last hour there is
        "DTSTART;VALUE=DATE:20300101\r\n",  # a closure four years ahead
        "DTSTART:20290105T090000Z\r\nDTEND:20290105T170000Z\r\nRRULE:FREQ=WEEKLY\r\n",  # hours from 2029
        "DTSTART:00010101T000000Z\r\nDTEND:00010101T010000Z\r\n",  # the first hour there is
        "DTSTART;VALUE=DATE:20240101\r\n",  # a closure two years ago
        "DTSTART:20260401T090000Z\r\nDURATION:P99999999D\r\n",  # ends past year 9999
        "DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261226\r\n",  # a closure this year: kept
    ), "America/New_York", today=TODAY)
    assert found.closures == [(date(2026, 12, 24), date(2026, 12, 25), "e6")]
    assert found.special == {} and found.weekly == {}
    ahead = (TODAY + ical.HORIZON_AHEAD).isoformat()
    assert f'"e0" starts on 9999-12-31, after {ahead} (732 days ahead); skipped' in found.notes
    assert f'"e1" starts on 2030-01-01, after {ahead} (732 days ahead); skipped' in found.notes
    assert f'"e2" starts on 2029-01-05, after {ahead} (732 days ahead); skipped' in found.notes
    assert '"e5" ends after the year 9999; skipped' in found.notes
    assert "2 event(s) ended before 2025-03-01, more than 366 days ago; skipped" in found.notes


def test_a_weekly_rule_with_no_end_or_a_daily_one_costs_one_week() -> None:
    # Recurrences are never expanded: a rule with no end from year 1 is read as its first week (which
    # here is too close to year 1 for the queue's zone), a daily rule is refused as it always was.
    found = ical.hours_from_ics(calendar(
        "DTSTART:00010101T010000Z\r\nDTEND:00010101T030000Z\r\nRRULE:FREQ=WEEKLY\r\n",
        "DTSTART:00010101T090000Z\r\nDTEND:00010101T170000Z\r\nRRULE:FREQ=DAILY\r\n",
        "DTSTART:20000103T140000Z\r\nDTEND:20000103T220000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\n",
    ), "America/New_York", today=TODAY)
    assert found.weekly == {0: [(h("9:00"), h("17:00"))]}, "a rule from 2000 still gives this week's hours"
    assert '"e0" starts at the very edge of the calendar; skipped' in found.notes
    assert '"e1" repeats daily, not every week; skipped' in found.notes


def test_the_whole_file_reads_at_most_its_budget_of_days() -> None:
    # Each event is within every other bound (a year long, inside the window); together they would
    # cost 200 x 366 days: the budget stops the reading and says where.
    year_long = "DTSTART:20260302T090000Z\r\nDTEND:20270301T090000Z\r\n"
    found = ical.hours_from_ics(calendar(*[year_long] * 200), "UTC", today=TODAY)
    read = ical.MAX_DAYS_READ // 366
    assert len(found.special) == 365, "the events overlap: one year of days"
    skipped = [note for note in found.notes if f"past the {ical.MAX_DAYS_READ} days" in note]
    assert len(skipped) == 200 - read
    assert skipped[0].startswith(f'"e{read}" ')
