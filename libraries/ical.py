"""iCalendar (RFC 5545), both ways: a librarian's private feed of shifts, and a library's hours in and out.

The `icalendar` package reads and writes the format (line folding, escaping, parameters, time zones
named by IANA or Windows names or defined by the file's own VTIMEZONE). This module holds only the
project's rules on top of it. The import reads the handful of shapes library calendars (Google
Calendar, Outlook, LibCal) are exported in:

- a weekly opening hour: a timed VEVENT with ``RRULE:FREQ=WEEKLY;BYDAY=MO,TU,...`` -> weekly hours;
- a closure: an all-day VEVENT (``DTSTART;VALUE=DATE``) -> closed from its first to its last day;
- special hours: a timed VEVENT that does not repeat -> that date's hours replace the week's.

Wall times are read in the event's own zone (TZID), UTC (a trailing Z) or, when the event gives
none ("floating"), the queue's zone, and turned into the queue's local times. Whatever cannot be
read as hours (a fortnightly rule, an event in the past) is skipped and named in `notes`.

The work is bounded by construction, whatever the file says (docs/security.md, "Calendar import"):
reading an event costs one step per day it covers, and a file may name any date from year 1 to 9999.
So an event must lie within the window `HORIZON_PAST` before today to `HORIZON_AHEAD` after it
(a weekly rule must start before the window ends), last at most `MAX_EVENT_DAYS`, and the whole file
may spend at most `MAX_DAYS_READ` such days; anything past these is skipped with the reason in
`notes`. Recurrences are never expanded: a weekly rule is read as its one week, so a rule with no
end (or a daily one, which is refused) costs no more than one event.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event, Timezone, TimezoneDaylight, TimezoneStandard, vRecur
from icalendar.parser import Contentlines

from libraries.hours import MINUTES_PER_DAY, Interval, schedule_for
from libraries.models import Queue, ShiftAssignment, ShiftSwap, StaffProfile

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PRODID = "-//vrconsortium//Ask a Librarian//EN"
_ONE_DAY = timedelta(days=1)

# The import's bounds (see the module docstring): hours a library publishes are for the coming months,
# a calendar export keeps the past year or so, and a closure longer than a year is not a closure.
HORIZON_PAST = timedelta(days=366)
HORIZON_AHEAD = timedelta(days=2 * 366)
MAX_EVENT_DAYS = 366
MAX_DAYS_READ = 20_000  # about 27 events of a year each, or 20,000 one-day ones: far above any library's file

# --- writing --------------------------------------------------------------------------------------------


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", PRODID)
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("X-WR-CALNAME", name)
    return cal


def _event(uid: str, stamp: datetime, summary: str, start: date, end: date) -> Event:
    event = Event()
    event.add("UID", uid)
    event.add("DTSTAMP", stamp.astimezone(UTC))
    event.add("DTSTART", start)
    event.add("DTEND", end)
    event.add("SUMMARY", summary)
    return event


def _wall(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """A local wall time in `zone`; 24:00 is the next day's 00:00, as RFC 5545 has no 24:00."""
    return (datetime.combine(day, time()) + timedelta(minutes=minute)).replace(tzinfo=zone)


@dataclass(frozen=True)
class _Transition:
    at: datetime  # UTC
    before: timedelta
    after: timedelta
    dst: bool
    name: str


def _transitions(zone: ZoneInfo, first_year: int, last_year: int) -> list[_Transition]:
    found = []
    t = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    while t < end:
        a, b = t.astimezone(zone), (t + step).astimezone(zone)
        if a.utcoffset() != b.utcoffset():
            lo, hi = int(t.timestamp()), int((t + step).timestamp())
            while hi - lo > 1:  # the first second of the new offset
                mid = (lo + hi) // 2
                if datetime.fromtimestamp(mid, tz=zone).utcoffset() == a.utcoffset():
                    lo = mid
                else:
                    hi = mid
            after = datetime.fromtimestamp(hi, tz=zone)
            found.append(_Transition(datetime.fromtimestamp(hi, tz=UTC), a.utcoffset() or timedelta(),
                                     after.utcoffset() or timedelta(), bool(after.dst()), after.tzname() or ""))
        t += step
    return found


class _ObservanceRule(vRecur):
    """A yearly rule written in the order of RFC 5545's own VTIMEZONE examples (BYMONTH before BYDAY)."""

    canonical_order = ("RSCALE", "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYMONTH",
                       "BYDAY", "BYWEEKDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS", "WKST", "SKIP")


def _yearly_rule(local_starts: list[datetime]) -> _ObservanceRule | None:
    """The rule for starts that fall on the same nth (or last) weekday of one month at one time each year."""
    def position(d: datetime) -> tuple[int, int, int, time]:
        last = (d + timedelta(days=7)).month != d.month
        return (d.month, d.weekday(), -1 if last else (d.day - 1) // 7 + 1, d.time())

    keys = {position(d) for d in local_starts}
    years = [d.year for d in local_starts]
    if len(keys) != 1 or len(local_starts) < 2 or years != list(range(years[0], years[0] + len(years))):
        # "Last" can also be "4th" in a given year; try the nth reading alone when it is consistent.
        nth = {(d.month, d.weekday(), (d.day - 1) // 7 + 1, d.time()) for d in local_starts}
        if len(nth) != 1 or len(local_starts) < 2:
            return None
        keys = nth
    month, weekday, n, _ = next(iter(keys))
    return _ObservanceRule({"FREQ": "YEARLY", "BYMONTH": [month], "BYDAY": [f"{n}{DAYS[weekday]}"]})


def vtimezone(name: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for an IANA zone: yearly rules when the transitions follow one, else dated ones.

    Not `Timezone.from_tzinfo`: that writes every year's change as an RDATE and dates a spring change
    at the new offset's wall time (03:00), where RFC 5545 (and Google and Outlook) date an
    observance at the wall time of the offset before it (02:00) and write one yearly rule.
    """
    zone = ZoneInfo(name)
    tz = Timezone()
    tz.add("TZID", name)
    transitions = _transitions(zone, first_year, last_year)
    if not transitions:
        probe = datetime(first_year, 1, 1, tzinfo=UTC).astimezone(zone)
        standard = TimezoneStandard()
        standard.add("DTSTART", datetime.combine(date(1970, 1, 1), time()))
        standard.add("TZOFFSETFROM", probe.utcoffset() or timedelta())
        standard.add("TZOFFSETTO", probe.utcoffset() or timedelta())
        standard.add("TZNAME", probe.tzname() or name)
        tz.add_component(standard)
        return tz
    groups: dict[tuple[bool, timedelta, timedelta, str], list[_Transition]] = defaultdict(list)
    for tr in transitions:
        groups[(tr.dst, tr.before, tr.after, tr.name)].append(tr)
    for (dst, before, after, tzname), group in groups.items():
        observance: Component = TimezoneDaylight() if dst else TimezoneStandard()
        # DTSTART of an observance is the wall time of the change in the offset before it.
        starts = [(tr.at + tr.before).replace(tzinfo=None) for tr in group]
        observance.add("DTSTART", starts[0])
        observance.add("TZOFFSETFROM", before)
        observance.add("TZOFFSETTO", after)
        observance.add("TZNAME", tzname)
        rule = _yearly_rule(starts)
        if rule:
            observance.add("RRULE", rule)
        elif len(starts) > 1:
            observance.add("RDATE", starts[1:])
        tz.add_component(observance)
    return tz


def rota_feed(librarian: StaffProfile, now: datetime, *, host: str = "vr") -> str:
    """The librarian's shifts as a calendar: one weekly series per assignment, with the dates handed
    to a colleague excluded, and one event per occurrence taken from a colleague."""
    consortium = librarian.library.consortium
    cal = _calendar(f"{consortium.name}: shifts of {librarian.display_name}")
    cal.add("METHOD", "PUBLISH")
    cal.add("REFRESH-INTERVAL", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    events: list[Event] = []
    zones: set[str] = set()
    first_year = now.year
    assignments = list(ShiftAssignment.objects.filter(librarian=librarian).select_related("shift__queue"))
    handed = defaultdict(list)
    for swap in ShiftSwap.objects.filter(offered_by=librarian, status=ShiftSwap.Status.TAKEN):
        handed[swap.shift_id].append(swap.date)
    for a in assignments:
        shift, queue = a.shift, a.shift.queue
        zones.add(queue.timezone)
        zone = ZoneInfo(queue.timezone)
        first = a.assigned_on + timedelta(days=(shift.weekday - a.assigned_on.weekday()) % 7)
        first_year = min(first_year, first.year)
        event = _event(f"shift-{shift.pk}-librarian-{librarian.pk}@{host}", now, f"{queue.name} shift",
                       _wall(first, shift.start_minute, zone), _wall(first, shift.end_minute, zone))
        event.add("RRULE", {"FREQ": "WEEKLY", "BYDAY": [DAYS[shift.weekday]]})
        for day in sorted(handed[shift.pk]):
            event.add("EXDATE", _wall(day, shift.start_minute, zone))
        event.add("DESCRIPTION", _describe(queue, shift.min_librarians))
        event.add("TRANSP", "OPAQUE")
        events.append(event)
    for swap in (ShiftSwap.objects.filter(taken_by=librarian, status=ShiftSwap.Status.TAKEN)
                 .select_related("shift__queue", "offered_by__user")):
        shift, queue = swap.shift, swap.shift.queue
        zones.add(queue.timezone)
        zone = ZoneInfo(queue.timezone)
        first_year = min(first_year, swap.date.year)
        event = _event(f"swap-{swap.pk}@{host}", now, f"{queue.name} shift (for {swap.offered_by.display_name})",
                       _wall(swap.date, shift.start_minute, zone), _wall(swap.date, shift.end_minute, zone))
        event.add("DESCRIPTION", _describe(queue, shift.min_librarians))
        event.add("TRANSP", "OPAQUE")
        events.append(event)
    for name in sorted(zones):
        cal.add_component(vtimezone(name, first_year, now.year + 2))
    for event in events:
        cal.add_component(event)
    return cal.to_ical().decode("utf-8")


def _describe(queue: Queue, minimum: int) -> str:
    return (f"Answer chats in the {queue.name} queue ({queue.slug}). At least {minimum} librarian"
            f"{'s' if minimum != 1 else ''} on this shift. Times are {queue.timezone}.")


def hours_calendar(queue: Queue, now: datetime, *, host: str = "vr") -> str:
    """A queue's weekly hours, closures and special hours as a calendar (what `hours_from_ics` reads)."""
    schedule = schedule_for(queue)
    zone = ZoneInfo(queue.timezone)
    today = now.astimezone(schedule.zone).date()
    monday = today - timedelta(days=today.weekday())
    cal = _calendar(queue.name + " hours")
    cal.add_component(vtimezone(queue.timezone, today.year - 1, today.year + 2))
    weekly = {d: ((0, MINUTES_PER_DAY),) for d in range(7)} if schedule.always_open else schedule.weekly
    # One weekly series per distinct interval, over every weekday that has it.
    days_of: dict[Interval, list[int]] = defaultdict(list)
    for weekday, intervals in sorted(weekly.items()):
        for interval in intervals:
            days_of[interval].append(weekday)
    for (start, end), weekdays in sorted(days_of.items()):
        first = monday + timedelta(days=weekdays[0])
        event = _event(f"hours-{queue.pk}-{start}-{end}@{host}", now, queue.name + " open",
                       _wall(first, start, zone), _wall(first, end, zone))
        event.add("RRULE", {"FREQ": "WEEKLY", "BYDAY": [DAYS[d] for d in weekdays]})
        cal.add_component(event)
    for closure in queue.closures.all():
        event = _event(f"closure-{closure.pk}@{host}", now, closure.reason or "Closed",
                       closure.start_date, closure.end_date + _ONE_DAY)
        event.add("TRANSP", "TRANSPARENT")
        cal.add_component(event)
    for special in queue.special_hours.all():
        for start, end in special.intervals:
            cal.add_component(_event(f"special-{special.pk}-{start}@{host}", now, special.reason or "Special hours",
                                     _wall(special.date, start, zone), _wall(special.date, end, zone)))
    return cal.to_ical().decode("utf-8")


# --- reading ----------------------------------------------------------------------------------------------


class CalendarError(ValueError):
    pass


def parse(text: str) -> Calendar:
    """The VCALENDAR of an .ics text (a CalendarError, with the reason, when it is not one)."""
    try:
        components = Calendar.from_ical(text, multiple=True)
    except ValueError as e:
        raise CalendarError(_why_unreadable(text) or str(e)) from e
    calendar = next((c for c in components if c.name == "VCALENDAR"), None)
    if not isinstance(calendar, Calendar):
        raise CalendarError(_why_unreadable(text) or "no BEGIN:VCALENDAR: is this an iCalendar (.ics) file?")
    return calendar


def _why_unreadable(text: str) -> str | None:
    """Which line icalendar refused, or which BEGIN has no END, in words a coordinator can act on
    (icalendar says only that it found no calendar, or that some line has no parts)."""
    opened: list[str] = []
    for line in Contentlines.from_ical(text):
        if not line:
            continue
        try:
            name, _params, value = line.parts()
        except ValueError:
            named = re.match(r"[A-Za-z0-9-]+", line)
            if named is None:
                return f"not a calendar line: {line[:60]!r}"
            if ":" not in line:
                return f"{named.group(0).upper()} has no value: {line[:60]!r}"
            return f"a parameter of {named.group(0).upper()} cannot be read: {line[:60]!r}"
        if name.upper() == "BEGIN":
            opened.append(value.strip().upper())
        elif name.upper() == "END":
            if not opened or opened[-1] != value.strip().upper():
                return f"END:{value} does not close BEGIN:{opened[-1] if opened else '(nothing)'}"
            opened.pop()
    if opened:
        return f"BEGIN:{opened[-1]} is never closed"
    return None


def _moment(event: Component, name: str, zone: ZoneInfo) -> datetime | date:
    """A DATE, or a DATE-TIME as an aware datetime (floating times are read in `zone`)."""
    prop = event[name]
    value = getattr(prop, "dt", None)  # a broken value (vBroken) has none
    if not isinstance(value, date):
        raise CalendarError(f"{name} {str(prop)!r} is not a date or a date-time")
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return value
    tzid = prop.params.get("TZID")
    if tzid:  # icalendar knows IANA and Windows names and the file's own VTIMEZONEs; this is none
        raise CalendarError(f"time zone {tzid!r} is not an IANA name")
    return value.replace(tzinfo=zone)


def _first(rule: vRecur, part: str, default: Any = None) -> Any:
    values = rule.get(part)
    return values[0] if values else default


@dataclass
class HoursImport:
    """What an .ics file says about a queue's hours, in the queue's local minutes."""

    weekly: dict[int, list[Interval]] = field(default_factory=dict)
    closures: list[tuple[date, date, str]] = field(default_factory=list)
    special: dict[date, list[Interval]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _local_pieces(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, Interval]]:
    """[start, end) as (local date, interval) pieces in `zone`, split at local midnight."""
    a, b = start.astimezone(zone).replace(tzinfo=None), end.astimezone(zone).replace(tzinfo=None)
    pieces = []
    day = a.date()
    while datetime.combine(day, time()) < b:
        lo = max(a, datetime.combine(day, time()))
        hi = min(b, datetime.combine(day + _ONE_DAY, time()))
        s = lo.hour * 60 + lo.minute
        e = MINUTES_PER_DAY if hi.date() > day else hi.hour * 60 + hi.minute
        if e > s:
            pieces.append((day, (s, e)))
        day += _ONE_DAY
    return pieces


def hours_from_ics(text: str, timezone: str, *, today: date) -> HoursImport:
    """Read weekly hours, closures and special hours for a queue in `timezone` from an .ics text."""
    zone = ZoneInfo(timezone)
    found = HoursImport()
    weekly: dict[int, list[Interval]] = defaultdict(list)
    special: dict[date, list[Interval]] = defaultdict(list)
    left_out: list[tuple[str, list[date]]] = []
    window = (today - HORIZON_PAST, today + HORIZON_AHEAD)
    days_read, too_old = 0, 0
    for n, event in enumerate(parse(text).walk("VEVENT"), start=1):
        summary = str(event.get("SUMMARY", "")) or f"event {n}"
        label = f'"{summary}"'
        if str(event.get("STATUS", "")).strip().upper() == "CANCELLED":
            continue
        if "DTSTART" not in event:
            found.notes.append(f"{label} has no start; skipped")
            continue
        try:
            start = _moment(event, "DTSTART", zone)
            end = _moment(event, "DTEND", zone) if "DTEND" in event else None
        except CalendarError as e:
            found.notes.append(f"{label}: {e}; skipped")
            continue
        rules = event.get("RRULE")
        rule: vRecur | None = rules[0] if isinstance(rules, list) else rules
        if not isinstance(start, datetime):  # an all-day event: a closure
            last = (end - _ONE_DAY) if isinstance(end, date) and not isinstance(end, datetime) and end > start \
                else start
            refused = _beyond_bounds(start, last, window, days_read, repeats=False)
            if refused == _TOO_OLD:
                too_old += 1
                continue
            if refused:
                found.notes.append(f"{label} {refused}; skipped")
                continue
            days_read += (last - start).days + 1
            if rule:
                found.notes.append(f"{label} repeats; only its first closure ({start.isoformat()}) was imported")
            found.closures.append((start, last, summary[:200]))
            continue
        if not isinstance(end, datetime):
            duration = getattr(event.get("DURATION"), "dt", None)
            if "DURATION" not in event:
                found.notes.append(f"{label} has no end; skipped")
                continue
            if not isinstance(duration, timedelta):
                found.notes.append(f"{label}: duration {str(event['DURATION'])!r} cannot be read; skipped")
                continue
            try:
                end = start + duration
            except OverflowError:  # a duration of millions of days: past year 9999
                found.notes.append(f"{label} ends after the year 9999; skipped")
                continue
        if end <= start:
            found.notes.append(f"{label} ends before it starts; skipped")
            continue
        # Dates in the event's own zone; the queue's differs by at most a day, which the bounds can spare.
        refused = _beyond_bounds(start.date(), end.date(), window, days_read, repeats=rule is not None)
        if refused == _TOO_OLD:
            too_old += 1
            continue
        if refused:
            found.notes.append(f"{label} {refused}; skipped")
            continue
        days_read += (end.date() - start.date()).days + 1
        if rule is None:
            try:
                pieces = _local_pieces(start, end, zone)
            except OverflowError:  # within a day of year 1 or 9999: no queue's zone can hold it
                found.notes.append(f"{label} is at the very edge of the calendar; skipped")
                continue
            for day, interval in pieces:
                special[day].append(interval)
            continue
        freq, interval_count = str(_first(rule, "FREQ", "?")), int(_first(rule, "INTERVAL", 1))
        if freq != "WEEKLY" or interval_count != 1:
            found.notes.append(f"{label} repeats {freq.lower()}"
                               f"{f' every {interval_count}' if interval_count != 1 else ''}, "
                               "not every week; skipped")
            continue
        until = _first(rule, "UNTIL")
        until_day = until.date() if isinstance(until, datetime) else until
        if until_day is not None and until_day < today:
            found.notes.append(f"{label} stopped repeating on {until_day.isoformat()}; skipped")
            continue
        days = [str(d).upper() for d in rule.get("BYDAY") or [DAYS[start.weekday()]]]
        if any(d[-2:] not in DAYS or d[:-2] for d in days):
            found.notes.append(f"{label} repeats on {','.join(days)}, not on plain weekdays; skipped")
            continue
        source_day = start.weekday()  # the weekday of DTSTART in its own zone
        occurrences: list[tuple[date, Interval]] = []
        try:
            for day_name in days:
                shift = (DAYS.index(day_name[-2:]) - source_day) % 7
                # Place the occurrence on that weekday in the event's zone, then read it in the queue's.
                occurrences += _local_pieces(_shift_days(start, shift), _shift_days(end, shift), zone)
        except OverflowError:  # a rule starting in year 1: its first week cannot be read in the queue's zone
            found.notes.append(f"{label} starts at the very edge of the calendar; skipped")
            continue
        left_out.append((label, _left_out(event)))
        for local_day, interval in occurrences:
            weekly[local_day.weekday()].append(interval)
    if too_old:
        found.notes.append(f"{too_old} event(s) ended before {window[0].isoformat()}, more than "
                           f"{HORIZON_PAST.days} days ago; skipped")
    found.weekly = {d: _merge(weekly[d]) for d in sorted(weekly)}
    found.special = {d: _merge(special[d]) for d in sorted(special)}
    found.closures.sort()
    for label, dates in left_out:
        # Hours are weekly here, so a date a series leaves out is open after all, unless the same
        # file closes it or gives it special hours (as Google and Outlook exports usually do).
        missing = [d for d in dates if d >= today and d not in found.special
                   and not any(first <= d <= last for first, last, _ in found.closures)]
        if missing:
            found.notes.append(f"{label} leaves out {', '.join(d.isoformat() for d in missing)}, which the "
                               "weekly hours cannot: add a closure or special hours there if the library is closed")
    return found


_TOO_OLD = "ended more than a year ago"


def _beyond_bounds(first: date, last: date, window: tuple[date, date], days_read: int, *, repeats: bool) -> str:
    """Why an event from `first` to `last` (dates, both included) is past the import's bounds, or "".

    A weekly rule is read as one week, so only its start and its one occurrence's length count; one
    that started long ago still repeats today (its UNTIL, if any, is checked by the caller).
    """
    days = (last - first).days + 1
    if days > MAX_EVENT_DAYS:
        return f"lasts {days} days, more than the {MAX_EVENT_DAYS} an import accepts"
    if first > window[1]:
        return f"starts on {first.isoformat()}, after {window[1].isoformat()} ({HORIZON_AHEAD.days} days ahead)"
    if last < window[0] and not repeats:
        return _TOO_OLD
    if days_read + days > MAX_DAYS_READ:
        return f"is past the {MAX_DAYS_READ} days of events one import reads (split the file)"
    return ""


def _left_out(event: Component) -> list[date]:
    """The dates (in the event's own zone) that a series' EXDATEs leave out."""
    lines = event.get("EXDATE", [])
    days = set()
    for line in lines if isinstance(lines, list) else [lines]:
        for value in getattr(line, "dts", []):
            moment = getattr(value, "dt", None)
            if isinstance(moment, date):
                days.add(moment.date() if isinstance(moment, datetime) else moment)
    return sorted(days)


def _shift_days(moment: datetime, days: int) -> datetime:
    """The same wall time `days` later in the moment's own zone (so DST in between does not move it)."""
    zone = moment.tzinfo
    naive = moment.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=zone)
