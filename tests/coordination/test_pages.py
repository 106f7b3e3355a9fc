"""The coordinator pages through the test client: who may open what, and what the forms change."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from libraries import rota
from libraries.models import Closure, Queue, Shift, ShiftAssignment, ShiftSwap, SpecialHours, WeeklyInterval
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.django_db

COORDINATOR_PAGES = ("/coordinator/alpha/", "/coordinator/alpha/rota/", "/coordinator/alpha/coverage/",
                     "/coordinator/alpha/statistics/")


@pytest.fixture
def w() -> dict[str, Any]:
    alpha = make_consortium("alpha")
    statewide = make_shared_queue(alpha, "statewide")
    tampa = make_library(alpha, "tampa", name="Tampa Library")
    orlando = make_library(alpha, "orlando", name="Orlando Library")
    beta = make_consortium("beta")
    make_shared_queue(beta, "statewide")
    miami = make_library(beta, "miami")
    return {
        "statewide": statewide, "tampa": tampa, "orlando": orlando,
        "coordinator": make_staff(orlando, "cora", role="coordinator"),
        "admin": make_staff(tampa, "tim", role="library_admin"),
        "librarian": make_staff(tampa, "lia"),
        "other": make_staff(orlando, "otto"),
        "beta_coordinator": make_staff(miami, "bea", role="coordinator"),
    }


def as_user(client: Client, profile: Any) -> Client:
    assert client.login(username=profile.user.username, password=PASSWORD)
    return client


# --- who may open what -----------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, w: dict[str, Any]) -> None:
    for path in (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/rota/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_every_page_but_the_feed_asks_signed_out_visitors_to_sign_in_before_anything_else(
        client: Client, w: dict[str, Any]) -> None:
    pages = (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/coordinator/alpha/hours/tampa/",
             "/coordinator/alpha/hours/tampa.ics", "/coordinator/nowhere/", "/coordinator/nowhere/hours/", "/rota/")
    for path in pages:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/accounts/login/?next={path}", path
    for path in ("/coordinator/alpha/rota/", "/coordinator/alpha/hours/tampa/", "/rota/"):
        assert client.post(path, {"action": "shift_add"}).status_code == 302, path
    assert not Shift.objects.exists()
    assert client.get("/rota/feed/not-a-token.ics").status_code == 404, "the feed's address is its credential"


def test_an_account_without_a_staff_profile_is_refused_every_page(client: Client, w: dict[str, Any]) -> None:
    User.objects.create_user("visitor", password=PASSWORD)
    assert client.login(username="visitor", password=PASSWORD)
    for path in (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/coordinator/alpha/hours/tampa.ics", "/rota/"):
        assert client.get(path).status_code == 403, path
    assert "This account has no staff profile." in client.get("/rota/").content.decode()


def test_the_hours_pages_show_the_coordinators_menu_to_coordinators_only(client: Client, w: dict[str, Any]) -> None:
    for who, is_coordinator in (("admin", False), ("coordinator", True)):
        as_user(client, w[who])
        for path in ("/coordinator/alpha/hours/", "/coordinator/alpha/hours/tampa/"):
            response = client.get(path)
            assert response.context["is_coordinator"] is is_coordinator, (who, path)
            assert response.context["profile"] == w[who] and response.context["section"] == "hours"
            assert ('href="/coordinator/alpha/rota/"' in response.content.decode()) is is_coordinator, (who, path)
        ics = client.get("/coordinator/alpha/hours/tampa.ics")
        assert ics.status_code == 200 and ics["Content-Type"].startswith("text/calendar"), who
        client.logout()


def test_a_librarian_cannot_see_coordinator_pages(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["librarian"])
    for path in (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/coordinator/alpha/hours/tampa/"):
        assert client.get(path).status_code == 403, path
    assert client.get("/rota/").status_code == 200, "but has their own shifts page"


def test_a_library_admin_edits_only_their_own_librarys_hours(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["admin"])
    for path in COORDINATOR_PAGES:
        assert client.get(path).status_code == 403, path
    grid = client.get("/coordinator/alpha/hours/").content.decode()
    assert "Tampa Library" in grid and "Orlando Library" not in grid and "Statewide" not in grid
    assert client.get("/coordinator/alpha/hours/tampa/").status_code == 200
    assert client.get("/coordinator/alpha/hours/orlando/").status_code == 404
    assert client.get("/coordinator/alpha/hours/statewide/").status_code == 404
    before = list(WeeklyInterval.objects.values_list("pk", flat=True))
    refused = client.post("/coordinator/alpha/hours/orlando/", {"action": "weekly", "timezone": "America/New_York",
                                                                 "mon": "09:00-10:00"})
    assert refused.status_code == 404
    assert list(WeeklyInterval.objects.values_list("pk", flat=True)) == before
    assert client.post("/coordinator/alpha/hours/orlando/", {"action": "closure_add",
                                                             "start": "2026-12-25"}).status_code == 404
    assert not Closure.objects.exists()

    saved = client.post("/coordinator/alpha/hours/tampa/", {
        "action": "weekly", "timezone": "Europe/Paris", "mon": "09:00-12:00, 13:00-17:00", "sat": "10:00-24:00"})
    assert saved.status_code == 302
    queue = Queue.objects.get(slug="tampa")
    assert queue.timezone == "America/New_York", "the time zone is the coordinator's to change"
    assert list(queue.weekly.values_list("weekday", "start_minute", "end_minute")) == [
        (0, 540, 720), (0, 780, 1020), (5, 600, 1440)]


def test_a_coordinator_of_another_consortium_sees_nothing_of_this_one(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["beta_coordinator"])
    for path in (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/coordinator/alpha/hours/tampa/",
                 "/coordinator/alpha/statistics/?csv=matrix"):
        assert client.get(path).status_code == 404, path
    assert client.get("/coordinator/beta/").status_code == 200
    assert client.get("/coordinator/nowhere/").status_code == 404


def test_the_coordinator_opens_every_page(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["coordinator"])
    for path in (*COORDINATOR_PAGES, "/coordinator/alpha/hours/", "/coordinator/alpha/hours/statewide/",
                 "/coordinator/alpha/hours/tampa/", "/rota/", "/coordinator/alpha/coverage/?weeks=8",
                 "/coordinator/alpha/statistics/?since=2026-01-01&until=2026-01-31&library=tampa"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"<script>" not in response.content, "no inline scripts: the pages' CSP allows none"
    board = client.get("/coordinator/alpha/").content.decode()
    assert 'id="board-data"' in board and "/static/coordination/board.js" in board


# --- hours ----------------------------------------------------------------------------------------------


def test_hours_forms_report_mistakes_and_save_closures_special_days_and_imports(client: Client,
                                                                                w: dict[str, Any]) -> None:
    as_user(client, w["coordinator"])
    page = "/coordinator/alpha/hours/statewide/"
    bad = client.post(page, {"action": "weekly", "timezone": "America/New_York", "tue": "9-17"})
    assert bad.status_code == 400 and "is not HH:MM-HH:MM" in bad.content.decode()
    overlap = client.post(page, {"action": "weekly", "timezone": "America/New_York",
                                 "tue": "09:00-12:00, 11:00-13:00"})
    assert overlap.status_code == 400 and "overlaps" in overlap.content.decode()
    assert client.post(page, {"action": "weekly", "timezone": "Mars/Base", "tue": ""}).status_code == 400
    assert client.post(page, {"action": "closure_add", "start": "2026-12-25", "end": "2026-12-26",
                              "reason": "Christmas"}).status_code == 302
    assert client.post(page, {"action": "special_add", "date": "2026-12-24", "hours": "09:00-12:00"}).status_code == 302
    queue = w["statewide"]
    assert list(Closure.objects.filter(queue=queue).values_list("start_date", "end_date")) == [
        (date(2026, 12, 25), date(2026, 12, 26))]
    assert SpecialHours.objects.get(queue=queue).intervals == [[540, 720]]

    ics = ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Open\r\nDTSTART;TZID=America/New_York:20260302T080000\r\n"
           "DTEND;TZID=America/New_York:20260302T200000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\nEND:VEVENT\r\n"
           "END:VCALENDAR\r\n")
    imported = client.post("/coordinator/alpha/hours/tampa/", {
        "action": "import", "file": SimpleUploadedFile("hours.ics", ics.encode(), "text/calendar")})
    assert imported.status_code == 302
    assert list(Queue.objects.get(slug="tampa").weekly.values_list("weekday", "start_minute", "end_minute")) == [
        (0, 480, 1200), (2, 480, 1200)]
    not_ics = client.post("/coordinator/alpha/hours/tampa/", {
        "action": "import", "file": SimpleUploadedFile("hours.ics", b"hello", "text/calendar")})
    assert not_ics.status_code == 400
    exported = client.get("/coordinator/alpha/hours/tampa.ics")
    assert exported["Content-Type"].startswith("text/calendar") and b"BYDAY=MO,WE" in exported.content


# --- the rota --------------------------------------------------------------------------------------------


def test_the_rota_page_makes_shifts_assigns_librarians_and_sets_targets(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["coordinator"])
    page = "/coordinator/alpha/rota/"
    assert client.post(page, {"action": "shift_add", "queue": "statewide", "weekday": "0", "hours": "18:00-22:00",
                              "min_librarians": "2"}).status_code == 302
    shift = Shift.objects.get()
    assert (shift.weekday, shift.start_minute, shift.end_minute, shift.min_librarians) == (0, 1080, 1320, 2)
    assert client.post(page, {"action": "shift_add", "queue": "tampa", "weekday": "0", "hours": "18:00-22:00",
                              "min_librarians": "1"}).status_code == 400, "local queues have hours, not shifts"
    for username in ("lia", "otto"):
        assert client.post(page, {"action": "assign", "shift": shift.pk, "librarian": username}).status_code == 302
    again = client.post(page, {"action": "assign", "shift": shift.pk, "librarian": "lia"}, follow=True)
    assert "on this shift already" in again.content.decode()
    stranger = client.post(page, {"action": "assign", "shift": shift.pk, "librarian": "bea"}, follow=True)
    assert "pick a librarian of the consortium" in stranger.content.decode()
    assert set(ShiftAssignment.objects.values_list("librarian__user__username", flat=True)) == {"lia", "otto"}
    assert client.post(page, {"action": "unassign", "shift": shift.pk, "librarian": "otto"}).status_code == 302
    assert client.post(page, {"action": "rota_driven", "queue": "statewide", "value": "on"}).status_code == 302
    w["statewide"].refresh_from_db()
    assert w["statewide"].rota_driven
    assert client.post(page, {"action": "target", "library": "tampa", "hours": "6"}).status_code == 302
    html = client.get(page).content.decode()
    assert "rota-driven" in html and "2 h short" in html and "Lia" in html


def test_librarians_offer_and_take_shifts_on_their_own_page(client: Client, w: dict[str, Any]) -> None:
    as_user(client, w["coordinator"])
    client.post("/coordinator/alpha/rota/", {"action": "shift_add", "queue": "statewide", "weekday": "4",
                                             "hours": "09:00-11:00", "min_librarians": "1"})
    shift = Shift.objects.get()
    client.post("/coordinator/alpha/rota/", {"action": "assign", "shift": shift.pk, "librarian": "lia"})
    client.logout()

    as_user(client, w["librarian"])
    mine = client.get("/rota/").content.decode()
    assert "Statewide" in mine and "/rota/feed/" in mine
    now = timezone.now()
    day = rota.librarian_occurrences(w["librarian"], now, now + timedelta(weeks=4))[0].day
    assert client.post("/rota/", {"action": "offer", "shift": shift.pk, "date": day.isoformat()}).status_code == 302
    swap = ShiftSwap.objects.get()
    client.logout()

    as_user(client, w["other"])
    assert "Take it" in client.get("/rota/").content.decode()
    assert client.post("/rota/", {"action": "take", "swap": swap.pk}).status_code == 302
    swap.refresh_from_db()
    assert swap.status == "taken" and swap.taken_by == w["other"]



def test_a_hostile_calendar_imports_what_is_sane_and_says_why_the_rest_was_not(client: Client,
                                                                               w: dict[str, Any]) -> None:
    as_user(client, w["coordinator"])
    ics = ("BEGIN:VCALENDAR\r\n"
           "BEGIN:VEVENT\r\nSUMMARY:Forever\r\nDTSTART:00020101T090000Z\r\nDTEND:99981231T170000Z\r\nEND:VEVENT\r\n"
           "BEGIN:VEVENT\r\nSUMMARY:Open\r\nDTSTART;TZID=America/New_York:20260302T080000\r\n"
           "DTEND;TZID=America/New_York:20260302T200000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nEND:VEVENT\r\n"
           "END:VCALENDAR\r\n")
    page = client.post("/coordinator/alpha/hours/tampa/", {
        "action": "import", "file": SimpleUploadedFile("hours.ics", ics.encode(), "text/calendar")}, follow=True)
    assert page.status_code == 200
    days = (date(9998, 12, 31) - date(2, 1, 1)).days + 1
    assert f"&quot;Forever&quot; lasts {days} days, more than the 366 an import accepts; skipped" in \
        page.content.decode()
    assert list(Queue.objects.get(slug="tampa").weekly.values_list("weekday", "start_minute", "end_minute")) == [
        (0, 480, 1200)]


def test_a_spanish_coordinator_is_told_why_a_rota_change_is_refused_in_spanish(client: Client,
                                                                             w: dict[str, Any]) -> None:
    w["coordinator"].language = "es"
    w["coordinator"].save(update_fields=["language"])
    as_user(client, w["coordinator"])
    page = "/coordinator/alpha/rota/"
    assert client.post(page, {"action": "shift_add", "queue": "statewide", "weekday": "0", "hours": "18:00-22:00",
                              "min_librarians": "1"}).status_code == 302
    shift = Shift.objects.get()
    assert client.post(page, {"action": "assign", "shift": shift.pk, "librarian": "lia"}).status_code == 302
    again = client.post(page, {"action": "assign", "shift": shift.pk, "librarian": "lia"}).content.decode()
    assert "ya está en este turno" in again and "on this shift already" not in again
    stranger = client.post(page, {"action": "assign", "shift": shift.pk, "librarian": "bea"}).content.decode()
    assert "elija un bibliotecario del consorcio" in stranger
    target = client.post(page, {"action": "target", "library": "tampa", "hours": "many"}).content.decode()
    assert "un objetivo semanal es un número entero de horas" in target
