"""Statistics against a small synthetic week whose every figure is worked out by hand below.

Libraries A (partner: B), B (partner: A) and C; librarians a1, b1, c1 of each. The week of Monday
2 March 2026 in New York, and two chats just outside it (local time decides, not UTC):

 #  arrived (local)  home  answered by  wait  state      READ  subjects               survey
 1  Mon 10:15        A     a1 (A)       10    ended      2     books                  5
 2  Mon 10:40        A     b1 (B)       50    ended      3     books, tax forms       4 "great"
 3  Tue 14:05        A     c1 (C)       130   ended      1     -                      -
 4  Tue 14:30        A     -            -     abandoned  -     -                      -
 5  Wed 09:00        B     a1 (A)       20    ended      2     genealogy              3
 6  Wed 09:10        B     b1 (B)       30    ended      -     books                  -
 7  Sat 23:30        B     -            -     unstaffed  -     -                      -
 8  Sun 12:00        none  c1 (C)       70    ended      4     tax forms              1
 9  Sun 12:30        C     a1 (A)       40    ended      -     -                      -
 x  Sun 1 Mar 23:30  A     a1           5     the week before, although already Monday in UTC
 y  Mon 9 Mar 00:10  A     a1           5     the week after
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from coordination import statistics
from libraries.models import Library, StaffProfile
from routing.models import Chat, Survey
from tests.factories import PASSWORD, make_consortium, make_library, make_staff

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
WEEK = date(2026, 3, 2)


def local(day: int, hour: int, minute: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def chat(consortium: Any, arrived: datetime, home: Library | None, by: StaffProfile | None, wait: int | None,
         state: str = "ended", read: int | None = None, subjects: list[str] | None = None) -> Chat:
    accepted = arrived + timedelta(seconds=wait) if wait is not None else None
    return Chat.objects.create(
        consortium=consortium, home_library=home, question="q", token_hash="x", created_at=arrived,
        arrived_at=arrived, last_activity_at=arrived, state=state, answered_by=by, librarian=None,
        first_accepted_at=accepted, accepted_at=accepted, read_scale=read, subjects=subjects or [],
        answered_step="local" if by else "")


@pytest.fixture
def week() -> dict[str, Any]:
    c = make_consortium("stats", timezone="America/New_York")
    a = make_library(c, "a", name="A Library")
    b = make_library(c, "b", name="B Library", partners=[a])
    a.partner_links.create(partner=b, position=0)
    lib_c = make_library(c, "c", name="C Library")
    a1, b1, c1 = make_staff(a, "a1"), make_staff(b, "b1"), make_staff(lib_c, "c1")
    rows = [
        chat(c, local(2, 10, 15), a, a1, 10, read=2, subjects=["books"]),
        chat(c, local(2, 10, 40), a, b1, 50, read=3, subjects=["books", "tax forms"]),
        chat(c, local(3, 14, 5), a, c1, 130, read=1),
        chat(c, local(3, 14, 30), a, None, None, state="abandoned"),
        chat(c, local(4, 9, 0), b, a1, 20, read=2, subjects=["genealogy"]),
        chat(c, local(4, 9, 10), b, b1, 30, subjects=["books"]),
        chat(c, local(7, 23, 30), b, None, None, state="unstaffed"),
        chat(c, local(8, 12, 0), None, c1, 70, read=4, subjects=["tax forms"]),
        chat(c, local(8, 12, 30), lib_c, a1, 40),
        chat(c, local(1, 23, 30), a, a1, 5, subjects=["outside"]),
        chat(c, local(9, 0, 10), a, a1, 5, subjects=["outside"]),
    ]
    for row, rating, comment in ((0, 5, ""), (1, 4, "great"), (4, 3, ""), (7, 1, "")):
        Survey.objects.create(chat=rows[row], rating=rating, comment=comment, created_at=rows[row].arrived_at)
    other = make_consortium("elsewhere")
    chat(other, local(2, 11, 0), make_library(other, "z"), None, None, state="unstaffed")
    return {"consortium": c, "a": a, "b": b, "c": lib_c,
            "period": statistics.Period(WEEK, WEEK + timedelta(days=6), NY)}


def test_the_period_is_local_dates_both_included(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    assert chats.count() == 9, "the chat of Sunday 23:30 and of Monday 9th 00:10 are outside; other tenants too"


def test_outcomes_and_waits(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    assert statistics.outcomes(chats)[None] == statistics.Outcomes(answered=7, abandoned=1, unstaffed=1)
    assert statistics.outcomes(chats)[None].total == 9
    # Waits sorted: 10 20 30 40 50 70 130. p50: rank 0.5 x 6 = 3 -> 40. p90: rank 5.4 -> 70 + 0.4 x 60 = 94.
    overall = statistics.waits(chats)[None]
    assert overall.answered == 7 and overall.p50 == pytest.approx(40) and overall.p90 == pytest.approx(94)
    # A's patrons: 10 50 130. p50 50; p90 rank 1.8 -> 50 + 0.8 x 80 = 114.
    per_home = statistics.waits(chats, by="home_library_id")
    assert per_home[week["a"].pk].p50 == pytest.approx(50) and per_home[week["a"].pk].p90 == pytest.approx(114)
    assert per_home[None].p50 == pytest.approx(70), "the chat without a home library"
    by_home = statistics.outcomes(chats, by="home_library_id")
    assert by_home[week["a"].pk] == statistics.Outcomes(answered=3, abandoned=1)
    assert by_home[week["b"].pk] == statistics.Outcomes(answered=2, unstaffed=1)


def test_the_matrix_attributes_each_chat_to_the_library_that_answered_it(week: dict[str, Any]) -> None:
    a, b, c = week["a"].pk, week["b"].pk, week["c"].pk
    matrix = statistics.answer_matrix(statistics.chats_in(week["consortium"], week["period"]))
    assert matrix.counts == {(a, a): 1, (a, b): 1, (a, c): 1, (b, a): 1, (b, b): 1, (None, c): 1, (c, a): 1}
    assert matrix.rows() == [a, b, c, None] and matrix.columns() == [a, b, c]
    assert matrix.column_total(a) == 3 and matrix.row_total(a) == 3


def test_answering_balance(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    found = {b.library.slug: b for b in statistics.balances(chats, [week["a"], week["b"], week["c"]])}
    # A answered 1, 5, 9: two for others (B's and C's patrons); A's patrons 2 and 3 were answered by B and C.
    assert (found["a"].patrons_chats, found["a"].answered, found["a"].for_others, found["a"].by_others) == (4, 3, 2, 2)
    assert found["a"].net == 0
    # B answered 2 (A's) and 6 (its own); its 5 went to A.
    assert (found["b"].answered, found["b"].for_others, found["b"].by_others, found["b"].net) == (2, 1, 1, 0)
    # C answered 3 (A's) and 8 (no home library), its own 9 went to A.
    assert (found["c"].patrons_chats, found["c"].answered, found["c"].for_others, found["c"].by_others) == (1, 2, 2, 1)
    assert found["c"].net == 1


def test_who_answered_a_librarys_patrons(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    who = statistics.who_answered(chats, week["a"])
    assert (who.total, who.own, who.consortium, who.unanswered, who.for_others) == (4, 1, 1, 1, 2)
    assert [(p.slug, n) for p, n in who.partners] == [("b", 1)]
    assert who.by_others == 2 and who.net == 0


def test_hour_of_week_surveys_read_and_subjects(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    grid = statistics.by_hour_of_week(chats, NY)
    found = {(d, h): n for d in range(7) for h in range(24) if (n := grid[d][h])}
    assert found == {(0, 10): 2, (1, 14): 2, (2, 9): 2, (5, 23): 1, (6, 12): 2}
    surveys = statistics.surveys(chats)
    assert surveys == statistics.Surveys(answers=4, mean=pytest.approx(3.25), ratings={1: 1, 2: 0, 3: 1, 4: 1, 5: 1},
                                         comments=1)
    assert statistics.read_scale(chats) == {1: 1, 2: 2, 3: 1, 4: 1, 5: 0, 6: 0, None: 2}
    assert statistics.subjects(chats) == [("books", 3), ("tax forms", 2), ("genealogy", 1)]
    assert statistics.subjects(chats.filter(home_library=week["b"])) == [("books", 1), ("genealogy", 1)]


def test_a_librarys_report_is_about_its_patrons(week: dict[str, Any]) -> None:
    report = statistics.report(week["consortium"], week["period"], week["a"])
    assert report.outcomes.total == 4 and report.waits.p50 == pytest.approx(50)
    assert report.subjects == [("books", 2), ("tax forms", 1)]
    assert report.who_answered is not None and report.who_answered.own == 1
    assert len(report.matrix.counts) == 7, "the matrix stays consortium-wide"


def test_the_statistics_page_and_its_csv_tables(week: dict[str, Any], client: Client) -> None:
    coordinator = make_staff(week["a"], "cora", role="coordinator")
    client.login(username=coordinator.user.username, password=PASSWORD)
    base = "/coordinator/stats/statistics/?since=2026-03-02&until=2026-03-08"
    page = client.get(base)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Who answered whom" in html and "94 s" in html
    matrix = client.get(base + "&csv=matrix")
    assert matrix["Content-Type"].startswith("text/csv")
    lines = matrix.content.decode().splitlines()
    assert lines[0] == "home_library,answering_library,chats"
    assert sorted(lines[1:]) == sorted(["a,a,1", "a,b,1", "a,c,1", "b,a,1", "b,b,1", ",c,1", "c,a,1"])
    balance = client.get(base + "&csv=balance").content.decode().splitlines()
    assert balance[0] == "library,patrons_chats,answered,answered_for_others,answered_by_others,net"
    assert "c,1,2,2,1,1" in balance
    libraries = client.get(base + "&csv=libraries").content.decode().splitlines()
    assert libraries[0] == "library,chats,answered,abandoned,withdrawn,unstaffed,open,self_served,wait_p50_s,wait_p90_s"
    assert "a,4,3,1,0,0,0,0,50.0,114.0" in libraries
    summary = client.get(base + "&csv=outcomes").content.decode().splitlines()
    assert summary == ["outcome,chats", "answered,7", "abandoned,1", "withdrawn,0", "unstaffed,1", "open,0",
                       "self_served,0", "total,9"]
    who = client.get(base + "&library=a&csv=who").content.decode().splitlines()
    assert who == ["answered_by,chats", "own staff,1", "b,1", "rest of the consortium,1", "not answered,1",
                   "answered for others,2"]
    assert client.get(base + "&library=nope").status_code == 404


def test_one_grouped_count_gives_the_matrix_and_the_outcomes(week: dict[str, Any]) -> None:
    chats = statistics.chats_in(week["consortium"], week["period"])
    matrix, per_home = statistics.tally(chats)
    assert matrix.counts == statistics.answer_matrix(chats).counts
    assert per_home == statistics.outcomes(chats, by="home_library_id")
    report = statistics.report(week["consortium"], week["period"])
    assert report.outcomes == statistics.outcomes(chats)[None]
