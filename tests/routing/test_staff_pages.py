"""The staff console's pages and JSON endpoints, through Django's test client: who may see what."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from consortium.models import Consortium
from libraries.models import Library, StaffProfile
from routing.models import CannedResponse, Chat, ChatState, Message, Ticket
from routing.services import followups, presence, sweeps
from routing.staff import selectors as staff_selectors
from tests.factories import make_consortium, make_library, make_shared_queue, make_staff, set_weekly_hours

pytestmark = pytest.mark.django_db


@dataclass
class World:
    alpha: Consortium
    beta: Consortium
    tampa: Library
    orlando: Library
    miami: Library
    ana: StaffProfile  # tampa
    otto: StaffProfile  # orlando
    cora: StaffProfile  # tampa coordinator
    bea: StaffProfile  # miami, the other consortium


@pytest.fixture
def w(settings: Any) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alpha, beta = make_consortium("alpha", name="Alpha Ask"), make_consortium("beta")
    make_shared_queue(alpha, "statewide")
    make_shared_queue(beta, "statewide")
    tampa = make_library(alpha, "tampa", name="Tampa Library", policy="Cards are **free**. <script>x</script>",
                         key_links=[{"title": "Catalog", "url": "https://catalog.example.org"},
                                    {"title": "Bad", "url": "javascript:alert(1)"}],
                         policy_reviewed_on=timezone.localdate() - dt.timedelta(days=30))
    orlando = make_library(alpha, "orlando", name="Orlando Library")
    miami = make_library(beta, "miami", name="Miami Library", policy="Miami only")
    return World(alpha=alpha, beta=beta, tampa=tampa, orlando=orlando, miami=miami,
                 ana=make_staff(tampa, "ana"), otto=make_staff(orlando, "otto"),
                 cora=make_staff(tampa, "cora", role="coordinator"), bea=make_staff(miami, "bea"))


def client_for(profile: StaffProfile) -> Client:
    client = Client()
    client.force_login(profile.user)
    return client


def chat_in(consortium: Consortium, home: Library | None, *, librarian: StaffProfile | None = None,
            question: str = "Museum passes?", state: str = ChatState.ENDED, age_days: int = 0,
            name: str = "Pat", email: str = "pat@example.org") -> Chat:
    now = timezone.now() - dt.timedelta(days=age_days)
    chat = Chat.objects.create(consortium=consortium, home_library=home, question=question, token_hash="x",
                               created_at=now, arrived_at=now, last_activity_at=now, state=state,
                               librarian=librarian, answered_by=librarian, patron_name=name,
                               patron_email=email, last_seq=1)
    Message.objects.create(chat=chat, seq=1, sender="patron", body=question, at=now)
    return chat


# --- access ----------------------------------------------------------------------------------------


def test_console_needs_a_login_and_a_staff_profile(w: World) -> None:
    anonymous = Client().get("/staff/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    nobody = Client()
    nobody.force_login(User.objects.create_user("walkin", password="x-Very-long-pw-1"))
    page = nobody.get("/staff/")
    assert page.status_code == 403
    assert b"no staff profile" in page.content
    inactive = w.otto
    inactive.is_active = False
    inactive.save()
    assert client_for(inactive).get("/staff/").status_code == 403


def test_console_page_renders_with_its_settings(w: World) -> None:
    page = client_for(w.ana).get("/staff/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-username="ana"' in html and 'data-library="tampa"' in html
    assert 'data-ws="/ws/staff/"' in html and "console.js" in html
    assert 'data-idle-seconds="900"' in html


def test_json_endpoints_answer_401_and_403_as_json(w: World) -> None:
    r = Client().get("/staff/api/presence")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    walkin = Client()
    walkin.force_login(User.objects.create_user("walkin", password="x-Very-long-pw-1"))
    assert walkin.get("/staff/api/presence").status_code == 403


# --- the home library panel ----------------------------------------------------------------------


def test_policy_panel_renders_safe_markdown_hours_and_links(w: World) -> None:
    r = client_for(w.otto).get("/staff/libraries/tampa/policy")  # a partner librarian reads tampa's page
    assert r.status_code == 200
    html = r.content.decode()
    assert "<strong>free</strong>" in html
    assert "<script>" not in html
    assert 'href="https://catalog.example.org"' in html and 'rel="noopener noreferrer"' in html
    assert "javascript:" not in html
    assert "00:00-24:00" in html and "open now" in html
    assert "data-testid=\"policy-stale\"" not in html


def test_policy_panel_as_json_with_hours_of_today(w: World) -> None:
    set_weekly_hours(w.orlando.local_queue, {d: [(9 * 60, 17 * 60)] for d in range(7)})
    data = client_for(w.ana).get("/staff/libraries/orlando/policy?format=json").json()
    assert data["library"] == {"slug": "orlando", "name": "Orlando Library"}
    assert data["hours_today"] == ["09:00-17:00"]
    assert data["policy_stale"] is True and data["policy_reviewed_on"] is None  # never reviewed
    assert data["policy_review_limit_days"] == 365


def test_policy_older_than_the_consortium_limit_is_flagged(w: World) -> None:
    w.alpha.policy_review_limit_days = 20
    w.alpha.save()
    r = client_for(w.ana).get("/staff/libraries/tampa/policy")
    assert b'data-testid="policy-stale"' in r.content
    assert b"more than 20 days ago" in r.content
    assert staff_selectors.policy_is_stale(dt.date(2025, 1, 1), dt.date(2025, 1, 21), 20) is False
    assert staff_selectors.policy_is_stale(dt.date(2025, 1, 1), dt.date(2025, 1, 22), 20) is True


def test_policy_of_another_consortium_is_404(w: World) -> None:
    assert client_for(w.ana).get("/staff/libraries/miami/policy").status_code == 404
    assert client_for(w.ana).get("/staff/libraries/nowhere/policy").status_code == 404
    assert client_for(w.bea).get("/staff/libraries/tampa/policy").status_code == 404
    assert client_for(w.bea).get("/staff/libraries/miami/policy").status_code == 200


def test_assigned_frame_policy_url_is_served(w: World) -> None:
    from routing.frames import assigned_frame

    chat = chat_in(w.alpha, w.tampa, state=ChatState.ACTIVE, librarian=w.otto)
    url = assigned_frame(chat)["policy_url"]
    assert client_for(w.otto).get(url).status_code == 200


# --- canned responses --------------------------------------------------------------------------


def test_canned_responses_for_a_chat_are_scoped_and_filled_in(w: World) -> None:
    CannedResponse.objects.create(consortium=w.alpha, title="Hello", body="Hi {patron}, I'm {librarian}.")
    CannedResponse.objects.create(consortium=w.alpha, library=w.tampa, title="Cards",
                                  body="{library} cards are free.")
    CannedResponse.objects.create(consortium=w.alpha, library=w.orlando, title="Orlando only", body="x")
    CannedResponse.objects.create(consortium=w.beta, title="Beta", body="x")
    chat = chat_in(w.alpha, w.tampa, state=ChatState.ACTIVE, librarian=w.otto)
    info = client_for(w.otto).get(f"/staff/api/chats/{chat.pk}").json()
    bodies = {c["title"]: c["body"] for c in info["canned"]}
    # otto (Orlando) answers a Tampa patron: consortium-wide, his own library's and the home library's.
    assert bodies == {"Hello": "Hi Pat, I'm Otto.", "Cards": "Tampa Library cards are free.", "Orlando only": "x"}
    assert info["mine"] is True and info["home_library"]["slug"] == "tampa"
    assert info["policy_url"] == "/staff/libraries/tampa/policy"


def test_canned_without_a_home_library_names_the_consortium(w: World) -> None:
    CannedResponse.objects.create(consortium=w.alpha, title="Hello", body="Welcome to {library}, {patron}!")
    chat = chat_in(w.alpha, None, state=ChatState.ACTIVE, librarian=w.ana, name="")
    info = client_for(w.ana).get(f"/staff/api/chats/{chat.pk}").json()
    assert info["canned"][0]["body"] == "Welcome to Alpha Ask, there!"


def test_chat_info_of_a_chat_not_readable_is_404(w: World) -> None:
    chat = chat_in(w.beta, w.miami, state=ChatState.ACTIVE, librarian=w.bea)
    assert client_for(w.ana).get(f"/staff/api/chats/{chat.pk}").status_code == 404
    other = chat_in(w.alpha, w.orlando, state=ChatState.ACTIVE, librarian=w.otto)
    assert client_for(w.ana).get(f"/staff/api/chats/{other.pk}").status_code == 404


def test_canned_response_admin_for_a_library_admin_is_their_librarys(w: World) -> None:
    lia = make_staff(w.tampa, "lia", role="library_admin")
    client = client_for(lia)
    r = client.post("/admin/routing/cannedresponse/add/", {"title": "Ours", "body": "Hi {patron}", "library": ""})
    assert r.status_code == 200  # the library is required for a library admin
    r = client.post("/admin/routing/cannedresponse/add/", {"title": "Ours", "body": "Hi", "library": w.tampa.pk})
    assert r.status_code == 302
    made = CannedResponse.objects.get(title="Ours")
    assert made.consortium == w.alpha and made.library == w.tampa
    other = CannedResponse.objects.create(consortium=w.alpha, library=w.orlando, title="Theirs", body="x")
    assert client.get(f"/admin/routing/cannedresponse/{other.pk}/change/").status_code in (302, 404)
    coordinator = client_for(w.cora)
    r = coordinator.post("/admin/routing/cannedresponse/add/", {"title": "All", "body": "x", "library": ""})
    assert r.status_code == 302
    assert CannedResponse.objects.get(title="All").consortium == w.alpha


# --- classification ----------------------------------------------------------------------------


def test_classification_is_stored_and_traced(w: World) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.ana)
    r = client_for(w.ana).post(f"/staff/api/chats/{chat.pk}/classify",
                               data=json.dumps({"subjects": "Genealogy, local history,genealogy",
                                                "read_scale": 3, "outcome": "answered"}),
                               content_type="application/json")
    assert r.status_code == 200, r.content
    chat.refresh_from_db()
    assert chat.read_scale == 3 and chat.subjects == ["genealogy", "local history"] and chat.outcome == "answered"
    assert chat.trace.filter(kind="classified").exists()


@pytest.mark.parametrize("body", [{"read_scale": 7}, {"read_scale": 0}, {"read_scale": "x"},
                                  {"outcome": "solved"}, {"subjects": ["x" * 51]},
                                  {"subjects": [f"t{i}" for i in range(11)]}, {"subjects": 5}])
def test_classification_is_checked(w: World, body: dict[str, Any]) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.ana)
    r = client_for(w.ana).post(f"/staff/api/chats/{chat.pk}/classify", data=json.dumps(body),
                               content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["fields"]


def test_only_a_librarian_who_took_part_classifies(w: World) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.otto)
    body = json.dumps({"read_scale": 2, "outcome": "answered"})
    # ana is of the home library: she may read the chat but did not answer it.
    r = client_for(w.ana).post(f"/staff/api/chats/{chat.pk}/classify", data=body, content_type="application/json")
    assert r.status_code == 404
    r = client_for(w.bea).post(f"/staff/api/chats/{chat.pk}/classify", data=body, content_type="application/json")
    assert r.status_code == 404
    r = client_for(w.otto).post(f"/staff/api/chats/{chat.pk}/classify", data=body,
                                content_type="application/json")
    assert r.status_code == 200


def test_classify_from_the_history_page(w: World) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.ana)
    client = client_for(w.ana)
    r = client.post(f"/staff/history/{chat.pk}/", {"subjects": "cards", "read_scale": "2", "outcome": "referred"})
    assert r.status_code == 302
    chat.refresh_from_db()
    assert (chat.read_scale, chat.subjects, chat.outcome) == (2, ["cards"], "referred")
    assert client.post(f"/staff/history/{chat.pk}/", {"read_scale": "9"}).status_code == 400


# --- presence ---------------------------------------------------------------------------------


def test_presence_lists_present_librarians_by_queue_in_the_consortium(w: World) -> None:
    now = timezone.now()
    sweeps.process_heartbeat("proc", now)
    for profile in (w.ana, w.otto, w.bea):
        presence.staff_connected(profile, f"chan-{profile.pk}", "proc", now)
    presence.presence_set(w.otto, "available", now)
    presence.presence_set(w.bea, "available", now)  # another consortium: never listed
    data = client_for(w.ana).get("/staff/api/presence").json()
    assert [lib["username"] for lib in data["librarians"]] == ["otto"]  # ana is away
    queues = {q["slug"]: q for q in data["queues"]}
    assert set(queues) == {"statewide", "tampa", "orlando"}
    assert [p["username"] for p in queues["orlando"]["present"]] == ["otto"]
    assert queues["tampa"]["present"] == [] and queues["tampa"]["open"] is True
    assert {lib["slug"] for lib in data["libraries"]} == {"tampa", "orlando"}


# --- tickets ------------------------------------------------------------------------------------


def ticket(consortium: Consortium, library: Library | None, **fields: Any) -> Ticket:
    fields.setdefault("question", "When is the book sale?")
    fields.setdefault("patron_email", "pat@example.org")
    return Ticket.objects.create(consortium=consortium, library=library, source="question_form",
                                 created_at=timezone.now(), **fields)


def test_tickets_of_another_library_are_invisible(w: World) -> None:
    mine = ticket(w.alpha, w.tampa, question="Tampa question")
    theirs = ticket(w.alpha, w.orlando, question="Orlando question")
    foreign = ticket(w.beta, w.miami, question="Miami question")
    unassigned = ticket(w.alpha, None, question="Consortium question")
    client = client_for(w.ana)
    listing = client.get("/staff/tickets/").content.decode()
    assert "Tampa question" in listing
    assert "Orlando question" not in listing and "Miami question" not in listing
    assert "Consortium question" not in listing  # a librarian sees their library's only
    assert client.get(f"/staff/tickets/{mine.pk}/").status_code == 200
    for other in (theirs, foreign, unassigned):
        assert client.get(f"/staff/tickets/{other.pk}/").status_code == 404
        assert client.post(f"/staff/tickets/{other.pk}/", {"action": "claim"}).status_code == 404
    # A coordinator also triages the consortium's follow-ups that have no library.
    assert "Consortium question" in client_for(w.cora).get("/staff/tickets/").content.decode()


def test_claim_answer_mails_the_patron_then_close(w: World, django_capture_on_commit_callbacks: Any) -> None:
    t = ticket(w.alpha, w.tampa, patron_email="pat@example.org")
    client = client_for(w.ana)
    assert client.post(f"/staff/tickets/{t.pk}/", {"action": "claim"}).status_code == 302
    t.refresh_from_db()
    assert t.status == "in_progress" and t.claimed_by == w.ana
    # Somebody else cannot answer a follow-up ana claimed.
    other = make_staff(w.tampa, "tim")
    r = client_for(other).post(f"/staff/tickets/{t.pk}/", {"action": "answer", "answer": "Mine"})
    assert r.status_code == 400 and b"has claimed" in r.content
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/staff/tickets/{t.pk}/", {"action": "answer", "answer": "Saturday at 10."})
    assert r.status_code == 302
    t.refresh_from_db()
    assert t.status == "answered" and t.answer == "Saturday at 10." and t.answered_at is not None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["pat@example.org"] and "Saturday at 10." in mail.outbox[0].body
    assert client.post(f"/staff/tickets/{t.pk}/", {"action": "answer", "answer": "again"}).status_code == 400
    assert len(mail.outbox) == 1
    assert client.post(f"/staff/tickets/{t.pk}/", {"action": "close"}).status_code == 302
    t.refresh_from_db()
    assert t.status == "closed"
    assert "When is the book sale?" in client.get("/staff/tickets/?status=closed").content.decode()
    assert "When is the book sale?" not in client.get("/staff/tickets/").content.decode()


def test_an_empty_answer_is_refused_and_mails_nothing(w: World, django_capture_on_commit_callbacks: Any) -> None:
    t = ticket(w.alpha, w.tampa)
    with django_capture_on_commit_callbacks(execute=True):
        r = client_for(w.ana).post(f"/staff/tickets/{t.pk}/", {"action": "answer", "answer": "  "})
    assert r.status_code == 400
    assert mail.outbox == []


def test_a_referral_lands_in_the_home_librarys_list(w: World, django_capture_on_commit_callbacks: Any) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.otto, state=ChatState.ACTIVE, question="Deed records 1890?")
    with django_capture_on_commit_callbacks(execute=True):
        made = followups.chat_refer(w.otto, chat.pk, timezone.now(), library_slug=None, note="needs the archive")
    listing = client_for(w.ana).get("/staff/tickets/").content.decode()
    assert "Deed records 1890?" in listing and "referred by Otto" in listing
    page = client_for(w.ana).get(f"/staff/tickets/{made.pk}/").content.decode()
    assert "needs the archive" in page
    assert mail.outbox and mail.outbox[0].to == ["pat@example.org"]  # the confirmation
    assert "Deed records 1890?" not in client_for(w.otto).get("/staff/tickets/").content.decode()


# --- history ------------------------------------------------------------------------------------


def test_history_is_own_chats_and_the_librarys_patrons_within_retention(w: World) -> None:
    own_elsewhere = chat_in(w.alpha, w.orlando, librarian=w.ana, question="Ana answered Orlando")
    home = chat_in(w.alpha, w.tampa, librarian=w.otto, question="Otto answered Tampa")
    unrelated = chat_in(w.alpha, w.orlando, librarian=w.otto, question="Orlando to Orlando")
    foreign = chat_in(w.beta, w.miami, librarian=w.bea, question="Miami chat")
    old = chat_in(w.alpha, w.tampa, librarian=w.ana, question="Too old", age_days=91)
    live = chat_in(w.alpha, w.tampa, librarian=w.ana, question="Still going", state=ChatState.ACTIVE)
    client = client_for(w.ana)
    listing = client.get("/staff/history/").content.decode()
    assert "Ana answered Orlando" in listing and "Otto answered Tampa" in listing
    for absent in ("Orlando to Orlando", "Miami chat", "Too old", "Still going"):
        assert absent not in listing
    assert client.get(f"/staff/history/{own_elsewhere.pk}/").status_code == 200
    assert client.get(f"/staff/history/{home.pk}/").status_code == 200
    for other in (unrelated, foreign, old):
        assert client.get(f"/staff/history/{other.pk}/").status_code == 404
    assert live.pk


def test_history_search_finds_lines_and_shows_internal_notes_to_staff(w: World) -> None:
    chat = chat_in(w.alpha, w.tampa, librarian=w.ana, question="Passes")
    Message.objects.create(chat=chat, seq=2, sender="librarian", librarian=w.ana, name="Ana",
                           body="Try the zoo pass <b>now</b>", at=timezone.now())
    Message.objects.create(chat=chat, seq=3, sender="librarian", librarian=w.ana, name="Ana", internal=True,
                           body="patron seemed unsure", at=timezone.now())
    chat_in(w.alpha, w.tampa, librarian=w.ana, question="Something else")
    client = client_for(w.ana)
    found = client.get("/staff/history/?q=zoo").content.decode()
    assert "Passes" in found and "Something else" not in found
    transcript = client.get(f"/staff/history/{chat.pk}/").content.decode()
    assert "Try the zoo pass &lt;b&gt;now&lt;/b&gt;" in transcript  # shown as text
    assert "Internal note" in transcript and "patron seemed unsure" in transcript
