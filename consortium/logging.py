"""Log records as JSON lines (or plain text), with chat and consortium ids and no patron personal data.

Two pieces, wired in settings.LOGGING:

- ``PrivacyFilter`` (on the handler) rewrites each record's message, traceback and stack with personal data and
  secrets masked: e-mail addresses, ``token=``/``password=``/``sessionid=``-style values, ``Bearer``/``Basic``
  credentials. It is a net under the real rule, which is that code never puts message bodies, questions, patron
  names or e-mails, tokens or passwords into a log call in the first place.
- ``JsonFormatter`` writes one JSON object a line: ``ts`` (UTC), ``level``, ``logger``, ``msg``, ``pid``, the
  formatted exception as ``exc``, and only the ``extra=`` fields named in ``SAFE_FIELDS`` (ids, slugs, kinds,
  counts, durations). Anything else a library attaches to a record (Django puts the whole ``request`` there,
  with its cookies and headers) is left out. ``PlainFormatter`` writes the same fields as text for a terminal.

To log a routing event: ``logger.info("chat escalated", extra={"chat": chat.pk, "consortium": slug,
"event": "escalated"})``.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# The extra= fields that may appear in a log line: identifiers and measurements, never free text a person typed.
SAFE_FIELDS = (
    "event", "chat", "consortium", "library", "home_library", "found_by", "language", "queue", "step",
    "from_step", "reason", "by", "state", "librarian", "waited_s", "server_process", "task", "task_id", "count",
    "duration_ms", "status_code", "method", "in_flight", "loop_lag", "db_backlog",
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[\w.~+/=-]{6,}", re.I)
_SECRET_VALUE = re.compile(
    r"""\b(token|access_token|password|passwd|secret|secret_key|sessionid|csrftoken|csrfmiddlewaretoken|"""
    r"""api_?key|authorization|cookie)(["']?\s*[=:]\s*["']?)[^\s&;,"'}]+""",
    re.I,
)


# A phone number as texts carry it (E.164): personal data, kept to its last four digits (docs/sms.md).
_PHONE = re.compile(r"(?<![\w+])\+[1-9]\d{2,10}(\d{4})\b")


def redact(text: str) -> str:
    """Masks e-mail addresses, phone numbers, credentials and secret-looking key=value pairs in log text."""
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub(lambda m: f"[phone ...{m.group(1)}]", text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} [redacted]", text)
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)


_traceback_formatter = logging.Formatter()


class PrivacyFilter(logging.Filter):
    """Masks personal data and secrets in the message, the traceback and the stack of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is rather than lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def safe_extras(record: logging.LogRecord) -> dict[str, object]:
    extras: dict[str, object] = {}
    for name in SAFE_FIELDS:
        value = record.__dict__.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            extras[name] = redact(value)
        elif isinstance(value, bool | int | float):
            extras[name] = value
        else:  # ids only: a structure might carry anything
            extras[name] = redact(str(value))
    return extras


class JsonFormatter(logging.Formatter):
    """One JSON object a line; see the module's docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        entry.update(safe_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = safe_extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # key=value after the message, before any traceback
        return head + " " + " ".join(f"{k}={v}" for k, v in extras.items()) + sep + tail
