"""The staffing forecast (coordination/forecast.py) on plain records and on the demo's generated past."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from consortium.models import Consortium
from coordination import forecast, history
from libraries.models import Closure, Queue, Shift, StaffProfile

DEMO_FILE = Path(__file__).resolve().parents[2] / "deploy" / "demo-consortium.yaml"
NOW = datetime(2026, 3, 11, 19, 0, tzinfo=UTC)  # a Wednesday, 15:00 in Florida
NY = ZoneInfo("America/New_York")


def test_demand_counts_only_the_weeks_the_queue_was_open() -> None:
    since = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)  # Monday 00:00 in New York
    holiday = date(2026, 1, 19)  # the third Monday: closed all day
    arrivals = []
    for week in range(4):
        monday_ten = datetime(2026, 1, 5, 10, 15, tzinfo=NY) + timedelta(weeks=week)
        if monday_ten.date() != holiday:
            arrivals += [monday_ten] * 3  # three chats each open Monday at ten
    rates = forecast.demand(arrivals, NY, since, 4, lambda at: at.date() != holiday)
    assert rates[(0, 10)] == 3.0  # not 2.25: the closed Monday is no quiet Monday
    assert rates[(0, 11)] == 0.0 and rates[(1, 10)] == 0.0


def test_handle_time_and_patience_from_records() -> None:
    at = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    answered = [forecast.Record(at, waited=30.0, handled=600.0) for _ in range(30)]
    gave_up = [forecast.Record(at, gave_up=120.0) for _ in range(3)]
    assert forecast.handle_seconds(answered + gave_up) == 600.0
    assert forecast.handle_seconds(answered[:5], fallback=480.0) == 480.0  # too few to trust
    # Exposure 30 x 30 s + 3 x 120 s = 1,260 s of waiting for 3 patrons who gave up.
    assert forecast.patience_seconds(answered + gave_up) == pytest.approx(420.0)
    assert forecast.patience_seconds(answered) is None


@pytest.fixture
def demo(db: None) -> Consortium:
    call_command("import_consortium", str(DEMO_FILE), "--quiet")
    consortium = Consortium.objects.get(slug="sunshine")
    history.load(consortium, NOW)
    return consortium


def test_the_demo_shows_a_forecast_for_the_coming_week(demo: Consortium) -> None:
    found = {q.queue.slug: q for q in forecast.forecast(demo, NOW).queues}
    statewide = found["statewide"]
    assert statewide.samples > 500 and 300 < statewide.handle_seconds < 1200
    assert statewide.patience_seconds is not None
    assert len(statewide.hours) == 7 * 24
    # The generated rota staffs weekday afternoons: predicted waits there, none on an unstaffed Sunday.
    afternoon = statewide.hour(2, 16)  # today, an hour from now (14:00 is past: next Wednesday)
    assert afternoon.librarians >= 2 and afternoon.prediction is not None
    assert afternoon.prediction.staffed and afternoon.prediction.service_level > 0.8
    assert afternoon.start.date() == date(2026, 3, 11) and afternoon.start.tzinfo is not None
    sunday = statewide.hour(6, 14)
    assert sunday.open and sunday.arrivals > 0 and sunday.librarians == 0
    assert sunday.prediction is not None and not sunday.prediction.staffed


def test_what_if_a_shift_is_added_or_removed(demo: Consortium) -> None:
    before = {q.queue.slug: q for q in forecast.forecast(demo, NOW).queues}["statewide"]
    afternoon = before.hour(0, 14)
    removed = {q.queue.slug: q for q in forecast.forecast(
        demo, NOW, extra={"statewide": {(0, 14): -afternoon.librarians}}).queues}["statewide"]
    gone = removed.hour(0, 14).prediction
    assert removed.hour(0, 14).librarians == 0 and gone is not None and not gone.staffed
    assert removed.hour(0, 15) == before.hour(0, 15)  # only the hour asked about changes
    added = {q.queue.slug: q for q in forecast.forecast(
        demo, NOW, extra={"statewide": {(6, 14): 1}}).queues}["statewide"]
    assert added.hour(6, 14).librarians == 1 and added.hour(6, 14).slots == demo.librarian_capacity
    prediction = added.hour(6, 14).prediction
    assert prediction is not None and prediction.staffed and prediction.service_level > 0.5


def test_a_closure_in_the_coming_week_closes_its_hours(demo: Consortium) -> None:
    queue = Queue.objects.get(consortium=demo, slug="statewide")
    Closure.objects.create(queue=queue, start_date=date(2026, 3, 13), end_date=date(2026, 3, 13), reason="Holiday")
    statewide = {q.queue.slug: q for q in forecast.forecast(demo, NOW).queues}["statewide"]
    friday = statewide.hour(4, 14)
    assert not friday.open and friday.prediction is None
    assert statewide.hour(3, 14).open


def _coordinator(client: Client, consortium: Consortium) -> None:
    profile = StaffProfile.objects.filter(library__consortium=consortium, role="coordinator").first()
    assert profile is not None
    client.force_login(profile.user)


def test_the_coverage_map_and_the_rota_show_the_forecast_and_what_if(demo: Consortium, client: Client) -> None:
    # The pages read the wall clock: the demo's past is loaded again to end now.
    history.load(demo, timezone.now())
    _coordinator(client, demo)
    page = client.get("/coordinator/sunshine/coverage/").content.decode()
    assert "Forecast for the coming week" in page and "answered within 60 s" in page
    rota = client.get("/coordinator/sunshine/rota/")
    assert rota.status_code == 200
    text = rota.content.decode()
    assert "without this shift: nobody to answer" in text and "one more librarian:" in text
    # What if two librarians worked Sunday afternoons on the statewide queue? Nothing is saved.
    shifts = Shift.objects.count()
    preview = client.post("/coordinator/sunshine/rota/", {
        "action": ["shift_add", "shift_preview"], "queue": "statewide", "weekday": "6", "hours": "13:00-15:00",
        "min_librarians": "2"})
    assert preview.status_code == 200 and Shift.objects.count() == shifts
    body = preview.content.decode()
    assert "What if</strong> 2 librarians worked Sunday 13:00-15:00" in body
    assert body.count("nobody to answer") > 0 and "% within 60 s" in body

    # A coordinator who chose Spanish reads the forecast, its cells' titles and the what-if in Spanish.
    StaffProfile.objects.filter(user_id=client.session["_auth_user_id"]).update(language="es")
    page = client.get("/coordinator/sunshine/coverage/").content.decode()
    assert "Pronóstico para la próxima semana" in page and "atendidos en 60 s o menos" in page
    assert "Forecast for the coming week" not in page and "answered within 60 s" not in page
    text = client.get("/coordinator/sunshine/rota/").content.decode()
    assert "sin este turno: nadie para responder" in text and "nobody to answer" not in text
    body = client.post("/coordinator/sunshine/rota/", {
        "action": ["shift_add", "shift_preview"], "queue": "statewide", "weekday": "6", "hours": "13:00-15:00",
        "min_librarians": "2"}).content.decode()
    assert "<strong>¿Y si</strong> 2 bibliotecarios trabajaran el Domingo 13:00-15:00" in body
    assert "Con este turno" in body and "% en 60 s o menos" in body


def test_what_if_and_the_worst_hour_on_plain_numbers() -> None:
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=NY)
    rates = {(0, 9): 12.0, (0, 10): 12.0, (0, 11): 0.0}
    staff = forecast.Staff({(0, 9): (3,), (0, 10): (3, 3), (0, 11): (3,)})
    hours = forecast.predict_week(monday, NY, rates, staff, 600.0, 300.0, lambda at: at.hour in (9, 10, 11))
    week = forecast.QueueForecast(Queue(slug="q"), 600.0, 300.0, hours, 100, staff, 3)
    one, two = week.hour(0, 9).prediction, week.hour(0, 10).prediction
    assert one is not None and two is not None and one.service_level < two.service_level
    assert week.worst([(0, 9), (0, 10)]) == week.hour(0, 9)
    # No chats expected at 11: the worst of that hour alone is the hour itself, not "closed".
    assert week.worst([(0, 11)]) == week.hour(0, 11) and week.worst([(0, 12)]) is None
    helped = week.what_if({(0, 9): 1})
    assert helped.hour(0, 9).librarians == 2 and helped.hour(0, 9).prediction == week.hour(0, 10).prediction
    assert helped.hour(0, 10) == week.hour(0, 10) and week.hour(0, 9).librarians == 1  # nothing else moves
    emptied = week.what_if({(0, 10): -5})
    prediction = emptied.hour(0, 10).prediction
    assert emptied.hour(0, 10).librarians == 0 and prediction is not None and not prediction.staffed


def test_what_if_as_json_for_the_rota_script(demo: Consortium, client: Client) -> None:
    """POST .../rota/what-if: the same what-if as the page's, as cells for coordination/what_if.js to redraw
    in place; nothing saved, errors as a list, coordinators only, in the coordinator's language."""
    history.load(demo, timezone.now())
    _coordinator(client, demo)
    shifts = Shift.objects.count()
    fields = {"queue": "statewide", "weekday": "6", "hours": "13:00-15:00", "min_librarians": "2"}
    r = client.post("/coordinator/sunshine/rota/what-if", fields)
    assert r.status_code == 200 and r["Content-Type"] == "application/json" and Shift.objects.count() == shifts
    found = r.json()
    assert found["queue"] == "statewide" and found["columns"] == ["Hour", "As the rota is", "With this shift"]
    assert found["summary"] == ("What if 2 librarians worked Sunday 13:00-15:00? Nothing is saved until you add "
                                "the shift.")
    assert [row["hour"] for row in found["rows"]] == ["13:00", "14:00"]
    assert all("nobody to answer" in row["before"] and "% within 60 s" in row["after"] for row in found["rows"])
    # A longer shift: more hours, recomputed.
    longer = client.post("/coordinator/sunshine/rota/what-if", {**fields, "hours": "13:00-17:00"}).json()
    assert [row["hour"] for row in longer["rows"]] == ["13:00", "14:00", "15:00", "16:00"]

    bad = client.post("/coordinator/sunshine/rota/what-if", {**fields, "hours": "soon"})
    assert bad.status_code == 400 and bad.json()["errors"]
    assert client.post("/coordinator/sunshine/rota/what-if", {**fields, "queue": "nowhere"}).status_code == 400
    assert client.get("/coordinator/sunshine/rota/what-if").status_code == 405

    StaffProfile.objects.filter(user_id=client.session["_auth_user_id"]).update(language="es")
    spanish = client.post("/coordinator/sunshine/rota/what-if", fields).json()
    assert spanish["summary"].startswith("¿Y si 2 bibliotecarios trabajaran el Domingo 13:00-15:00")
    assert spanish["columns"][2] == "Con este turno" and "% en 60 s o menos" in spanish["rows"][0]["after"]

    # The page loads the script and marks the forms it enhances; a librarian is refused.
    page = client.get("/coordinator/sunshine/rota/").content.decode()
    assert 'data-what-if="/coordinator/sunshine/rota/what-if"' in page and "coordination/what_if" in page
    librarian = StaffProfile.objects.filter(library__consortium=demo, role="librarian").first()
    assert librarian is not None
    client.force_login(librarian.user)
    assert client.post("/coordinator/sunshine/rota/what-if", fields).status_code == 403
