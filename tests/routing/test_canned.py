"""Canned responses: the three sets and who keeps and sees which (routing.canned, routing.services.canned),
their placeholders and languages, and the staff page that manages them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from consortium.models import Consortium
from libraries.models import Closure, Library, Queue, StaffProfile
from routing import canned
from routing.models import CannedResponse, Chat, ChatState
from routing.services import canned as canned_services
from routing.services.common import Refused
from tests.factories import make_consortium, make_library, make_staff, set_weekly_hours

pytestmark = pytest.mark.django_db

# Tuesday 03:00 UTC is still Monday 19:00 in Los Angeles: "today" is the library's Monday.
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


@dataclass
class World:
    alpha: Consortium
    beta: Consortium
    tampa: Library
    orlando: Library
    ana: StaffProfile  # tampa librarian
    amy: StaffProfile  # tampa librarian
    lia: StaffProfile  # tampa library admin
    otto: StaffProfile  # orlando librarian
    ola: StaffProfile  # orlando library admin
    cora: StaffProfile  # tampa coordinator
    bea: StaffProfile  # the other consortium's coordinator


@pytest.fixture
def w() -> World:
    alpha, beta = make_consortium("alpha", name="Alpha Ask"), make_consortium("beta")
    tampa = make_library(alpha, "tampa", name="Tampa Library", timezone="America/Los_Angeles")
    orlando = make_library(alpha, "orlando", name="Orlando Library")
    miami = make_library(beta, "miami")
    return World(alpha=alpha, beta=beta, tampa=tampa, orlando=orlando,
                 ana=make_staff(tampa, "ana"), amy=make_staff(tampa, "amy"),
                 lia=make_staff(tampa, "lia", role="library_admin"), otto=make_staff(orlando, "otto"),
                 ola=make_staff(orlando, "ola", role="library_admin"),
                 cora=make_staff(tampa, "cora", role="coordinator"), bea=make_staff(miami, "bea", role="coordinator"))


def chat_for(w: World, home: Library | None, librarian: StaffProfile, *, language: str = "", name: str = "Pat") -> Chat:
    now = timezone.now()
    return Chat.objects.create(consortium=w.alpha, home_library=home, question="Passes?", token_hash="x",
                               created_at=now, arrived_at=now, last_activity_at=now, state=ChatState.ACTIVE,
                               librarian=librarian, answered_by=librarian, patron_name=name, language=language)


def one_of_each(w: World) -> dict[str, CannedResponse]:
    return {
        "ana's": CannedResponse.objects.create(consortium=w.alpha, owner=w.ana, title="ana's", body="a"),
        "amy's": CannedResponse.objects.create(consortium=w.alpha, owner=w.amy, title="amy's", body="a"),
        "tampa's": CannedResponse.objects.create(consortium=w.alpha, library=w.tampa, title="tampa's", body="t"),
        "orlando's": CannedResponse.objects.create(consortium=w.alpha, library=w.orlando, title="orlando's",
                                                   body="o"),
        "alpha's": CannedResponse.objects.create(consortium=w.alpha, title="alpha's", body="c"),
        "beta's": CannedResponse.objects.create(consortium=w.beta, title="beta's", body="b"),
    }


def titles(rows: Any) -> set[str]:
    return {r.title for r in rows}


# --- who keeps which set ---------------------------------------------------------------------------


def test_each_keeps_their_own_set_and_nobody_another_persons_or_librarys(w: World) -> None:
    one_of_each(w)
    assert titles(canned.managed_by(w.ana)) == {"ana's"}
    assert titles(canned.managed_by(w.lia)) == {"tampa's"}
    assert titles(canned.managed_by(w.ola)) == {"orlando's"}
    assert titles(canned.managed_by(w.cora)) == {"tampa's", "alpha's"}
    assert titles(canned.managed_by(w.bea)) == {"beta's"}  # another consortium's coordinator: only its own


def test_a_chat_offers_the_librarians_own_the_consortiums_and_the_libraries_sets(w: World) -> None:
    one_of_each(w)
    # ana answers her own library's patron: never amy's personal set, never Orlando's.
    assert titles(canned.offered_to(w.ana, chat_for(w, w.tampa, w.ana))) == {"ana's", "tampa's", "alpha's"}
    # otto answers a Tampa patron: Tampa's words for its patrons beside his library's, not ana's own.
    assert titles(canned.offered_to(w.otto, chat_for(w, w.tampa, w.otto))) == {"tampa's", "orlando's", "alpha's"}


def test_only_the_sets_a_profile_keeps_can_be_written(w: World) -> None:
    mine = canned_services.canned_create(w.ana, which="personal", title="Mine", body_en="Hi", body_es="")
    assert mine.owner == w.ana and mine.library is None and mine.consortium == w.alpha
    for which in ("library", "consortium", "nonsense"):
        with pytest.raises(Refused) as refused:
            canned_services.canned_create(w.ana, which=which, title="X", body_en="x", body_es="")
        assert refused.value.reason == "forbidden"
    ours = canned_services.canned_create(w.lia, which="library", title="Ours", body_en="", body_es="Hola")
    assert ours.library == w.tampa and ours.owner is None
    with pytest.raises(Refused):
        canned_services.canned_create(w.lia, which="consortium", title="X", body_en="x", body_es="")
    everyone = canned_services.canned_create(w.cora, which="consortium", title="All", body_en="x", body_es="y")
    assert everyone.library is None and everyone.owner is None and everyone.consortium == w.alpha
    # Another person's, another library's, another consortium's response is absent, not forbidden.
    for who, response in ((w.amy, mine), (w.ola, ours), (w.bea, everyone), (w.ana, everyone)):
        with pytest.raises(Refused) as refused:
            canned_services.canned_update(who, response.pk, title="Taken", body_en="x", body_es="")
        assert refused.value.reason == "not_found"
        with pytest.raises(Refused):
            canned_services.canned_delete(who, response.pk)
    assert CannedResponse.objects.filter(title="Taken").count() == 0
    assert CannedResponse.objects.count() == 3


def test_bad_input_is_refused_with_the_fields_at_fault_and_changes_nothing(w: World) -> None:
    with pytest.raises(Refused) as refused:
        canned_services.canned_create(w.ana, which="personal", title="  ", body_en=" ", body_es="")
    assert set(refused.value.fields) == {"title", "body_en"}
    with pytest.raises(Refused) as refused:
        canned_services.canned_create(w.ana, which="personal", title="t" * 101, body_en="x", body_es="y" * 4001)
    assert set(refused.value.fields) == {"title", "body_es"}
    response = canned_services.canned_create(w.ana, which="personal", title="Kept", body_en="Hi", body_es="")
    with pytest.raises(Refused):
        canned_services.canned_update(w.ana, response.pk, title="Kept", body_en="", body_es="")
    response.refresh_from_db()
    assert response.body == "Hi"


# --- placeholders and languages ----------------------------------------------------------------------


def test_placeholders_expand_and_unknown_ones_stay() -> None:
    values = {"library": "Tampa Library", "librarian": "Ana", "patron": "Pat"}
    assert canned.expand_placeholders("Hi {patron}, {librarian} at {library} here. {oops}", values) == \
        "Hi Pat, Ana at Tampa Library here. {oops}"
    assert canned.expand_placeholders("{ library } {} {Patron} {", values) == "{ library } {} {Patron} {"


def test_hours_today_are_the_home_librarys_on_its_own_date(w: World) -> None:
    queue = Queue.objects.get(library=w.tampa)
    set_weekly_hours(queue, {0: [(9 * 60, 12 * 60), (13 * 60, 17 * 60)], 1: [(10 * 60, 14 * 60)]})
    assert canned.hours_today(w.tampa, NOW) == ["09:00-12:00", "13:00-17:00"]  # Monday in Los Angeles
    assert canned.hours_today(w.tampa, NOW + dt.timedelta(hours=12)) == ["10:00-14:00"]  # Tuesday there
    CannedResponse.objects.create(consortium=w.alpha, title="Hours", body="Today {library}: {hours_today}.",
                                  body_es="Hoy {library}: {hours_today}.")
    chat = chat_for(w, w.tampa, w.ana, language="es")
    filled = {(c["title"], c["language"]): c["body"] for c in canned.canned_for(w.ana, chat, NOW)}
    assert filled == {("Hours", "es"): "Hoy Tampa Library: 09:00-12:00, 13:00-17:00.",
                      ("Hours", "en"): "Today Tampa Library: 09:00-12:00, 13:00-17:00."}
    Closure.objects.create(queue=queue, start_date=dt.date(2026, 11, 30), end_date=dt.date(2026, 11, 30))
    filled = {(c["title"], c["language"]): c["body"] for c in canned.canned_for(w.ana, chat, NOW)}
    assert filled == {("Hours", "es"): "Hoy Tampa Library: cerrado hoy.",
                      ("Hours", "en"): "Today Tampa Library: closed today."}


def test_without_a_home_library_hours_stay_as_written_and_the_service_is_named(w: World) -> None:
    CannedResponse.objects.create(consortium=w.alpha, title="Hi", body="Welcome to {library}, {patron}! {hours_today}",
                                  body_es="¡Hola, {patron}!")
    chat = chat_for(w, None, w.ana, name="")
    entries = canned.canned_for(w.ana, chat, NOW)
    assert [(c["language"], c["body"]) for c in entries] == [
        ("en", "Welcome to Alpha Ask, there! {hours_today}"), ("es", "¡Hola, usuario/a!")]


def test_the_chats_language_comes_first_and_one_language_responses_only_in_theirs(w: World) -> None:
    CannedResponse.objects.create(consortium=w.alpha, title="Both", body="Hello {patron}", body_es="Hola {patron}")
    CannedResponse.objects.create(consortium=w.alpha, title="English only", body="Cards are free")
    CannedResponse.objects.create(consortium=w.alpha, title="Solo español", body_es="Las tarjetas son gratis")
    spanish = canned.canned_for(w.ana, chat_for(w, w.tampa, w.ana, language="es-MX"), NOW)
    assert [(c["title"], c["language"]) for c in spanish] == [
        ("Both", "es"), ("Solo español", "es"), ("Both", "en"), ("English only", "en")]
    assert spanish[0]["body"] == "Hola Pat" and spanish[0]["set"] == "consortium"
    english = canned.canned_for(w.ana, chat_for(w, w.tampa, w.ana, language=""), NOW)
    assert [(c["title"], c["language"]) for c in english] == [
        ("Both", "en"), ("English only", "en"), ("Both", "es"), ("Solo español", "es")]


def test_chat_info_carries_the_chats_language_and_its_filled_responses(w: World) -> None:
    CannedResponse.objects.create(consortium=w.alpha, owner=w.ana, title="Mine", body="I'm {librarian}",
                                  body_es="Soy {librarian}")
    CannedResponse.objects.create(consortium=w.alpha, owner=w.amy, title="Amy's", body="x")
    chat = chat_for(w, w.tampa, w.ana, language="es")
    info = client_for(w.ana).get(f"/staff/api/chats/{chat.pk}").json()
    assert info["language"] == "es"
    assert [(c["title"], c["body"], c["set"]) for c in info["canned"]] == [
        ("Mine", "Soy Ana", "personal"), ("Mine", "I'm Ana", "personal")]


# --- the management page -----------------------------------------------------------------------------


def client_for(profile: StaffProfile) -> Client:
    client = Client()
    client.force_login(profile.user)
    return client


def test_the_page_shows_each_the_sets_they_keep_and_nothing_else(w: World) -> None:
    one_of_each(w)
    pages = {who.user.username: client_for(who).get("/staff/canned/") for who in (w.ana, w.lia, w.cora, w.bea)}
    for page in pages.values():
        assert page.status_code == 200
    ana = pages["ana"].content.decode()
    assert "ana&#x27;s" in ana and "amy&#x27;s" not in ana and "tampa&#x27;s" not in ana
    assert 'data-set="library"' not in ana and 'value="library"' not in ana
    lia = pages["lia"].content.decode()
    assert "tampa&#x27;s" in lia and "orlando&#x27;s" not in lia and 'value="consortium"' not in lia
    cora = pages["cora"].content.decode()
    assert "alpha&#x27;s" in cora and "tampa&#x27;s" in cora and "orlando&#x27;s" not in cora
    assert "ana&#x27;s" not in cora  # a coordinator keeps the consortium's set, not people's own
    assert "alpha&#x27;s" not in pages["bea"].content.decode()


def test_creating_editing_and_deleting_on_the_page(w: World) -> None:
    client = client_for(w.lia)
    r = client.post("/staff/canned/", {"set": "library", "title": "Cards", "body_en": "Cards at {library}",
                                       "body_es": "Tarjetas en {library}"})
    assert r.status_code == 302
    made = CannedResponse.objects.get(title="Cards")
    assert made.library == w.tampa and made.owner is None and made.body_es == "Tarjetas en {library}"
    r = client.post(f"/staff/canned/{made.pk}/", {"action": "save", "title": "Library cards", "body_en": "",
                                                   "body_es": "Tarjetas"})
    assert r.status_code == 302
    made.refresh_from_db()
    assert (made.title, made.body, made.body_es, made.library) == ("Library cards", "", "Tarjetas", w.tampa)
    # Another library's admin and a librarian of the same library: no such response for them.
    for other in (w.ola, w.ana):
        assert client_for(other).get(f"/staff/canned/{made.pk}/").status_code == 404
        assert client_for(other).post(f"/staff/canned/{made.pk}/", {"action": "delete"}).status_code == 404
    assert CannedResponse.objects.filter(pk=made.pk).exists()
    r = client.post(f"/staff/canned/{made.pk}/", {"action": "delete"})
    assert r.status_code == 302 and not CannedResponse.objects.filter(pk=made.pk).exists()


def test_a_librarian_cannot_post_into_a_set_they_do_not_keep(w: World) -> None:
    r = client_for(w.ana).post("/staff/canned/", {"set": "consortium", "title": "Sneaky", "body_en": "x"})
    assert r.status_code == 400 and "Not a set you keep." in r.content.decode()
    r = client_for(w.lia).post("/staff/canned/", {"set": "consortium", "title": "Sneaky", "body_en": "x"})
    assert r.status_code == 400
    assert not CannedResponse.objects.filter(title="Sneaky").exists()


def test_bad_input_on_the_page_is_shown_beside_its_field_and_what_was_typed_is_kept(w: World) -> None:
    r = client_for(w.ana).post("/staff/canned/", {"set": "personal", "title": "", "body_en": "", "body_es": "",
                                                 })
    page = r.content.decode()
    assert r.status_code == 400
    assert "Give the response a title" in page and "Write the response in English, in Spanish or in both." in page
    assert 'aria-invalid="true"' in page
    r = client_for(w.ana).post("/staff/canned/", {"set": "personal", "title": "t" * 101,
                                                 "body_en": "My long draft, kept"})
    assert r.status_code == 400 and "My long draft, kept" in r.content.decode()
    assert not CannedResponse.objects.exists()


def test_personal_responses_stay_out_of_the_admin(w: World) -> None:
    mine = CannedResponse.objects.create(consortium=w.alpha, owner=w.ana, title="Mine", body="x")
    coordinator = client_for(w.cora)
    assert "Mine" not in coordinator.get("/admin/routing/cannedresponse/").content.decode()
    assert coordinator.get(f"/admin/routing/cannedresponse/{mine.pk}/change/").status_code in (302, 404)


def test_a_coordinator_keeps_the_consortium_set_on_the_page(w: World) -> None:
    r = client_for(w.cora).post("/staff/canned/", {"set": "consortium", "title": "Welcome",
                                                  "body_en": "Welcome to {consortium}", "body_es": ""})
    assert r.status_code == 302
    made = CannedResponse.objects.get(title="Welcome")
    assert (made.consortium, made.library, made.owner) == (w.alpha, None, None)
    # Offered to every librarian of the consortium, to nobody of another.
    assert "Welcome" in titles(canned.offered_to(w.otto, None))
    assert "Welcome" not in titles(canned.offered_to(w.bea, None))
    assert client_for(w.bea).get(f"/staff/canned/{made.pk}/").status_code == 404
