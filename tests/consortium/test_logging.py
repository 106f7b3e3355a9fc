"""Structured logs: JSON lines that parse, ids where there are some, and no patron data, bodies or tokens."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from consortium.logging import JsonFormatter, PlainFormatter, PrivacyFilter, redact
from routing import events
from routing.services import chats, offers, presence, sweeps
from tests.consortium.test_settings_env import STRONG_KEY
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff

QUESTION = "Where is my overdue book about lupus? secret-question-8841"
NAME = "Maria Perez-Secretname"
ROOT = Path(__file__).resolve().parents[2]
EMAIL = "maria.patron@example.net"


def record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("routing.decisions", logging.INFO, __file__, 1, msg, args,
                            (type(exc), exc, exc.__traceback__) if exc else None)
    rec.__dict__.update(extra)
    return rec


def emitted(rec: logging.LogRecord, formatter: logging.Formatter | None = None) -> str:
    PrivacyFilter().filter(rec)
    return (formatter or JsonFormatter()).format(rec)


def test_a_json_line_parses_and_carries_the_ids() -> None:
    line = emitted(record("chat %s", "escalated", chat="abc123", consortium="sunshine", event="escalated",
                          from_step="local", waited_s=12))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["msg"] == "chat escalated" and entry["level"] == "INFO" and entry["logger"] == "routing.decisions"
    assert entry["ts"].endswith("Z") and isinstance(entry["pid"], int)
    assert {k: entry[k] for k in ("chat", "consortium", "event", "from_step", "waited_s")} == {
        "chat": "abc123", "consortium": "sunshine", "event": "escalated", "from_step": "local", "waited_s": 12}


def test_fields_other_than_ids_and_measures_never_reach_the_line() -> None:
    class Request:  # what Django's loggers attach: headers, cookies, the body
        def __repr__(self) -> str:
            return f"<Request Cookie: sessionid=s3cr3t body={QUESTION}>"

    line = emitted(record("request failed", chat="c1", request=Request(), patron_name=NAME, patron_email=EMAIL,
                          question=QUESTION, body=QUESTION, token="tok-123456789"))
    entry = json.loads(line)
    assert entry["chat"] == "c1"
    for forbidden in ("request", "patron_name", "patron_email", "question", "body", "token"):
        assert forbidden not in entry
    for secret in (NAME, EMAIL, "secret-question-8841", "s3cr3t", "tok-123456789"):
        assert secret not in line


def test_the_filter_masks_emails_tokens_and_credentials_in_messages_and_tracebacks() -> None:
    try:
        raise ValueError(f"Key (email)=({EMAIL}) already exists; token=abcDEF123456 Authorization: Bearer xyz.987654")
    except ValueError as e:
        error = e
    line = emitted(record("mail to %s failed (password=%s, sessionid=%s)", EMAIL, "hunter22", "q1w2e3r4",
                          exc=error))
    entry = json.loads(line)
    for secret in (EMAIL, "hunter22", "q1w2e3r4", "abcDEF123456", "xyz.987654"):
        assert secret not in line
    assert "[email]" in entry["msg"] and "password=[redacted]" in entry["msg"]
    assert "ValueError" in entry["exc"] and "token=[redacted]" in entry["exc"]


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "chat abc123 escalated from local to statewide after 120 s (reason=timeout)"
    assert redact(text) == text


def test_plain_format_is_one_readable_line_with_the_ids() -> None:
    line = emitted(record("chat %s", "accepted", chat="c9", consortium="vr", event="accepted"), PlainFormatter())
    assert line.endswith("routing.decisions chat accepted event=accepted chat=c9 consortium=vr")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_send", lambda group, event: None)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The decisions logger, through the same filter and formatter as production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PrivacyFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("routing.decisions")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.mark.django_db
def test_routing_decisions_are_logged_with_ids_only(captured: io.StringIO, django_capture_on_commit_callbacks: Any,
                                                    sent: Any) -> None:
    consortium = make_consortium("sunshine")
    statewide = make_shared_queue(consortium, "statewide")
    library = make_library(consortium, "alpha")
    ana = make_staff(library, "ana", queues=[statewide])
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        sweeps.process_heartbeat("p1", now)
        presence.staff_connected(ana, "staff-ana", "p1", now)
        presence.presence_set(ana, "available", now)
        chat, token = chats.chat_start(consortium=consortium, question=QUESTION, library_slug="alpha",
                                           name=NAME, email=EMAIL, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        offers.chat_accept(ana, chat.pk, now)
    with django_capture_on_commit_callbacks(execute=True):
        chats.chat_end(chat.pk, now, by="librarian", librarian=ana)
    lines = captured.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["event"] for e in entries] == ["created", "accepted", "ended"]
    assert all(e["chat"] == chat.pk and e["consortium"] == "sunshine" for e in entries)
    assert entries[0]["home_library"] == "alpha"
    assert entries[1]["librarian"] == ana.pk and entries[1]["library"] == "alpha"
    everything = captured.getvalue()
    for secret in (NAME, EMAIL, "secret-question-8841", token, "ana@example.org", "Ana"):
        assert secret not in everything


@pytest.mark.django_db
def test_a_chat_nobody_can_answer_is_logged_unstaffed(captured: io.StringIO, django_capture_on_commit_callbacks: Any,
                                                      sent: Any) -> None:
    consortium = make_consortium("empty")
    with django_capture_on_commit_callbacks(execute=True):
        chat, _ = chats.chat_start(consortium=consortium, question=QUESTION, now=timezone.now())
    events = [json.loads(line)["event"] for line in captured.getvalue().splitlines()]
    assert events == ["created", "unstaffed"]
    assert chat.pk in captured.getvalue()


def log_format(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    unset = {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "HTTPS", "LOG_FORMAT",
             "DJANGO_SETTINGS_MODULE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base.update({"DJANGO_SETTINGS_MODULE": "consortium.settings", "VR_DATA_DIR": str(tmp_path), **env})
    probe = "import django; django.setup(); from django.conf import settings as s; print(s.LOG_FORMAT)"
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)


def test_log_format_defaults_to_json_on_the_production_engines_and_plain_embedded(tmp_path: Path) -> None:
    assert log_format(tmp_path).stdout.strip() == "plain"
    production = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "DJANGO_SECRET_KEY": STRONG_KEY}
    assert log_format(tmp_path, **production).stdout.strip() == "json"
    assert log_format(tmp_path, **production, LOG_FORMAT="plain").stdout.strip() == "plain"
    refused = log_format(tmp_path, **production, LOG_FORMAT="xml")
    assert refused.returncode != 0 and "LOG_FORMAT must be json or plain" in refused.stderr
