"""Reading the single values of a consortium file: names, numbers, dates, time zones and hours.

`FieldReader` collects every problem with its path instead of stopping at the first, and returns
each value in the canonical form (see the package docstring); `validate.Reader` builds on it to read
the whole document.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import zoneinfo
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from libraries.consortium_file.schema import (
    DATE_RE,
    LANGUAGE_RE,
    MAX_INT,
    SLUG_RE,
    WEEKDAYS,
    Hours,
    Problem,
    T,
    closure_doc,
)
from libraries.hours import format_interval, parse_interval


def describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{str(value).lower()} (quote it if you meant text)"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def shown(value: Any) -> str:
    """A value as a message quotes it: "text" in quotes, anything else described."""
    return f'"{value}"' if isinstance(value, str) else describe(value)


def at_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_timezone(name: str) -> bool:
    known = _known_timezones()
    if known:
        return name in known
    # No time-zone database to list (a bare container): ask zoneinfo for this one name instead.
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class FieldReader:
    """Reads single values, collecting problems; `validate.Reader` adds the document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.zips: list[tuple[str, str]] = []  # (path, ZIP code) over all libraries

    def err(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # -- building blocks ----------------------------------------------------------------------

    def mapping(
        self, value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        """The mapping at path with unknown keys reported; {} when it is not a mapping."""
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping of keys, not {describe(value)}")
            return {}
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"expected one of: {', '.join(allowed)}"
                self.err(at_path(path, str(key)), f"unknown key ({hint})")
        for key in required:
            if value.get(key) is None:
                self.err(at_path(path, key), "is required")
        return {k: v for k, v in value.items() if k in allowed and v is not None}

    def items(self, value: Any, path: str) -> list[Any]:
        """A list (None counts as empty)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(path, f"must be a list, not {describe(value)}")
            return []
        return value

    def text(self, obj: dict[str, Any], key: str, path: str, max_length: int = 200, default: str = "") -> str:
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.err(at_path(path, key), f"must be text, not {describe(value)}")
            return default
        value = value.strip()
        if len(value) > max_length:
            self.err(at_path(path, key), f"is {len(value)} characters long; at most {max_length}")
        return value

    def slug(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self.err(path, f"must be a slug (lowercase letters, digits, hyphens), not {describe(value)}")
            return None
        if not SLUG_RE.match(value) or len(value) > 50:
            self.err(path, f'"{value}" is not a slug: use a-z, 0-9 and "-", start with a letter or digit, '
                           "at most 50 characters")
            return None
        return value

    def choice(self, obj: dict[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        value = obj.get(key, default)
        if value not in choices:
            self.err(at_path(path, key), f"{shown(value)} is not one of: {', '.join(choices)}")
            return default
        return str(value)

    def positive(self, obj: dict[str, Any], key: str, path: str, maximum: int = MAX_INT) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            self.err(at_path(path, key), f"must be a whole number from 1 to {maximum}, not {describe(value)}")
            return None
        return value

    def date(self, value: Any, path: str) -> dt.date | None:
        # YAML turns an unquoted 2026-12-25 into a date; a quoted one stays text. Accept both.
        if isinstance(value, dt.datetime):
            self.err(path, f"must be a date YYYY-MM-DD without a time, not {value.isoformat()}")
            return None
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and DATE_RE.match(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                self.err(path, f'"{value}" is not a date that exists')
                return None
        self.err(path, f"must be a date YYYY-MM-DD, not {describe(value)}")
        return None

    def timezone(self, obj: dict[str, Any], key: str, path: str, default: str | None) -> str:
        value = obj.get(key)
        if value is None:
            return default or ""
        if not isinstance(value, str) or not is_timezone(value.strip()):
            self.err(at_path(path, key), f"{shown(value)} is not an IANA time zone name (like America/New_York)")
            return default or ""
        return value.strip()

    def unique(self, values: list[tuple[str, T]], what: str, key: Callable[[T], Any] = lambda v: v) -> None:
        """Report each value that an earlier entry already has (values: [(path, value)])."""
        first: dict[Any, str] = {}
        for path, value in values:
            k = key(value)
            if k in first:
                self.err(path, f"{what} {value} is already at {first[k]}")
            else:
                first[k] = path

    def languages(self, obj: dict[str, Any], path: str) -> list[str]:
        out: list[tuple[str, str]] = []
        for i, lang in enumerate(self.items(obj.get("languages"), at_path(path, "languages"))):
            p = at_path(at_path(path, "languages"), i)
            if not isinstance(lang, str) or not LANGUAGE_RE.match(lang):
                self.err(p, f"{shown(lang)} is not a language code (like en, es, pt-BR)")
            else:
                out.append((p, lang))
        self.unique([(p, f'"{v}"') for p, v in out], "language")
        return list(dict.fromkeys(v for _, v in out))

    # -- hours -------------------------------------------------------------------------------

    def intervals(self, value: Any, path: str) -> list[str]:
        """A day's intervals, sorted, as canonical "HH:MM-HH:MM" strings. A lone string is a list of one."""
        if value is None:  # `sun:` with nothing after it: closed
            return []
        entries = [(path, value)] if isinstance(value, str) else [
            (at_path(path, i), v) for i, v in enumerate(self.items(value, path))
        ]
        parsed: list[tuple[int, int, str]] = []
        for p, text in entries:
            try:
                start, end = parse_interval(text)
            except ValueError as exc:
                self.err(p, str(exc))
                continue
            parsed.append((start, end, p))
        parsed.sort()
        for (s0, e0, _), (s1, e1, p1) in itertools.pairwise(parsed):
            if s1 < e0:
                self.err(p1, f'"{format_interval(s1, e1)}" overlaps "{format_interval(s0, e0)}"')
        return [format_interval(s, e) for s, e, _ in parsed]

    def hours(self, value: Any, path: str) -> Hours:
        if value is None:
            return {}
        if value == "always":
            return "always"
        if not isinstance(value, dict):
            self.err(path, f'must be "always" or a week like {{mon: ["09:00-17:00"]}}, '
                           f"not {describe(value)}")
            return {}
        week: dict[str, list[str]] = {}
        for day, intervals in value.items():
            p = at_path(path, str(day))
            if day not in WEEKDAYS:
                self.err(p, f"{shown(day)} is not a weekday (use {', '.join(WEEKDAYS)})")
                continue
            found = self.intervals(intervals, p)
            if found:
                week[day] = found
        return {day: week[day] for day in WEEKDAYS if day in week}

    def closures(self, value: Any, path: str) -> list[dict[str, Any]]:
        out: list[tuple[dt.date, dt.date, str]] = []
        for i, raw in enumerate(self.items(value, path)):
            p = at_path(path, i)
            item = self.mapping(raw, p, ("date", "from", "to", "reason"))
            if not item and not isinstance(raw, dict):
                continue
            reason = self.text(item, "reason", p)
            if "date" in item:
                if "from" in item or "to" in item:
                    self.err(p, "give either date, or from and to, not both")
                    continue
                day = self.date(item["date"], at_path(p, "date"))
                if day:
                    out.append((day, day, reason))
            elif "from" in item and "to" in item:
                start, end = self.date(item["from"], at_path(p, "from")), self.date(item["to"], at_path(p, "to"))
                if start and end and end < start:
                    self.err(at_path(p, "to"), f"{end.isoformat()} is before from ({start.isoformat()})")
                elif start and end:
                    out.append((start, end, reason))
            else:
                self.err(p, "needs a date, or from and to")
        return [closure_doc(s, e, r) for s, e, r in sorted(out)]

    def special_hours(self, value: Any, path: str) -> list[dict[str, Any]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for i, raw in enumerate(self.items(value, path)):
            p = at_path(path, i)
            item = self.mapping(raw, p, ("date", "hours", "reason"), required=("date",))
            if isinstance(raw, dict) and "hours" not in raw:  # `hours: []` is fine: closed that day
                self.err(at_path(p, "hours"), 'is required (a list like ["09:00-12:00"], or [] for closed)')
            day = self.date(item["date"], at_path(p, "date")) if "date" in item else None
            intervals = self.intervals(item.get("hours"), at_path(p, "hours"))
            if day:
                entry: dict[str, Any] = {"date": day, "hours": intervals}
                reason = self.text(item, "reason", p)
                if reason:
                    entry["reason"] = reason
                out.append((p, entry))
        self.unique([(at_path(p, "date"), e["date"].isoformat()) for p, e in out], "date")
        return sorted((e for _, e in out), key=lambda e: e["date"])

