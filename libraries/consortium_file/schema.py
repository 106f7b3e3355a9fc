"""The consortium file's format: its keys, patterns and limits, and the problems a file can have."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from consortium.models import E164_RE, SMS_KEYWORD_RE
from libraries.models import Library, OfferMode, StaffProfile

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")  # Django's UnicodeUsernameValidator
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47-ish: en, es, pt-BR
ZIP_RE = re.compile(r"^\d{5}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
E164 = re.compile(E164_RE)  # texting (docs/sms.md): +18505551234
SMS_KEYWORD = re.compile(SMS_KEYWORD_RE)
MAX_SMS_HELP = 320  # two texts' worth: HELP's answer should fit on a phone's screen
MAX_INT = 2_000_000_000  # fits every integer column on SQLite and PostgreSQL
MAX_CAPACITY = 1000  # a PositiveSmallIntegerField; more than this is surely a typo
MAX_RETENTION_DAYS = 36500  # a century: more is surely a typo

TOP_KEYS = ("consortium", "queues", "libraries", "staff")
CONSORTIUM_KEYS = ("slug", "name", "timezone", "allowed_origins", "settings", "colors", "sms_number", "sms_help",
                  "alerts")
COLOR_KEYS = ("accent", "accent_text")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
QUEUE_KEYS = ("slug", "name", "mode", "timezone", "languages", "hours", "closures", "special_hours")
LIBRARY_KEYS = (
    "slug", "name", "kind", "timezone", "city", "zip_codes", "partners", "fallback", "mode",
    "local_timeout", "partner_timeout", "transcript_retention_days", "followup_due_hours", "hours", "closures",
    "special_hours",
    "policy", "policy_reviewed", "website", "key_links", "route", "sms_number", "sms_keyword",
)
STAFF_KEYS = ("username", "name", "email", "library", "role", "queues", "capacity", "languages", "password")
LIBRARY_KINDS = tuple(Library.Kind.values)
MODES = tuple(OfferMode.values)
ROLES = tuple(StaffProfile.Role.values)

Doc = dict[str, Any]
Hours = str | dict[str, list[str]]  # "always" or {weekday: ["HH:MM-HH:MM", ...]}
T = TypeVar("T")


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


def put_optional(doc: Doc, key: str, value: Any) -> None:
    """Optional fields are left out of the canonical form when empty, as export leaves them out."""
    if value not in (None, "", [], {}):
        doc[key] = value


def closure_doc(start: dt.date, end: dt.date, reason: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"date": start} if start == end else {"from": start, "to": end}
    if reason:
        doc["reason"] = reason
    return doc

