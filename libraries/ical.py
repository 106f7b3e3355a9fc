"""iCalendar (RFC 5545), both ways: a librarian's private feed of shifts, and a library's hours in and out.

Written by hand rather than with a library: the feed needs weekly events, exceptions and time
zones, and the import reads the handful of shapes library calendars are exported in:

- a weekly opening hour: a timed VEVENT with ``RRULE:FREQ=WEEKLY;BYDAY=MO,TU,...`` -> weekly hours;
- a closure: an all-day VEVENT (``DTSTART;VALUE=DATE``) -> closed from its first to its last day;
- special hours: a timed VEVENT that does not repeat -> that date's hours replace the week's.

Wall times are read in the event's own zone (TZID), UTC (a trailing Z) or, when the event gives
none ("floating"), the queue's zone, and turned into the queue's local times. Whatever cannot be
read as hours (a fortnightly rule, an event in the past) is skipped and named in `notes`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libraries.hours import MINUTES_PER_DAY, Interval, schedule_for
from libraries.models import Queue, ShiftAssignment, ShiftSwap, StaffProfile

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PRODID = "-//vrconsortium//Ask a Librarian//EN"
_ONE_DAY = timedelta(days=1)

# --- writing --------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newline escaped."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (RFC 5545 3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    start = 0
    limit = 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a UTF-8 character
            end -= 1
        parts.append(raw[start:end].decode("utf-8"))
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(parts)


def calendar(lines: Iterable[str]) -> str:
    return "".join(fold(line) + "\r\n" for line in lines)


def _local(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _wall(day: date, minute: int) -> datetime:
    """A naive local wall time; 24:00 is the next day's 00:00, as RFC 5545 has no 24:00."""
    return datetime.combine(day, time()) + timedelta(minutes=minute)


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta()).total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}{seconds // 60 % 60:02d}"


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


def _yearly_rule(local_starts: list[datetime]) -> str | None:
    """RRULE for starts that fall on the same nth (or last) weekday of one month at one time each year."""
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
    return f"RRULE:FREQ=YEARLY;BYMONTH={month};BYDAY={n}{DAYS[weekday]}"


def vtimezone(name: str, first_year: int, last_year: int) -> list[str]:
    """A VTIMEZONE for an IANA zone: yearly rules when the transitions follow one, else dated ones."""
    zone = ZoneInfo(name)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{name}"]
    transitions = _transitions(zone, first_year, last_year)
    if not transitions:
        probe = datetime(first_year, 1, 1, tzinfo=UTC).astimezone(zone)
        offset = _offset(probe.utcoffset())
        lines += ["BEGIN:STANDARD", "DTSTART:19700101T000000", f"TZOFFSETFROM:{offset}", f"TZOFFSETTO:{offset}",
                  f"TZNAME:{escape(probe.tzname() or name)}", "END:STANDARD", "END:VTIMEZONE"]
        return lines
    groups: dict[tuple[bool, timedelta, timedelta, str], list[_Transition]] = defaultdict(list)
    for tr in transitions:
        groups[(tr.dst, tr.before, tr.after, tr.name)].append(tr)
    for (dst, before, after, tzname), group in groups.items():
        kind = "DAYLIGHT" if dst else "STANDARD"
        # DTSTART of an observance is the wall time of the change in the offset before it.
        starts = [(tr.at + tr.before).replace(tzinfo=None) for tr in group]
        lines += [f"BEGIN:{kind}", f"DTSTART:{_local(starts[0])}", f"TZOFFSETFROM:{_offset(before)}",
                  f"TZOFFSETTO:{_offset(after)}", f"TZNAME:{escape(tzname)}"]
        rule = _yearly_rule(starts)
        if rule:
            lines.append(rule)
        elif len(starts) > 1:
            lines.append("RDATE:" + ",".join(_local(s) for s in starts[1:]))
        lines.append(f"END:{kind}")
    lines.append("END:VTIMEZONE")
    return lines


def rota_feed(librarian: StaffProfile, now: datetime, *, host: str = "vr") -> str:
    """The librarian's shifts as a calendar: one weekly series per assignment, with the dates handed
    to a colleague excluded, and one event per occurrence taken from a colleague."""
    consortium = librarian.library.consortium
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape(f'{consortium.name}: shifts of {librarian.display_name}')}",
             "REFRESH-INTERVAL;VALUE=DURATION:PT1H"]
    stamp = _utc(now)
    events: list[str] = []
    zones: set[str] = set()
    first_year = now.year
    assignments = list(ShiftAssignment.objects.filter(librarian=librarian).select_related("shift__queue"))
    handed = defaultdict(list)
    for swap in ShiftSwap.objects.filter(offered_by=librarian, status=ShiftSwap.Status.TAKEN):
        handed[swap.shift_id].append(swap.date)
    for a in assignments:
        shift, queue = a.shift, a.shift.queue
        zones.add(queue.timezone)
        first = a.assigned_on + timedelta(days=(shift.weekday - a.assigned_on.weekday()) % 7)
        first_year = min(first_year, first.year)
        tz = f"TZID={queue.timezone}"
        events += ["BEGIN:VEVENT", f"UID:shift-{shift.pk}-librarian-{librarian.pk}@{host}", f"DTSTAMP:{stamp}",
                   f"DTSTART;{tz}:{_local(_wall(first, shift.start_minute))}",
                   f"DTEND;{tz}:{_local(_wall(first, shift.end_minute))}",
                   f"RRULE:FREQ=WEEKLY;BYDAY={DAYS[shift.weekday]}",
                   *(f"EXDATE;{tz}:{_local(_wall(day, shift.start_minute))}" for day in sorted(handed[shift.pk])),
                   f"SUMMARY:{escape(f'{queue.name} shift')}",
                   f"DESCRIPTION:{escape(_describe(queue, shift.min_librarians))}",
                   "TRANSP:OPAQUE", "END:VEVENT"]
    for swap in (ShiftSwap.objects.filter(taken_by=librarian, status=ShiftSwap.Status.TAKEN)
                 .select_related("shift__queue", "offered_by__user")):
        shift, queue = swap.shift, swap.shift.queue
        zones.add(queue.timezone)
        first_year = min(first_year, swap.date.year)
        tz = f"TZID={queue.timezone}"
        events += ["BEGIN:VEVENT", f"UID:swap-{swap.pk}@{host}", f"DTSTAMP:{stamp}",
                   f"DTSTART;{tz}:{_local(_wall(swap.date, shift.start_minute))}",
                   f"DTEND;{tz}:{_local(_wall(swap.date, shift.end_minute))}",
                   f"SUMMARY:{escape(f'{queue.name} shift (for {swap.offered_by.display_name})')}",
                   f"DESCRIPTION:{escape(_describe(queue, shift.min_librarians))}",
                   "TRANSP:OPAQUE", "END:VEVENT"]
    for name in sorted(zones):
        lines += vtimezone(name, first_year, now.year + 2)
    return calendar([*lines, *events, "END:VCALENDAR"])


def _describe(queue: Queue, minimum: int) -> str:
    return (f"Answer chats in the {queue.name} queue ({queue.slug}). At least {minimum} librarian"
            f"{'s' if minimum != 1 else ''} on this shift. Times are {queue.timezone}.")


def hours_calendar(queue: Queue, now: datetime, *, host: str = "vr") -> str:
    """A queue's weekly hours, closures and special hours as a calendar (what `hours_from_ics` reads)."""
    schedule = schedule_for(queue)
    tz = f"TZID={queue.timezone}"
    today = now.astimezone(schedule.zone).date()
    monday = today - timedelta(days=today.weekday())
    stamp = _utc(now)
    events: list[str] = []
    weekly = {d: ((0, MINUTES_PER_DAY),) for d in range(7)} if schedule.always_open else schedule.weekly
    # One weekly series per distinct interval, over every weekday that has it.
    days_of: dict[Interval, list[int]] = defaultdict(list)
    for weekday, intervals in sorted(weekly.items()):
        for interval in intervals:
            days_of[interval].append(weekday)
    for (start, end), weekdays in sorted(days_of.items()):
        first = monday + timedelta(days=weekdays[0])
        events += ["BEGIN:VEVENT", f"UID:hours-{queue.pk}-{start}-{end}@{host}", f"DTSTAMP:{stamp}",
                   f"DTSTART;{tz}:{_local(_wall(first, start))}", f"DTEND;{tz}:{_local(_wall(first, end))}",
                   f"RRULE:FREQ=WEEKLY;BYDAY={','.join(DAYS[d] for d in weekdays)}",
                   f"SUMMARY:{escape(queue.name + ' open')}", "END:VEVENT"]
    for closure in queue.closures.all():
        events += ["BEGIN:VEVENT", f"UID:closure-{closure.pk}@{host}", f"DTSTAMP:{stamp}",
                   f"DTSTART;VALUE=DATE:{closure.start_date:%Y%m%d}",
                   f"DTEND;VALUE=DATE:{closure.end_date + _ONE_DAY:%Y%m%d}",
                   f"SUMMARY:{escape(closure.reason or 'Closed')}", "TRANSP:TRANSPARENT", "END:VEVENT"]
    for special in queue.special_hours.all():
        for start, end in special.intervals:
            events += ["BEGIN:VEVENT", f"UID:special-{special.pk}-{start}@{host}", f"DTSTAMP:{stamp}",
                       f"DTSTART;{tz}:{_local(_wall(special.date, start))}",
                       f"DTEND;{tz}:{_local(_wall(special.date, end))}",
                       f"SUMMARY:{escape(special.reason or 'Special hours')}", "END:VEVENT"]
    zone_lines = vtimezone(queue.timezone, today.year - 1, today.year + 2)
    return calendar(["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN",
                     f"X-WR-CALNAME:{escape(queue.name + ' hours')}", *zone_lines, *events, "END:VCALENDAR"])


# --- reading ----------------------------------------------------------------------------------------------


@dataclass
class Property:
    name: str
    params: dict[str, str]
    value: str


@dataclass
class Component:
    name: str
    properties: list[Property] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def get(self, name: str) -> Property | None:
        return next((p for p in self.properties if p.name == name), None)

    def value(self, name: str) -> str | None:
        prop = self.get(name)
        return prop.value if prop is not None else None

    def all(self, name: str) -> list[Property]:
        return [p for p in self.properties if p.name == name]

    def walk(self, name: str) -> Iterator[Component]:
        for child in self.children:
            if child.name == name:
                yield child
            yield from child.walk(name)


class CalendarError(ValueError):
    pass


_PARAM = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:,]*(?:,(?:"[^"]*"|[^";:,]*))*)')


def unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return lines


def parse_line(line: str) -> Property:
    m = re.match(r"[A-Za-z0-9-]+", line)
    if not m:
        raise CalendarError(f"not a calendar line: {line[:60]!r}")
    name, rest = m.group(0).upper(), line[m.end():]
    params: dict[str, str] = {}
    while rest.startswith(";"):
        p = _PARAM.match(rest)
        if not p:
            raise CalendarError(f"a parameter of {name} cannot be read: {line[:60]!r}")
        params[p.group(1).upper()] = p.group(2).strip('"')
        rest = rest[p.end():]
    if not rest.startswith(":"):
        raise CalendarError(f"{name} has no value: {line[:60]!r}")
    return Property(name, params, rest[1:])


def parse(text: str) -> Component:
    """The VCALENDAR of an .ics text (a CalendarError when it is not one)."""
    root = Component("ROOT")
    stack = [root]
    for line in unfold(text):
        prop = parse_line(line)
        if prop.name == "BEGIN":
            child = Component(prop.value.strip().upper())
            stack[-1].children.append(child)
            stack.append(child)
        elif prop.name == "END":
            if len(stack) == 1 or stack[-1].name != prop.value.strip().upper():
                raise CalendarError(f"END:{prop.value} does not close BEGIN:{stack[-1].name}")
            stack.pop()
        else:
            stack[-1].properties.append(prop)
    if len(stack) != 1:
        raise CalendarError(f"BEGIN:{stack[-1].name} is never closed")
    calendars = [c for c in root.children if c.name == "VCALENDAR"]
    if not calendars:
        raise CalendarError("no BEGIN:VCALENDAR: is this an iCalendar (.ics) file?")
    return calendars[0]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def read_time(prop: Property, zone: ZoneInfo) -> datetime | date:
    """A DATE, or a DATE-TIME as an aware datetime (floating times are read in `zone`)."""
    value = prop.value.strip()
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?", value)
    if not m:
        raise CalendarError(f"{prop.name} {value!r} is not a date or a date-time")
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    zone_of_value: tzinfo = UTC if m.group(7) else _zone(prop.params.get("TZID"), zone)
    try:
        if m.group(4) is None:
            return date(year, month, day)
        hour, minute, second = int(m.group(4)), int(m.group(5)), min(int(m.group(6)), 59)
        return datetime(year, month, day, hour, minute, second, tzinfo=zone_of_value)
    except ValueError as e:
        raise CalendarError(f"{prop.name} {value!r} is not a date that exists") from e


# Outlook and Exchange name zones the Windows way; these are the ones of the US and Canada.
WINDOWS_ZONES = {
    "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles", "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu", "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns", "US Eastern Standard Time": "America/Indiana/Indianapolis",
}


def _zone(tzid: str | None, default: ZoneInfo) -> ZoneInfo:
    """The zone a TZID names (IANA, or a Windows name); `default` for a floating time."""
    if not tzid:
        return default
    name = WINDOWS_ZONES.get(tzid.strip(), tzid.strip().strip("/"))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CalendarError(f"time zone {tzid!r} is not an IANA name") from e


def read_rule(value: str) -> dict[str, str]:
    parts = {}
    for part in value.strip().split(";"):
        if "=" in part:
            key, _, v = part.partition("=")
            parts[key.strip().upper()] = v.strip().upper()
    return parts


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
    for n, event in enumerate(parse(text).walk("VEVENT"), start=1):
        summary = unescape(event.value("SUMMARY") or "") or f"event {n}"
        label = f'"{summary}"'
        if (event.value("STATUS") or "").strip().upper() == "CANCELLED":
            continue
        start_prop, end_prop = event.get("DTSTART"), event.get("DTEND")
        if start_prop is None:
            found.notes.append(f"{label} has no start; skipped")
            continue
        try:
            start = read_time(start_prop, zone)
            end = read_time(end_prop, zone) if end_prop else None
        except CalendarError as e:
            found.notes.append(f"{label}: {e}; skipped")
            continue
        rule_text = event.value("RRULE")
        rule = read_rule(rule_text) if rule_text is not None else None
        if not isinstance(start, datetime):  # an all-day event: a closure
            last = (end - _ONE_DAY) if isinstance(end, date) and not isinstance(end, datetime) and end > start \
                else start
            if rule:
                found.notes.append(f"{label} repeats; only its first closure ({start.isoformat()}) was imported")
            found.closures.append((start, last, summary[:200]))
            continue
        if not isinstance(end, datetime):
            duration = event.get("DURATION")
            if duration is None:
                found.notes.append(f"{label} has no end; skipped")
                continue
            try:
                end = start + _duration(duration.value)
            except CalendarError as e:
                found.notes.append(f"{label}: {e}; skipped")
                continue
        if end <= start:
            found.notes.append(f"{label} ends before it starts; skipped")
            continue
        if rule is None:
            for day, interval in _local_pieces(start, end, zone):
                special[day].append(interval)
            continue
        if rule.get("FREQ") != "WEEKLY" or rule.get("INTERVAL", "1") != "1":
            found.notes.append(f"{label} repeats {rule.get('FREQ', '?').lower()}"
                               f"{' every ' + rule['INTERVAL'] if rule.get('INTERVAL', '1') != '1' else ''}, "
                               "not every week; skipped")
            continue
        until = rule.get("UNTIL")
        if until and until[:8] < today.strftime("%Y%m%d"):
            found.notes.append(f"{label} stopped repeating on {until[:4]}-{until[4:6]}-{until[6:8]}; skipped")
            continue
        days = [d for d in rule.get("BYDAY", DAYS[start.astimezone(start.tzinfo).weekday()]).split(",") if d]
        if any(d[-2:] not in DAYS or d[:-2] for d in days):
            found.notes.append(f"{label} repeats on {rule['BYDAY']}, not on plain weekdays; skipped")
            continue
        source_day = start.weekday()  # the weekday of DTSTART in its own zone
        for day_name in days:
            shift = (DAYS.index(day_name[-2:]) - source_day) % 7
            # Place the occurrence on that weekday in the event's zone, then read it in the queue's.
            occ_start = _shift_days(start, shift)
            occ_end = _shift_days(end, shift)
            for local_day, interval in _local_pieces(occ_start, occ_end, zone):
                weekly[local_day.weekday()].append(interval)
    found.weekly = {d: _merge(weekly[d]) for d in sorted(weekly)}
    found.special = {d: _merge(special[d]) for d in sorted(special)}
    found.closures.sort()
    return found


def _shift_days(moment: datetime, days: int) -> datetime:
    """The same wall time `days` later in the moment's own zone (so DST in between does not move it)."""
    zone = moment.tzinfo
    naive = moment.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=zone)


def _duration(value: str) -> timedelta:
    m = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", value.strip())
    if not m or not any(m.groups()):
        raise CalendarError(f"duration {value!r} cannot be read")
    w, d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
