"""The consortium file (docs/consortium-file.md): check it, import it, export it.

A coordinator describes a whole consortium in one YAML document: libraries with their hours,
partners and route plans, the shared queues, and the staff. Three steps, kept apart on purpose:

- `validate(data)` reads the parsed document without touching the database and returns *every*
  problem, each with its path in the file (``libraries[3].hours.tue[0]: "9-17" is not HH:MM-HH:MM``),
  so that a coordinator fixes a file in one round instead of one error per run.
- `apply(data, prune=...)` checks again, adds the few checks that need the database (a username
  owned by another consortium), and then writes everything in one transaction, or nothing.
  Rows are matched by slug and username and updated in place; a row whose values do not change
  is not saved, so re-importing the same file changes nothing and says so.
- `export(consortium)` writes the same format back, so import -> export -> import is a no-op.

Both `apply` and `export` go through one canonical form (`normalize`): defaults filled in, weekdays
in order, dates as `datetime.date`, empty optional fields left out. `export(apply(x))` equals
`normalize(x)`, up to the order of libraries and staff, which the database does not keep
(both are sorted: libraries by slug, staff by library then username).

Extensions to the documented format, all optional on a library: `city`, `website`,
`key_links: [{title, url}]`, `policy_reviewed: YYYY-MM-DD` (when the policy was last checked) and
`transcript_retention_days` (overrides the consortium's setting for this library's patrons' chats).
Shared queues may also carry `closures` and `special_hours`, like libraries.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import re
import textwrap
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from consortium.models import DEFAULT_COLORS, SETTING_DEFAULTS, Consortium
from libraries.hours import format_interval, parse_interval
from libraries.models import (
    Closure,
    Library,
    LibraryPartner,
    OfferMode,
    Queue,
    SpecialHours,
    StaffProfile,
    WeeklyInterval,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")  # Django's UnicodeUsernameValidator
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47-ish: en, es, pt-BR
ZIP_RE = re.compile(r"^\d{5}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_INT = 2_000_000_000  # fits every integer column on SQLite and PostgreSQL
MAX_CAPACITY = 1000  # a PositiveSmallIntegerField; more than this is surely a typo
MAX_RETENTION_DAYS = 36500  # a century: more is surely a typo

TOP_KEYS = ("consortium", "queues", "libraries", "staff")
CONSORTIUM_KEYS = ("slug", "name", "timezone", "allowed_origins", "settings", "colors")
COLOR_KEYS = ("accent", "accent_text")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
QUEUE_KEYS = ("slug", "name", "mode", "timezone", "languages", "hours", "closures", "special_hours")
LIBRARY_KEYS = (
    "slug", "name", "kind", "timezone", "city", "zip_codes", "partners", "fallback", "mode",
    "local_timeout", "partner_timeout", "transcript_retention_days", "hours", "closures", "special_hours",
    "policy", "policy_reviewed", "website", "key_links", "route",
)
STAFF_KEYS = ("username", "name", "email", "library", "role", "queues", "capacity", "languages", "password")
LIBRARY_KINDS = tuple(Library.Kind.values)
MODES = tuple(OfferMode.values)
ROLES = tuple(StaffProfile.Role.values)

Doc = dict[str, Any]
Hours = str | dict[str, list[str]]  # "always" or {weekday: ["HH:MM-HH:MM", ...]}
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Problems and reading YAML


@dataclass(frozen=True)
class Problem:
    path: str  # where in the file, e.g. "libraries[3].hours.tue[0]"; "" for the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidConsortiumFile(Exception):
    """The file cannot be imported; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the consortium file")
        self.problems = problems


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last one silently: a second `mon:` line would drop Monday's first hours
    without a word, which is exactly the kind of mistake a hand-edited file makes.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; the base class reports it properly
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, filename: str = "<file>") -> Any:
    """Parse YAML text; a syntax error becomes a ValueError naming the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}, line {mark.line + 1}, column {mark.column + 1}" if mark else filename
        context, opened = exc.context or "", exc.context_mark
        if context and opened and exc.problem_mark and opened.line != exc.problem_mark.line:
            # An unclosed bracket is found at the end of the file; say where it was opened too.
            context += f" (line {opened.line + 1}, column {opened.column + 1})"
        what = ": ".join(p for p in (context, exc.problem) if p)
        raise ValueError(f"{where}: YAML syntax error: {what}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{filename}: YAML syntax error: {exc}") from exc


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Policies are Markdown pages: write them as `|` blocks, readable and diffable, not "...\n...".
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    # Short lists of plain values (hours of a day, ZIP codes, languages) read best on one line.
    flow = all(_is_plain(v) for v in value) and sum(len(str(v)) + 2 for v in value) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.MappingNode:
    # A closure or a link, {date: 2026-12-25, reason: Christmas}, on one line like the spec writes it.
    flow = len(value) <= 3 and all(_is_plain(v) for v in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


def _is_plain(value: Any) -> bool:
    return isinstance(value, int | dt.date) or (isinstance(value, str) and "\n" not in value)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_yaml(doc: Doc) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# --------------------------------------------------------------------------------------------
# Validation and normalization: one pass that checks everything and builds the canonical form


def validate(data: Any) -> list[Problem]:
    """Every problem of a parsed consortium file (empty when it can be imported). No database."""
    return _Reader().document(data)[1]


def normalize(data: Any) -> Doc:
    """The canonical form of a valid file (what `export` writes). Raises InvalidConsortiumFile."""
    doc, problems = _Reader().document(data)
    if problems:
        raise InvalidConsortiumFile(problems)
    return doc


def _describe(value: Any) -> str:
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


def _shown(value: Any) -> str:
    """A value as a message quotes it: "text" in quotes, anything else described."""
    return f'"{value}"' if isinstance(value, str) else _describe(value)


def _at(path: str, key: str | int) -> str:
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


_URL = URLValidator(schemes=["http", "https"])


class _Reader:
    """Walks a parsed file, collecting problems and building the canonical document."""

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
            self.err(path, f"must be a mapping of keys, not {_describe(value)}")
            return {}
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"expected one of: {', '.join(allowed)}"
                self.err(_at(path, str(key)), f"unknown key ({hint})")
        for key in required:
            if value.get(key) is None:
                self.err(_at(path, key), "is required")
        return {k: v for k, v in value.items() if k in allowed and v is not None}

    def items(self, value: Any, path: str) -> list[Any]:
        """A list (None counts as empty)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(path, f"must be a list, not {_describe(value)}")
            return []
        return value

    def text(self, obj: dict[str, Any], key: str, path: str, max_length: int = 200, default: str = "") -> str:
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.err(_at(path, key), f"must be text, not {_describe(value)}")
            return default
        value = value.strip()
        if len(value) > max_length:
            self.err(_at(path, key), f"is {len(value)} characters long; at most {max_length}")
        return value

    def slug(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self.err(path, f"must be a slug (lowercase letters, digits, hyphens), not {_describe(value)}")
            return None
        if not SLUG_RE.match(value) or len(value) > 50:
            self.err(path, f'"{value}" is not a slug: use a-z, 0-9 and "-", start with a letter or digit, '
                           "at most 50 characters")
            return None
        return value

    def choice(self, obj: dict[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        value = obj.get(key, default)
        if value not in choices:
            self.err(_at(path, key), f"{_shown(value)} is not one of: {', '.join(choices)}")
            return default
        return str(value)

    def positive(self, obj: dict[str, Any], key: str, path: str, maximum: int = MAX_INT) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            self.err(_at(path, key), f"must be a whole number from 1 to {maximum}, not {_describe(value)}")
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
        self.err(path, f"must be a date YYYY-MM-DD, not {_describe(value)}")
        return None

    def timezone(self, obj: dict[str, Any], key: str, path: str, default: str | None) -> str:
        value = obj.get(key)
        if value is None:
            return default or ""
        if not isinstance(value, str) or not is_timezone(value.strip()):
            self.err(_at(path, key), f"{_shown(value)} is not an IANA time zone name (like America/New_York)")
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
        for i, lang in enumerate(self.items(obj.get("languages"), _at(path, "languages"))):
            p = _at(_at(path, "languages"), i)
            if not isinstance(lang, str) or not LANGUAGE_RE.match(lang):
                self.err(p, f"{_shown(lang)} is not a language code (like en, es, pt-BR)")
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
            (_at(path, i), v) for i, v in enumerate(self.items(value, path))
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
                           f"not {_describe(value)}")
            return {}
        week: dict[str, list[str]] = {}
        for day, intervals in value.items():
            p = _at(path, str(day))
            if day not in WEEKDAYS:
                self.err(p, f"{_shown(day)} is not a weekday (use {', '.join(WEEKDAYS)})")
                continue
            found = self.intervals(intervals, p)
            if found:
                week[day] = found
        return {day: week[day] for day in WEEKDAYS if day in week}

    def closures(self, value: Any, path: str) -> list[dict[str, Any]]:
        out: list[tuple[dt.date, dt.date, str]] = []
        for i, raw in enumerate(self.items(value, path)):
            p = _at(path, i)
            item = self.mapping(raw, p, ("date", "from", "to", "reason"))
            if not item and not isinstance(raw, dict):
                continue
            reason = self.text(item, "reason", p)
            if "date" in item:
                if "from" in item or "to" in item:
                    self.err(p, "give either date, or from and to, not both")
                    continue
                day = self.date(item["date"], _at(p, "date"))
                if day:
                    out.append((day, day, reason))
            elif "from" in item and "to" in item:
                start, end = self.date(item["from"], _at(p, "from")), self.date(item["to"], _at(p, "to"))
                if start and end and end < start:
                    self.err(_at(p, "to"), f"{end.isoformat()} is before from ({start.isoformat()})")
                elif start and end:
                    out.append((start, end, reason))
            else:
                self.err(p, "needs a date, or from and to")
        return [_closure_doc(s, e, r) for s, e, r in sorted(out)]

    def special_hours(self, value: Any, path: str) -> list[dict[str, Any]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for i, raw in enumerate(self.items(value, path)):
            p = _at(path, i)
            item = self.mapping(raw, p, ("date", "hours", "reason"), required=("date",))
            if isinstance(raw, dict) and "hours" not in raw:  # `hours: []` is fine: closed that day
                self.err(_at(p, "hours"), 'is required (a list like ["09:00-12:00"], or [] for closed)')
            day = self.date(item["date"], _at(p, "date")) if "date" in item else None
            intervals = self.intervals(item.get("hours"), _at(p, "hours"))
            if day:
                entry: dict[str, Any] = {"date": day, "hours": intervals}
                reason = self.text(item, "reason", p)
                if reason:
                    entry["reason"] = reason
                out.append((p, entry))
        self.unique([(_at(p, "date"), e["date"].isoformat()) for p, e in out], "date")
        return sorted((e for _, e in out), key=lambda e: e["date"])

    # -- the document ------------------------------------------------------------------------

    def document(self, data: Any) -> tuple[Doc, list[Problem]]:
        if data is None:
            self.err("", "the file is empty")
            return {}, self.problems
        if not isinstance(data, dict):
            self.err("", "the file must be a mapping with the keys consortium, queues, libraries and staff, "
                         f"not {_describe(data)}")
            return {}, self.problems
        top = self.mapping(data, "", TOP_KEYS, required=("consortium", "queues"))
        consortium = self.consortium(top.get("consortium"), "consortium") if "consortium" in top else {}
        default_tz = consortium.get("timezone") or None
        raw_queues = self.items(top.get("queues"), "queues")
        raw_libraries = self.items(top.get("libraries"), "libraries")
        raw_staff = self.items(top.get("staff"), "staff")
        if "queues" in top and not raw_queues:
            self.err("queues", "a consortium needs at least one shared queue (the last step of every plan)")

        # Names first, so that references may point forward in the file. A name that is itself
        # malformed still counts as declared: its own problem is reported once, not at every use.
        declared_queues = [q.get("slug") for q in raw_queues if isinstance(q, dict)]
        declared_libraries = [lib.get("slug") for lib in raw_libraries if isinstance(lib, dict)]
        names = _Names(
            queues={s for s in declared_queues if isinstance(s, str)},
            libraries={s for s in declared_libraries if isinstance(s, str)},
        )

        queues = [self.queue(q, _at("queues", i), default_tz, names) for i, q in enumerate(raw_queues)]
        libraries = [self.library(lib, _at("libraries", i), default_tz, names)
                     for i, lib in enumerate(raw_libraries)]
        staff = [self.staff(s, _at("staff", i), names) for i, s in enumerate(raw_staff)]

        self.unique([(_at(_at("queues", i), "slug"), f'"{q["slug"]}"') for i, q in enumerate(queues) if q],
                    "shared queue")
        self.unique([(_at(_at("libraries", i), "slug"), f'"{lib["slug"]}"')
                     for i, lib in enumerate(libraries) if lib], "library")
        # Case-blind: "Ana" and "ana" are two Django accounts, but in one file surely one person twice.
        self.unique([(_at(_at("staff", i), "username"), f'"{s["username"]}"')
                     for i, s in enumerate(staff) if s], "username", key=lambda v: v.lower())
        # A ZIP code finds a patron's home library: listed twice, it would not say which one.
        self.unique([(p, f'"{z}"') for p, z in self.zips], "ZIP code")

        order = {q["slug"]: i for i, q in enumerate(queues) if q}
        for s in staff:
            if s:
                s["queues"].sort(key=lambda slug: order.get(slug, len(order)))
        doc = {
            "consortium": consortium,
            "queues": [q for q in queues if q],
            "libraries": sorted((lib for lib in libraries if lib), key=lambda lib: lib["slug"]),
            "staff": sorted((s for s in staff if s), key=lambda s: (s["library"], s["username"])),
        }
        return doc, self.problems

    def consortium(self, value: Any, path: str) -> Doc:
        c = self.mapping(value, path, CONSORTIUM_KEYS, required=("slug", "name", "timezone"))
        slug = self.slug(c["slug"], _at(path, "slug")) if "slug" in c else None
        settings = dict(SETTING_DEFAULTS)
        given = self.mapping(c.get("settings", {}), _at(path, "settings"), SETTING_DEFAULTS)
        for key in given:
            found = self.positive(given, key, _at(path, "settings"))
            if found is not None:
                settings[key] = found
        origins: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(c.get("allowed_origins"), _at(path, "allowed_origins"))):
            p = _at(_at(path, "allowed_origins"), i)
            origin = self.origin(raw, p)
            if origin:
                origins.append((p, origin))
        self.unique([(p, f'"{o}"') for p, o in origins], "origin")
        # An extension: the ask pages' colours, e.g. colors: {accent: "#0b5394", accent_text: "#ffffff"}.
        colors = dict(DEFAULT_COLORS)
        given_colors = self.mapping(c.get("colors", {}), _at(path, "colors"), COLOR_KEYS)
        for key, raw in given_colors.items():
            if isinstance(raw, str) and _COLOR.match(raw.strip()):
                colors[key] = raw.strip().lower()
            else:
                shown = f'"{raw}"' if isinstance(raw, str) else _describe(raw)
                self.err(_at(_at(path, "colors"), key), f"{shown} is not a colour like #1d4ed8")
        return {
            "slug": slug or "",
            "name": self.text(c, "name", path),
            "timezone": self.timezone(c, "timezone", path, None),
            "allowed_origins": list(dict.fromkeys(o for _, o in origins)),
            "settings": settings,
            "colors": colors,
        }

    def origin(self, value: Any, path: str) -> str | None:
        """'https://Example.org:443/' -> 'https://example.org': the form browsers send in Origin."""
        if not isinstance(value, str):
            self.err(path, f"must be an origin like https://www.example.org, not {_describe(value)}")
            return None
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port, scheme = None, ""
        if (scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
                or parts.query or parts.fragment or parts.username or parts.password):
            self.err(path, f'"{value}" is not an origin: write scheme://host or scheme://host:port '
                           "(http or https, no path)")
            return None
        host = parts.hostname
        if ":" in host:  # IPv6
            host = f"[{host}]"
        default_port = 443 if scheme == "https" else 80
        return f"{scheme}://{host}" + (f":{port}" if port and port != default_port else "")

    def queue(self, value: Any, path: str, default_tz: str | None, names: _Names) -> Doc:
        q = self.mapping(value, path, QUEUE_KEYS, required=("slug", "name"))
        slug = self.slug(q["slug"], _at(path, "slug")) if "slug" in q else None
        if slug and slug in names.libraries:
            self.err(_at(path, "slug"), f'"{slug}" is also a library\'s slug (its local queue); '
                                        "shared queues need slugs of their own")
        doc = {
            "slug": slug,
            "name": self.text(q, "name", path),
            "mode": self.choice(q, "mode", path, MODES, OfferMode.BROADCAST.value),
            "timezone": self.timezone(q, "timezone", path, default_tz),
            "languages": self.languages(q, path),
            "hours": self.hours(q.get("hours"), _at(path, "hours")),
        }
        _put_optional(doc, "closures", self.closures(q.get("closures"), _at(path, "closures")))
        special = self.special_hours(q.get("special_hours"), _at(path, "special_hours"))
        _put_optional(doc, "special_hours", special)
        return doc if slug else {}

    def library(self, value: Any, path: str, default_tz: str | None, names: _Names) -> Doc:
        lib = self.mapping(value, path, LIBRARY_KEYS, required=("slug", "name"))
        slug = self.slug(lib["slug"], _at(path, "slug")) if "slug" in lib else None

        zips: list[str] = []
        for i, z in enumerate(self.items(lib.get("zip_codes"), _at(path, "zip_codes"))):
            p = _at(_at(path, "zip_codes"), i)
            if isinstance(z, str) and ZIP_RE.match(z.strip()):
                zips.append(z.strip())
                self.zips.append((p, z.strip()))
            elif isinstance(z, int) and not isinstance(z, bool):
                # Unquoted, YAML reads 33602 as a number and 02134 as an octal one: insist on quotes.
                self.err(p, f'write ZIP codes in quotes ("{z}"), or YAML may read them as numbers')
            else:
                self.err(p, f"{_shown(z)} is not a five-digit ZIP code")

        partners: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(lib.get("partners"), _at(path, "partners"))):
            p = _at(_at(path, "partners"), i)
            partner = self.slug(raw, p)
            if partner is None:
                continue
            if partner == slug:
                self.err(p, "a library cannot be its own partner")
            elif partner not in names.libraries:
                self.err(p, f'"{partner}" is not a library of this file')
            else:
                partners.append((p, partner))
        self.unique([(p, f'"{v}"') for p, v in partners], "partner")

        fallback = None
        if "fallback" in lib:
            fallback = self.slug(lib["fallback"], _at(path, "fallback"))
            if fallback and fallback not in names.queues:
                hint = " (a library; fallback names a shared queue)" if fallback in names.libraries else ""
                self.err(_at(path, "fallback"), f'"{fallback}" is not a shared queue of this file{hint}')

        doc: Doc = {
            "slug": slug,
            "name": self.text(lib, "name", path),
            "kind": self.choice(lib, "kind", path, LIBRARY_KINDS, Library.Kind.PUBLIC.value),
            "timezone": self.timezone(lib, "timezone", path, default_tz),
        }
        _put_optional(doc, "city", self.text(lib, "city", path, max_length=100))
        doc["zip_codes"] = list(dict.fromkeys(zips))
        doc["partners"] = list(dict.fromkeys(v for _, v in partners))
        _put_optional(doc, "fallback", fallback)
        doc["mode"] = self.choice(lib, "mode", path, MODES, OfferMode.BROADCAST.value)
        _put_optional(doc, "local_timeout", self.positive(lib, "local_timeout", path))
        _put_optional(doc, "partner_timeout", self.positive(lib, "partner_timeout", path))
        _put_optional(doc, "transcript_retention_days",
                      self.positive(lib, "transcript_retention_days", path, maximum=MAX_RETENTION_DAYS))
        doc["hours"] = self.hours(lib.get("hours"), _at(path, "hours"))
        _put_optional(doc, "closures", self.closures(lib.get("closures"), _at(path, "closures")))
        special = self.special_hours(lib.get("special_hours"), _at(path, "special_hours"))
        _put_optional(doc, "special_hours", special)
        policy = lib.get("policy")
        if policy is not None and not isinstance(policy, str):
            self.err(_at(path, "policy"), f"must be text (Markdown), not {_describe(policy)}")
        elif policy and policy.strip():
            doc["policy"] = policy  # kept byte for byte: it is a page of Markdown
        if "policy_reviewed" in lib:
            reviewed = self.date(lib["policy_reviewed"], _at(path, "policy_reviewed"))
            _put_optional(doc, "policy_reviewed", reviewed)
        _put_optional(doc, "website", self.url(lib.get("website"), _at(path, "website")))
        _put_optional(doc, "key_links", self.key_links(lib.get("key_links"), _at(path, "key_links")))
        if "route" in lib:
            doc["route"] = self.route(lib["route"], _at(path, "route"), names)
        return doc if slug else {}

    def url(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.err(path, f"must be a web address, not {_describe(value)}")
            return ""
        try:
            _URL(value.strip())
        except ValidationError:
            self.err(path, f'"{value}" is not an http(s) web address')
            return ""
        if len(value.strip()) > 200:
            self.err(path, "is longer than 200 characters")
        return value.strip()

    def key_links(self, value: Any, path: str) -> list[dict[str, str]]:
        out = []
        for i, raw in enumerate(self.items(value, path)):
            p = _at(path, i)
            item = self.mapping(raw, p, ("title", "url"), required=("title", "url"))
            title, url = self.text(item, "title", p), self.url(item.get("url"), _at(p, "url"))
            if title and url:
                out.append({"title": title, "url": url})
        return out

    def route(self, value: Any, path: str, names: _Names) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        steps = self.items(value, path)
        if isinstance(value, list) and not steps:
            self.err(path, "has no steps (leave route out to use the default plan)")
        out: list[dict[str, Any]] = []
        step_names: list[tuple[str, str]] = []
        for i, raw in enumerate(steps):
            p = _at(path, i)
            step = self.mapping(raw, p, ("name", "queues", "wait"), required=("name", "queues"))
            name = self.text(step, "name", p, max_length=50)
            if name:
                step_names.append((_at(p, "name"), f'"{name}"'))
            queues: list[str] = []
            raw_queues = step.get("queues")
            if isinstance(raw_queues, list) and not raw_queues:
                self.err(_at(p, "queues"), "lists no queue")
            for j, q in enumerate(self.items(raw_queues, _at(p, "queues"))):
                qp = _at(_at(p, "queues"), j)
                slug = self.slug(q, qp)
                if slug and slug not in names.queues and slug not in names.libraries:
                    self.err(qp, f'"{slug}" is neither a library nor a shared queue of this file')
                elif slug:
                    queues.append(slug)
            wait = self.positive(step, "wait", p)
            last = i == len(steps) - 1
            if last and wait is not None:
                self.err(_at(p, "wait"), "the last step waits as long as it takes: leave wait out")
            elif not last and "wait" not in step:  # (a wait that is there but wrong is reported already)
                self.err(_at(p, "wait"), "is required on every step but the last (seconds before moving on)")
            entry: dict[str, Any] = {"name": name, "queues": list(dict.fromkeys(queues))}
            if not last and wait is not None:  # the last step has no wait, and says so by leaving it out
                entry["wait"] = wait
            out.append(entry)
        self.unique(step_names, "step name")
        return out

    def staff(self, value: Any, path: str, names: _Names) -> Doc:
        s = self.mapping(value, path, STAFF_KEYS, required=("username", "library"))
        username = None
        if "username" in s:
            raw = s["username"]
            if not isinstance(raw, str) or not USERNAME_RE.match(raw) or len(raw) > 150:
                self.err(_at(path, "username"), f"{_shown(raw)} is not a username (letters, digits and "
                                                "@.+-_, at most 150 characters)")
            else:
                username = raw
        library = self.slug(s["library"], _at(path, "library")) if "library" in s else None
        if library and library not in names.libraries:
            self.err(_at(path, "library"), f'"{library}" is not a library of this file')
        email = self.text(s, "email", path, max_length=254)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                self.err(_at(path, "email"), f'"{email}" is not an email address')
        queues: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(s.get("queues"), _at(path, "queues"))):
            p = _at(_at(path, "queues"), i)
            slug = self.slug(raw, p)
            if slug in names.libraries:
                self.err(p, f'"{slug}" is a library: staff answer their own library\'s queue anyway; '
                            "list shared queues here")
            elif slug and slug not in names.queues:
                self.err(p, f'"{slug}" is not a shared queue of this file')
            elif slug:
                queues.append((p, slug))
        self.unique([(p, f'"{v}"') for p, v in queues], "queue")
        password = s.get("password")
        if password is not None and (not isinstance(password, str) or not password):
            self.err(_at(path, "password"), f"must be text, not {_describe(password)}")
            password = None
        # Django keeps first and last name; the file has one name. It goes whole into first_name,
        # which get_full_name() gives back unchanged: no guessing where a name splits.
        name = " ".join(self.text(s, "name", path, max_length=150).split())
        doc: Doc = {"username": username}
        _put_optional(doc, "name", name)
        _put_optional(doc, "email", email)
        doc["library"] = library
        doc["role"] = self.choice(s, "role", path, ROLES, StaffProfile.Role.LIBRARIAN.value)
        doc["queues"] = list(dict.fromkeys(v for _, v in queues))
        _put_optional(doc, "capacity", self.positive(s, "capacity", path, maximum=MAX_CAPACITY))
        doc["languages"] = self.languages(s, path)
        if password:
            doc["password"] = password
        return doc if username and library else {}


@dataclass
class _Names:
    queues: set[str]
    libraries: set[str]


def _put_optional(doc: Doc, key: str, value: Any) -> None:
    """Optional fields are left out of the canonical form when empty, as export leaves them out."""
    if value not in (None, "", [], {}):
        doc[key] = value


def _closure_doc(start: dt.date, end: dt.date, reason: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"date": start} if start == end else {"from": start, "to": end}
    if reason:
        doc["reason"] = reason
    return doc


# --------------------------------------------------------------------------------------------
# Import


@dataclass
class Tally:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # active in the database, not in the file
    deactivated: list[str] = field(default_factory=list)  # missing and pruned

    def count(self, name: str, created: bool, changed: bool) -> None:
        (self.created if created else self.updated if changed else self.unchanged).append(name)


@dataclass
class ImportReport:
    consortium: str
    consortium_status: str = "unchanged"  # created | updated | unchanged
    queues: Tally = field(default_factory=Tally)
    libraries: Tally = field(default_factory=Tally)
    staff: Tally = field(default_factory=Tally)
    # username -> "/accounts/reset/<uidb64>/<token>/" for accounts that have no password yet
    set_password_paths: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    pruned: bool = False

    @property
    def changed(self) -> bool:
        return self.consortium_status != "unchanged" or any(
            t.created or t.updated or t.deactivated for t in (self.queues, self.libraries, self.staff)
        )

    def lines(self, base_url: str = "http://127.0.0.1:8000") -> list[str]:
        """The human report, as import_consortium prints it."""
        head = "Dry run, nothing written. " if self.dry_run else ""
        out = [f"{head}Consortium {self.consortium}: {self.consortium_status}."]
        kinds = (("shared queues", self.queues), ("libraries", self.libraries), ("staff", self.staff))
        for label, tally in kinds:
            out.append(f"  {label}: {len(tally.created)} created, {len(tally.updated)} updated, "
                       f"{len(tally.unchanged)} unchanged")
            for verb, names in (("created", tally.created), ("updated", tally.updated)):
                out.extend(_listing(f"{verb}:", names))
            if tally.deactivated:
                out.extend(_listing("deactivated (not in the file; --prune):", tally.deactivated))
            elif tally.missing:
                out.extend(_listing("not in the file, left as they are (--prune deactivates them):",
                                    tally.missing))
        if not self.changed:
            out.append("Nothing changed.")
        out.extend(self.link_lines(base_url))
        return out

    def link_lines(self, base_url: str = "http://127.0.0.1:8000") -> list[str]:
        if not self.set_password_paths:
            return []
        days = _reset_days()
        out = [f"Set-password links (each works once, for {days} day{'s' if days != 1 else ''}):"]
        base = base_url.rstrip("/")
        out.extend(f"  {username}: {base}{p}" for username, p in sorted(self.set_password_paths.items()))
        return out


def _listing(label: str, names: list[str]) -> list[str]:
    if not names:
        return []
    return textwrap.wrap(f"{label} {', '.join(sorted(names))}", width=100,
                         initial_indent="    ", subsequent_indent="      ", break_on_hyphens=False)


def _reset_days() -> int:
    from django.conf import settings

    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 86400)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that it rolls back."""


def apply(data: Any, *, prune: bool, dry_run: bool = False) -> ImportReport:
    """Import a parsed consortium file: all of it in one transaction, or nothing.

    Raises InvalidConsortiumFile, with every problem, when the file or the database says no.
    """
    doc = normalize(data)
    report = ImportReport(consortium=doc["consortium"]["slug"], dry_run=dry_run, pruned=prune)
    try:
        with transaction.atomic():
            problems = _database_problems(doc, data)
            if problems:
                raise InvalidConsortiumFile(problems)
            _Importer(doc, report, prune=prune).run()
            if dry_run:
                raise _DryRun
    except _DryRun:
        # The new accounts rolled back with everything else: a link to them would lead nowhere.
        report.set_password_paths = {}
    return report


def _database_problems(doc: Doc, data: dict[str, Any]) -> list[Problem]:
    """What only the database can tell: names taken by rows outside the file."""
    problems: list[Problem] = []
    slug = doc["consortium"]["slug"]
    # Paths point into the file as written (the canonical form has sorted its lists).
    file_index = {s["username"]: i for i, s in enumerate(data.get("staff") or [])}
    library_index = {lib["slug"]: i for i, lib in enumerate(data.get("libraries") or [])}
    users = User.objects.filter(username__in=list(file_index)).select_related("staff__library__consortium")
    for user in users:
        path = f"staff[{file_index[user.username]}].username"
        profile = getattr(user, "staff", None)
        if profile is None:
            problems.append(Problem(path, f'"{user.username}" is an existing account that is not staff '
                                          "of any library; choose another username"))
        elif profile.library.consortium.slug != slug:
            problems.append(Problem(path, f'"{user.username}" belongs to the staff of another consortium '
                                          f'("{profile.library.consortium.slug}")'))
    queues = {q.slug: q for q in Queue.objects.filter(consortium__slug=slug).select_related("library")}
    for i, q in enumerate(doc["queues"]):
        existing = queues.get(q["slug"])
        if existing and existing.kind != Queue.Kind.SHARED:
            problems.append(Problem(f"queues[{i}].slug", f'"{q["slug"]}" is the local queue of a library '
                                                          "already in this consortium; pick another slug"))
    for lib in doc["libraries"]:
        existing = queues.get(lib["slug"])
        foreign = existing and (existing.kind != Queue.Kind.LOCAL
                                or (existing.library and existing.library.slug != lib["slug"]))
        if foreign:
            path = f"libraries[{library_index[lib['slug']]}].slug"
            problems.append(Problem(path, f'"{lib["slug"]}" is already the slug of another queue of this '
                                          "consortium, not in the file; pick another slug"))
    return problems


def _save(obj: models.Model, values: dict[str, Any]) -> tuple[bool, bool]:
    """Set values on obj and save only what differs. Returns (created, changed)."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if obj.pk is None:
        obj.save()
        return True, True
    if changed:
        obj.save(update_fields=changed)
    return False, bool(changed)


class _Importer:
    def __init__(self, doc: Doc, report: ImportReport, *, prune: bool) -> None:
        self.doc = doc
        self.report = report
        self.prune = prune
        # Demo and test files give many accounts the same clear-text password; hashing each one
        # costs a deliberate ~0.3 s. One hash per distinct password keeps `dev.py demo` quick.
        # Sharing the salt among accounts the file already gives one password reveals nothing new.
        self._hashes: dict[str, str] = {}

    def run(self) -> None:
        self.consortium = self.save_consortium(self.doc["consortium"])
        existing = {q.slug: q for q in self.consortium.queues.all()}
        self.shared = {
            q["slug"]: self.save_shared_queue(q, position, existing.get(q["slug"]))
            for position, q in enumerate(self.doc["queues"])
        }
        libraries = {lib.slug: lib for lib in self.consortium.libraries.all()}
        self.libraries: dict[str, Library] = {}
        changed: dict[str, bool] = {}
        created: set[str] = set()
        for lib in self.doc["libraries"]:
            row, is_new, changed[lib["slug"]] = self.save_library(lib, libraries.get(lib["slug"]))
            self.libraries[lib["slug"]] = row
            if is_new:
                created.add(lib["slug"])
        # Partners second: a partner may come later in the file than the library naming it.
        for lib in self.doc["libraries"]:
            changed[lib["slug"]] |= self.save_partners(self.libraries[lib["slug"]], lib["partners"])
            self.report.libraries.count(lib["slug"], lib["slug"] in created, changed[lib["slug"]])
        self.save_all_staff()
        self.missing()

    # -- consortium and queues ---------------------------------------------------------------

    def save_consortium(self, c: Doc) -> Consortium:
        row = Consortium.objects.filter(slug=c["slug"]).first() or Consortium(slug=c["slug"])
        values = {"name": c["name"], "timezone": c["timezone"], "allowed_origins": c["allowed_origins"],
                  "accent_color": c["colors"]["accent"], "accent_text_color": c["colors"]["accent_text"],
                  "is_active": True, **c["settings"]}
        created, changed = _save(row, values)
        self.report.consortium_status = "created" if created else "updated" if changed else "unchanged"
        return row

    def save_shared_queue(self, q: Doc, position: int, row: Queue | None) -> Queue:
        row = row or Queue(consortium=self.consortium, slug=q["slug"], kind=Queue.Kind.SHARED)
        values = {"name": q["name"], "mode": q["mode"], "timezone": q["timezone"],
                  "languages": q["languages"], "position": position, "always_open": q["hours"] == "always",
                  "is_active": True}
        created, changed = _save(row, values)
        changed |= self.save_hours(row, q)
        self.report.queues.count(q["slug"], created, changed)
        return row

    def save_hours(self, queue: Queue, doc: Doc) -> bool:
        """Make the queue's weekly hours, closures and special hours those of doc. Returns changed."""
        changed = False
        week: dict[str, list[str]] = {} if doc["hours"] == "always" else doc["hours"]
        want = {(WEEKDAYS.index(day), *parse_interval(text)) for day, texts in week.items() for text in texts}
        have = {(w.weekday, w.start_minute, w.end_minute): w.pk for w in queue.weekly.all()}
        if set(have) != want:
            WeeklyInterval.objects.filter(pk__in=[pk for key, pk in have.items() if key not in want]).delete()
            WeeklyInterval.objects.bulk_create(
                WeeklyInterval(queue=queue, weekday=d, start_minute=s, end_minute=e)
                for d, s, e in sorted(want - set(have))
            )
            changed = True

        want_closures = [(c.get("date") or c["from"], c.get("date") or c["to"], c.get("reason", ""))
                         for c in doc.get("closures", [])]
        have_closures: dict[tuple[dt.date, dt.date, str], list[int]] = {}
        for c in queue.closures.all():
            have_closures.setdefault((c.start_date, c.end_date, c.reason), []).append(c.pk)
        if sorted(k for k, pks in have_closures.items() for _ in pks) != sorted(want_closures):
            queue.closures.all().delete()
            Closure.objects.bulk_create(Closure(queue=queue, start_date=s, end_date=e, reason=r)
                                        for s, e, r in want_closures)
            changed = True

        want_special = {s["date"]: s for s in doc.get("special_hours", [])}
        for row in queue.special_hours.all():
            wanted = want_special.pop(row.date, None)
            if wanted is None:
                row.delete()
                changed = True
            else:
                values = {"intervals": _minutes(wanted["hours"]), "reason": wanted.get("reason", "")}
                _, row_changed = _save(row, values)
                changed |= row_changed
        for day, s in want_special.items():
            SpecialHours.objects.create(queue=queue, date=day, intervals=_minutes(s["hours"]),
                                        reason=s.get("reason", ""))
            changed = True
        return changed

    # -- libraries ---------------------------------------------------------------------------

    def save_library(self, lib: Doc, row: Library | None) -> tuple[Library, bool, bool]:
        row = row or Library(consortium=self.consortium, slug=lib["slug"])
        fallback = self.shared[lib["fallback"]] if lib.get("fallback") else None  # None: the first one
        values = {
            "name": lib["name"], "kind": lib["kind"], "timezone": lib["timezone"],
            "city": lib.get("city", ""),
            "zip_codes": lib["zip_codes"], "fallback_id": fallback.pk if fallback else None,
            "local_timeout": lib.get("local_timeout"), "partner_timeout": lib.get("partner_timeout"),
            "transcript_retention_days": lib.get("transcript_retention_days"),
            "route": _route_json(lib.get("route")), "policy": lib.get("policy", ""),
            "policy_reviewed_on": lib.get("policy_reviewed"), "website": lib.get("website", ""),
            "key_links": lib.get("key_links", []), "is_active": True,
        }
        created, changed = _save(row, values)
        queue = None if created else Queue.objects.filter(library=row).first()
        queue = queue or Queue(consortium=self.consortium, kind=Queue.Kind.LOCAL, library=row)
        q_values = {"slug": lib["slug"], "name": lib["name"], "mode": lib["mode"],
                    "timezone": lib["timezone"], "always_open": lib["hours"] == "always", "is_active": True}
        _, q_changed = _save(queue, q_values)
        changed |= q_changed
        changed |= self.save_hours(queue, lib)
        return row, created, changed

    def save_partners(self, library: Library, partners: list[str]) -> bool:
        """Order the partner rows as the file does, updating positions in place."""
        want = {self.libraries[slug].pk: position for position, slug in enumerate(partners)}
        changed = False
        for link in library.partner_links.all():
            if link.partner_id not in want:
                link.delete()
                changed = True
            else:
                changed |= _save(link, {"position": want.pop(link.partner_id)})[1]
        for partner_id, position in want.items():
            LibraryPartner.objects.create(library=library, partner_id=partner_id, position=position)
            changed = True
        return changed

    # -- staff -------------------------------------------------------------------------------

    def save_all_staff(self) -> None:
        usernames = [s["username"] for s in self.doc["staff"]]
        users = {u.username: u for u in User.objects.filter(username__in=usernames).select_related("staff")}
        for s in self.doc["staff"]:
            self.save_staff(s, users.get(s["username"]))

    def save_staff(self, s: Doc, user: User | None) -> None:
        user = user or User(username=s["username"])
        role = s["role"]
        # Coordinators and library admins work in /admin/, which needs is_staff; what they may see
        # there is up to the admin's own permissions. A superuser stays staff whatever the role.
        values: dict[str, Any] = {
            "first_name": s.get("name", ""), "last_name": "", "email": s.get("email", ""), "is_active": True,
            "is_staff": user.is_superuser or role != StaffProfile.Role.LIBRARIAN,
        }
        if user.get_full_name() == s.get("name", ""):
            # Already "Ana" + "Ruiz" (say, typed in the admin): the same name; leave it as it is.
            del values["first_name"], values["last_name"]
        password_changed = False
        if user.pk is None:
            self.set_password(user, s.get("password"))
        elif s.get("password") and not self.password_matches(user, s["password"]):
            self.set_password(user, s["password"])
            password_changed = True
        created, changed = _save(user, values)
        if password_changed:  # _save only writes the fields it compared
            user.save(update_fields=["password"])
        changed |= password_changed

        profile: StaffProfile | None = None if created else StaffProfile.objects.filter(user=user).first()
        profile = profile or StaffProfile(user=user)
        p_values = {"library_id": self.libraries[s["library"]].pk, "role": role,
                    "capacity": s.get("capacity"), "languages": s["languages"], "is_active": True}
        _, p_changed = _save(profile, p_values)
        want = {self.shared[slug].pk for slug in s["queues"]}
        have = set(profile.queues.values_list("pk", flat=True))
        if want != have:
            profile.queues.set(want)
            p_changed = True
        self.report.staff.count(s["username"], created, changed or p_changed)
        if not user.has_usable_password() and not self.report.dry_run:
            self.report.set_password_paths[user.username] = _set_password_path(user)

    def set_password(self, user: User, raw: str | None) -> None:
        if not raw:
            user.set_unusable_password()
            return
        if raw not in self._hashes:
            user.set_password(raw)
            self._hashes[raw] = user.password
        user.password = self._hashes[raw]

    def password_matches(self, user: User, raw: str) -> bool:
        if self._hashes.get(raw) == user.password:
            return True
        if user.check_password(raw):
            self._hashes.setdefault(raw, user.password)
            return True
        return False

    # -- what the file leaves out -----------------------------------------------------------

    def missing(self) -> None:
        libraries = self.consortium.libraries.filter(is_active=True).exclude(slug__in=list(self.libraries))
        queues = self.consortium.queues.filter(kind=Queue.Kind.SHARED, is_active=True).exclude(
            slug__in=list(self.shared)
        )
        staff = StaffProfile.objects.filter(library__consortium=self.consortium, is_active=True).exclude(
            user__username__in=[s["username"] for s in self.doc["staff"]]
        ).select_related("user")
        self.report.libraries.missing = sorted(lib.slug for lib in libraries)
        self.report.queues.missing = sorted(q.slug for q in queues)
        self.report.staff.missing = sorted(p.user.username for p in staff)
        if not self.prune:
            return
        # Deactivate, never delete: chats, statistics and transcripts keep pointing at these rows.
        for profile in staff:
            profile.is_active = False
            profile.save(update_fields=["is_active"])
            profile.user.is_active = False
            profile.user.save(update_fields=["is_active"])
        Queue.objects.filter(library__in=libraries).update(is_active=False)
        self.report.libraries.deactivated = list(self.report.libraries.missing)
        self.report.queues.deactivated = list(self.report.queues.missing)
        self.report.staff.deactivated = list(self.report.staff.missing)
        libraries.update(is_active=False)
        queues.update(is_active=False)


def _route_json(route: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """As Library.route keeps it: every step with its wait, None on the last (see routing.plan)."""
    if route is None:
        return None
    return [{"name": s["name"], "queues": list(s["queues"]), "wait": s.get("wait")} for s in route]


def _route_step(step: dict[str, Any]) -> dict[str, Any]:
    out = {"name": step["name"], "queues": list(step.get("queues") or [])}
    if step.get("wait") is not None:
        out["wait"] = step["wait"]
    return out


def _minutes(intervals: list[str]) -> list[list[int]]:
    return [list(parse_interval(text)) for text in intervals]


def _set_password_path(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


# --------------------------------------------------------------------------------------------
# Export


def export(consortium: Consortium) -> Doc:
    """The consortium's active libraries, shared queues and staff, in the canonical file form."""
    settings = {key: consortium.setting(key) for key in SETTING_DEFAULTS}
    shared = list(consortium.queues.filter(kind=Queue.Kind.SHARED, is_active=True)
                  .order_by("position", "slug").prefetch_related("weekly", "closures", "special_hours"))
    positions = {q.pk: i for i, q in enumerate(shared)}
    libraries = list(consortium.libraries.filter(is_active=True).order_by("slug")
                     .select_related("fallback")
                     .prefetch_related("partner_links__partner"))
    local = {q.library_id: q for q in Queue.objects.filter(library__in=libraries)
             .prefetch_related("weekly", "closures", "special_hours")}
    active_slugs = {lib.slug for lib in libraries}

    queues_out = []
    for q in shared:
        doc: Doc = {"slug": q.slug, "name": q.name, "mode": q.mode, "timezone": q.timezone,
                    "languages": list(q.languages or [])}
        doc.update(_export_hours(q))
        queues_out.append(doc)

    libraries_out = []
    for lib in libraries:
        queue = local.get(lib.pk)
        doc = {"slug": lib.slug, "name": lib.name, "kind": lib.kind, "timezone": lib.timezone}
        _put_optional(doc, "city", lib.city)
        doc["zip_codes"] = list(lib.zip_codes or [])
        links = sorted(lib.partner_links.all(), key=lambda k: k.position)
        doc["partners"] = [link.partner.slug for link in links if link.partner.slug in active_slugs]
        if lib.fallback and lib.fallback.is_active:
            doc["fallback"] = lib.fallback.slug
        doc["mode"] = queue.mode if queue else OfferMode.BROADCAST.value
        _put_optional(doc, "local_timeout", lib.local_timeout)
        _put_optional(doc, "partner_timeout", lib.partner_timeout)
        _put_optional(doc, "transcript_retention_days", lib.transcript_retention_days)
        doc.update(_export_hours(queue) if queue else {"hours": {}})
        _put_optional(doc, "policy", lib.policy)
        _put_optional(doc, "policy_reviewed", lib.policy_reviewed_on)
        _put_optional(doc, "website", lib.website)
        _put_optional(doc, "key_links", list(lib.key_links or []))
        if lib.route is not None:
            doc["route"] = [_route_step(s) for s in lib.route]
        libraries_out.append(doc)

    staff = (StaffProfile.objects.filter(library__in=libraries, is_active=True, user__is_active=True)
             .select_related("user", "library").prefetch_related("queues"))
    staff_out = []
    for p in sorted(staff, key=lambda p: (p.library.slug, p.user.username)):
        doc = {"username": p.user.username}
        _put_optional(doc, "name", p.user.get_full_name())
        _put_optional(doc, "email", p.user.email)
        doc["library"] = p.library.slug
        doc["role"] = p.role
        served = sorted((q for q in p.queues.all() if q.pk in positions), key=lambda q: positions[q.pk])
        doc["queues"] = [q.slug for q in served]
        _put_optional(doc, "capacity", p.capacity)
        doc["languages"] = list(p.languages or [])
        staff_out.append(doc)

    return {
        "consortium": {"slug": consortium.slug, "name": consortium.name, "timezone": consortium.timezone,
                       "allowed_origins": list(consortium.allowed_origins or []), "settings": settings,
                       "colors": {"accent": consortium.accent_color.lower(),
                                  "accent_text": consortium.accent_text_color.lower()}},
        "queues": queues_out,
        "libraries": libraries_out,
        "staff": staff_out,
    }


def _export_hours(queue: Queue) -> Doc:
    out: Doc = {}
    if queue.always_open:
        out["hours"] = "always"
    else:
        week: dict[str, list[str]] = {}
        for w in sorted(queue.weekly.all(), key=lambda w: (w.weekday, w.start_minute)):
            week.setdefault(WEEKDAYS[w.weekday], []).append(format_interval(w.start_minute, w.end_minute))
        out["hours"] = week
    closures = sorted(queue.closures.all(), key=lambda c: (c.start_date, c.end_date, c.reason))
    _put_optional(out, "closures", [_closure_doc(c.start_date, c.end_date, c.reason) for c in closures])
    special = []
    for s in sorted(queue.special_hours.all(), key=lambda s: s.date):
        entry: Doc = {"date": s.date, "hours": [format_interval(a, b) for a, b in s.intervals]}
        _put_optional(entry, "reason", s.reason)
        special.append(entry)
    _put_optional(out, "special_hours", special)
    return out
