"""Checking what clients send, one way for socket frames and HTTP bodies alike.

A `Fields` reads the fields of one JSON object (a frame, a request body), collecting every problem
under the field's name, and `check()` raises `Invalid` with all of them: an HTTP client hears of
every field at once (`fields`), a socket is told the first (`detail`, naming the field). A value
over its size limit makes the code `too_large` (sockets answer that code, the patron API 413).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_FRAME_BYTES = 64 * 1024
MAX_BODY = 4000
MAX_CLIENT_ID = 64
MAX_CHAT_ID = 32
MAX_NOTE = 2000
# Deeper than any frame or body of the protocol (they nest two or three levels): past it, refused
# before parsing, since the parser recurses once per level and fails with RecursionError (not a
# ValueError) somewhere under a thousand levels, which a 64 KiB body reaches many times over.
MAX_JSON_DEPTH = 32

# A string, to its closing quote or, unclosed, to the end: every quote starts a match, so one pass is linear.
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.S)  # brackets inside a string nest nothing
_BRACKETS = re.compile(rb"[\[\]{}]")


class Invalid(Exception):
    def __init__(self, detail: str, code: str = "invalid", fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.fields = fields or {}


def json_object(raw: bytes | str, *, what: str, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    """`raw` (a frame, a request body) as a JSON object; Invalid (too_large, or invalid) otherwise.
    `what` names it in the refusal ("the body", "a frame")."""
    data_bytes = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if len(data_bytes) > max_bytes:
        raise Invalid(f"{what} is limited to {max_bytes} bytes", "too_large")
    if nesting_depth(data_bytes) > MAX_JSON_DEPTH:
        raise Invalid(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: a second line of defence
        raise Invalid(f"{what} is not valid JSON") from e
    if not isinstance(data, dict):
        raise Invalid(f"{what} must be a JSON object")
    return data


def nesting_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (for text that is not JSON, an upper bound
    of sorts: it is refused either way). Linear, with no recursion, whatever the input."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


class Fields:
    """The fields of one JSON object, read with their rules; every problem kept under its field's name."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: dict[str, list[str]] = {}
        self.first = ""
        self.too_large = False

    def problem(self, name: str, message: str, *, too_large: bool = False) -> None:
        """Record that `name` `message` (read together: "body must be a string")."""
        self.problems.setdefault(name, []).append(message)
        self.first = self.first or f"{name} {message}"
        self.too_large = self.too_large or too_large

    def text(self, name: str, *, required: bool = False, max_len: int = 200, strip: bool = True) -> str:
        """A string of at most `max_len` characters ("" when absent); `strip=False` keeps its spaces."""
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self.problem(name, "is required")
            return ""
        if not isinstance(value, str):
            self.problem(name, "must be a string")
            return ""
        if "\x00" in value:  # PostgreSQL stores no NUL: refused here, not a 500 at the query
            self.problem(name, "must not contain NUL characters")
            return ""
        if strip:
            value = value.strip()
        if len(value) > max_len:
            self.problem(name, f"must be at most {max_len} characters", too_large=True)
            return ""
        if required and not value.strip():
            self.problem(name, "must not be empty")
        return value

    def email(self, name: str, *, required: bool = False) -> str:
        value = self.text(name, required=required, max_len=254)
        if value:
            try:
                validate_email(value)
            except ValidationError:
                self.problem(name, "must be an email address")
        return value

    def integer(self, name: str, *, default: int = 0, minimum: int = 0, maximum: int | None = None,
                required: bool = False) -> int:
        """A whole number (not a boolean) within the bounds; `default` when absent and not required."""
        value = self.data.get(name)
        if value is None and not required:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
                (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            self.problem(name, f"must be a whole number {bounds}")
            return default
        return value

    def optional_integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number within the bounds, sent as JSON or as a form's text ("3"); None when blank."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.problem(name, f"must be a whole number from {minimum} to {maximum}")
            return None
        return value

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = True) -> str:
        """One of `options`; "" when absent or blank and not required."""
        value = self.data.get(name)
        if not required and (value is None or value == ""):
            return ""
        if value not in options:
            self.problem(name, f"must be {' or '.join(options)}")
            return ""
        return str(value)

    def client_id(self) -> str | None:
        """The client's id for a message (its retries are recognised by it), if it sent one."""
        value = self.data.get("client_id")
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > MAX_CLIENT_ID or "\x00" in value:
            self.problem("client_id", f"must be a string of 1..{MAX_CLIENT_ID} characters")
            return None
        return value

    def chat_id(self) -> str:
        value = self.data.get("chat")
        if not isinstance(value, str) or not value or len(value) > MAX_CHAT_ID or "\x00" in value:
            self.problem("chat", "must be a chat id")
            return ""
        return value

    def object(self, name: str, rule: str, *, required: bool = True, **members: type) -> dict[str, Any]:
        """A JSON object whose members, when present, have these types (`rule` says it to the client)."""
        value = self.data.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict) or not all(
                value.get(key) is None or isinstance(value[key], kind) for key, kind in members.items()):
            self.problem(name, f"must be {rule}")
            return {}
        return value

    def check(self) -> None:
        if self.problems:
            raise Invalid(self.first, "too_large" if self.too_large else "invalid", self.problems)
