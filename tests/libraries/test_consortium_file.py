"""The consortium file: validation, import (all or nothing, idempotent, in place), prune, export."""

from __future__ import annotations

import copy
import datetime as dt
import re
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from consortium.models import Consortium
from libraries.consortium_file.export import export
from libraries.consortium_file.validate import normalize, validate
from libraries.consortium_file.yaml_text import load_yaml
from libraries.models import (
    Closure,
    Library,
    LibraryPartner,
    Queue,
    SpecialHours,
    StaffProfile,
    WeeklyInterval,
)

DEMO_FILE = Path(__file__).resolve().parents[2] / "deploy" / "demo-consortium.yaml"
PW = "Secret-pw-123"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]  # these tests hash dozens


# -- helpers ------------------------------------------------------------------------------------


def world() -> dict[str, Any]:
    """A small but complete consortium: every part of the format at least once."""
    week = {"mon": ["09:00-12:00", "13:00-17:00"], "tue": ["09:00-17:00"], "sat": ["10:00-24:00"]}
    return {
        "consortium": {"slug": "gulf", "name": "Gulf Coast Ask", "timezone": "America/New_York",
                       "allowed_origins": ["https://www.gulf.example.org"],
                       "settings": {"local_timeout": 30, "max_wait": 300}},
        "queues": [
            {"slug": "statewide", "name": "Statewide", "mode": "broadcast", "hours": "always"},
            {"slug": "spanish", "name": "Español", "languages": ["es"],
             "hours": {"mon": ["10:00-18:00"], "tue": ["10:00-18:00"]}},
        ],
        "libraries": [
            {"slug": "tampa", "name": "Tampa Library", "kind": "public", "timezone": "America/New_York",
             "zip_codes": ["33602", "33603"], "partners": ["stpete", "pcola"], "fallback": "statewide",
             "mode": "broadcast", "local_timeout": 30, "hours": week,
             "closures": [{"date": "2026-12-25", "reason": "Christmas"},
                          {"from": "2026-12-31", "to": "2027-01-01", "reason": "New Year"}],
             "special_hours": [{"date": "2026-12-24", "hours": ["09:00-12:00"]}],
             "policy": "Library cards are free to county residents.\n\n- Renew twice.\n",
             "policy_reviewed": "2025-01-15", "city": "Tampa", "website": "https://tampa.example.org",
             "key_links": [{"title": "Catalog", "url": "https://catalog.tampa.example.org"}],
             "route": [{"name": "local", "queues": ["tampa"], "wait": 30},
                       {"name": "partners", "queues": ["stpete", "pcola"], "wait": 60},
                       {"name": "consortium", "queues": ["statewide"]}]},
            {"slug": "stpete", "name": "St. Pete Library", "timezone": "America/New_York",
             "partners": ["tampa"], "hours": {"mon": ["09:00-20:00"], "fri": ["09:00-17:00"]}},
            {"slug": "pcola", "name": "Pensacola Library", "kind": "public", "timezone": "America/Chicago",
             "zip_codes": ["32501"], "hours": "always", "mode": "direct"},
        ],
        "staff": [
            {"username": "ana", "name": "Ana Ruiz", "email": "ana@example.org", "library": "tampa",
             "role": "librarian", "queues": ["statewide", "spanish"], "capacity": 3,
             "languages": ["en", "es"], "password": PW},
            {"username": "bob", "name": "Bob Stone", "email": "bob@example.org", "library": "stpete",
             "queues": ["statewide"], "password": PW},
            {"username": "cora", "name": "Cora Coordinator", "library": "pcola", "role": "coordinator",
             "password": PW},
            {"username": "dan", "name": "Dan New", "email": "dan@example.org", "library": "stpete"},
        ],
    }


def write(tmp_path: Path, data: dict[str, Any], name: str = "consortium.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_consortium", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(path: Path, *args: str) -> tuple[str, str]:
    err = StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_consortium", str(path), *args, stdout=StringIO(), stderr=err)
    return str(info.value), err.getvalue()


MODELS = (Consortium, Queue, Library, LibraryPartner, WeeklyInterval, Closure, SpecialHours, StaffProfile,
          User, StaffProfile.queues.through)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table an import may write, ids included."""
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in MODELS}  # type: ignore[attr-defined]


def without_passwords(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for s in doc["staff"]:
        s.pop("password", None)
    return doc


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]


# -- validation: everything at once, each with its path ---------------------------------------


def test_five_errors_are_all_reported_with_paths_and_nothing_is_written(tmp_path: Path) -> None:
    run(write(tmp_path, world(), "good.yaml"))
    before = snapshot()
    bad = world()
    bad["consortium"]["timezone"] = "Florida/Tampa"
    bad["libraries"][1]["hours"]["tue"] = ["9-17"]
    bad["libraries"][0]["partners"] = ["stpete", "orlando"]
    bad["libraries"][2]["colour"] = "blue"
    bad["staff"][3]["capacity"] = 0
    bad["libraries"][0]["name"] = "Renamed Tampa"  # an edit that alone would be fine is not applied either
    message, err = failing(write(tmp_path, bad, "bad.yaml"))

    lines = err.strip().splitlines()
    tz = 'consortium.timezone: "Florida/Tampa" is not an IANA time zone name (like America/New_York)'
    assert tz in lines
    assert 'libraries[1].hours.tue[0]: "9-17" is not HH:MM-HH:MM' in lines
    assert 'libraries[0].partners[1]: "orlando" is not a library of this file' in lines
    assert any(line.startswith("libraries[2].colour: unknown key") for line in lines)
    assert any(line.startswith("staff[3].capacity: must be a whole number") for line in lines)
    assert len(lines) == 5
    assert "5 problems" in message and "nothing was imported" in message
    assert snapshot() == before


def test_errors_on_an_empty_database_create_nothing(tmp_path: Path) -> None:
    bad = world()
    bad["queues"][0]["hours"] = {"mon": ["17:00-09:00"], "funday": ["09:00-10:00"]}
    failing(write(tmp_path, bad))
    assert all(not rows for rows in snapshot().values())


@pytest.mark.parametrize(("change", "expected"), [
    (lambda w: w["queues"].append({"slug": "tampa", "name": "Clash"}),
     "queues[2].slug: \"tampa\" is also a library's slug"),
    (lambda w: w["libraries"][0]["route"][2].update(wait=10),
     "libraries[0].route[2].wait: the last step waits as long as it takes"),
    (lambda w: w["libraries"][0]["route"][0].pop("wait"),
     "libraries[0].route[0].wait: is required on every step but the last"),
    (lambda w: w["libraries"][0]["route"][1]["queues"].append("nowhere"),
     'libraries[0].route[1].queues[2]: "nowhere" is neither a library nor a shared queue'),
    (lambda w: w["libraries"][2]["zip_codes"].append("33602"),
     'libraries[2].zip_codes[1]: ZIP code "33602" is already at libraries[0].zip_codes[0]'),
    (lambda w: w["libraries"][2]["zip_codes"].append(33604),
     'libraries[2].zip_codes[1]: write ZIP codes in quotes ("33604")'),
    (lambda w: w["consortium"]["allowed_origins"].append("https://example.org/widget"),
     'consortium.allowed_origins[1]: "https://example.org/widget" is not an origin'),
    (lambda w: w["consortium"]["allowed_origins"].append("ftp://example.org"),
     'consortium.allowed_origins[1]: "ftp://example.org" is not an origin'),
    (lambda w: w["consortium"]["settings"].update(max_wiat=5),
     'consortium.settings.max_wiat: unknown key (did you mean "max_wait"?)'),
    (lambda w: w["consortium"]["settings"].update(local_timeout=True),
     "consortium.settings.local_timeout: must be a whole number from 1"),
    (lambda w: w["libraries"][1]["hours"].update(funday=["09:00-10:00"]),
     'libraries[1].hours.funday: "funday" is not a weekday'),
    (lambda w: w["libraries"][1]["hours"].update(mon=["09:00-13:00", "12:00-14:00"]),
     'libraries[1].hours.mon[1]: "12:00-14:00" overlaps "09:00-13:00"'),
    (lambda w: w["libraries"][0]["closures"].append({"from": "2027-01-05", "to": "2027-01-02"}),
     "libraries[0].closures[2].to: 2027-01-02 is before from (2027-01-05)"),
    (lambda w: w["libraries"][0]["closures"].append({"date": "2027-02-30"}),
     'libraries[0].closures[2].date: "2027-02-30" is not a date that exists'),
    (lambda w: w["libraries"][0]["special_hours"].append({"date": "2026-12-24", "hours": []}),
     "libraries[0].special_hours[1].date: date 2026-12-24 is already at libraries[0].special_hours[0].date"),
    (lambda w: w["staff"][0]["queues"].append("stpete"),
     'staff[0].queues[2]: "stpete" is a library'),
    (lambda w: w["libraries"][0].update(fallback="spanosh"),
     'libraries[0].fallback: "spanosh" is not a shared queue of this file'),
    (lambda w: w["libraries"][2].update(partners=["pcola"]),
     "libraries[2].partners[0]: a library cannot be its own partner"),
    (lambda w: w["libraries"].append(dict(w["libraries"][2], zip_codes=[])),
     'libraries[3].slug: library "pcola" is already at libraries[2].slug'),
    (lambda w: w["staff"].append({"username": "ANA", "library": "tampa"}),
     'staff[4].username: username "ANA" is already at staff[0].username'),
    (lambda w: w["libraries"][1].update(slug="St Pete"),
     'libraries[1].slug: "St Pete" is not a slug'),
    (lambda w: w["staff"][0].update(email="ana-at-example"),
     'staff[0].email: "ana-at-example" is not an email address'),
    (lambda w: w["staff"][0].update(languages=["english"]),
     'staff[0].languages[0]: "english" is not a language code'),
    (lambda w: w["queues"].clear(),
     "queues: a consortium needs at least one shared queue"),
    (lambda w: w["staff"][1].update(role="boss"),
     'staff[1].role: "boss" is not one of: librarian, library_admin, coordinator'),
    (lambda w: w["libraries"][0].update(kind="bookmobile"),
     'libraries[0].kind: "bookmobile" is not one of: public, academic, school, special, law'),
    (lambda w: w["libraries"][0].update(policy_reviewed="last year"),
     'libraries[0].policy_reviewed: must be a date YYYY-MM-DD, not the text "last year"'),
])
def test_validation_problems(change: Any, expected: str) -> None:
    data = world()
    change(data)
    problems = [str(p) for p in validate(data)]
    assert any(p.startswith(expected) for p in problems), problems


def test_valid_files_have_no_problems() -> None:
    assert validate(world()) == []
    assert validate(load_yaml(DEMO_FILE.read_text(encoding="utf-8"))) == []


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("consortium:\n  slug: gulf\n  name: [Gulf Coast\nqueues: []\n", encoding="utf-8")
    message, _ = failing(path)
    assert "YAML syntax error" in message
    assert re.search(r"line \d+, column \d+", message), message
    assert not Consortium.objects.exists()


def test_a_key_given_twice_is_a_syntax_error_not_a_silent_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("consortium:\n  slug: a\n  slug: b\n", encoding="utf-8")
    message, _ = failing(path)
    assert "line 3" in message and "found the key 'slug' twice" in message


def test_a_file_that_is_not_a_mapping() -> None:
    assert [str(p) for p in validate(["consortium"])] == [
        "the file must be a mapping with the keys consortium, queues, libraries and staff, not a list"]


def test_an_empty_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    _, err = failing(path)
    assert "the file is empty" in err


# -- import -------------------------------------------------------------------------------------


def test_import_creates_the_consortium(tmp_path: Path) -> None:
    out, _ = run(write(tmp_path, world()))
    assert "Consortium gulf: created." in out
    c = Consortium.objects.get(slug="gulf")
    assert (c.local_timeout, c.max_wait, c.partner_timeout) == (30, 300, 60)
    tampa = Library.objects.get(consortium=c, slug="tampa")
    assert [p.slug for p in tampa.partner_libraries()] == ["stpete", "pcola"]
    assert tampa.consortium_queue == Queue.objects.get(consortium=c, slug="statewide")
    assert tampa.route[2] == {"name": "consortium", "queues": ["statewide"], "wait": None}
    assert tampa.policy_reviewed_on == dt.date(2025, 1, 15)
    local = Queue.objects.get(library=tampa)
    assert (local.slug, local.kind, local.timezone) == ("tampa", "local", "America/New_York")
    assert not local.always_open
    assert sorted((w.weekday, w.start_minute, w.end_minute) for w in local.weekly.all()) == [
        (0, 540, 720), (0, 780, 1020), (1, 540, 1020), (5, 600, 1440)]
    assert [(x.start_date, x.end_date) for x in local.closures.all()] == [
        (dt.date(2026, 12, 25), dt.date(2026, 12, 25)), (dt.date(2026, 12, 31), dt.date(2027, 1, 1))]
    assert local.special_hours.get().intervals == [[540, 720]]
    pcola = Queue.objects.get(library__slug="pcola")
    assert (pcola.always_open, pcola.mode, pcola.timezone) == (True, "direct", "America/Chicago")
    spanish = Queue.objects.get(slug="spanish")
    assert (spanish.kind, spanish.position, spanish.languages) == ("shared", 1, ["es"])
    ana = StaffProfile.objects.get(user__username="ana")
    assert ana.library == tampa and ana.capacity == 3 and ana.languages == ["en", "es"]
    assert sorted(q.slug for q in ana.queues.all()) == ["spanish", "statewide"]
    assert ana.display_name == "Ana Ruiz"
    assert StaffProfile.objects.get(user__username="cora").role == "coordinator"


def test_reimporting_the_same_file_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, world())
    run(path)
    before = snapshot()
    with CaptureQueriesContext(connection) as queries:
        out, _ = run(path)
    assert writes(queries) == [], "a re-import must not touch a single row"
    assert snapshot() == before
    assert "Consortium gulf: unchanged." in out
    assert "shared queues: 0 created, 0 updated, 2 unchanged" in out
    assert "libraries: 0 created, 0 updated, 3 unchanged" in out
    assert "staff: 0 created, 0 updated, 4 unchanged" in out
    assert "Nothing changed." in out


def test_an_edited_file_updates_in_place(tmp_path: Path) -> None:
    run(write(tmp_path, world()))
    ids = {lib.slug: lib.pk for lib in Library.objects.all()}
    queue_ids = {q.slug: q.pk for q in Queue.objects.all()}
    user_ids = {u.username: u.pk for u in User.objects.all()}
    link_ids = set(LibraryPartner.objects.values_list("pk", flat=True))

    edited = world()
    edited["libraries"][1]["hours"]["mon"] = ["10:00-19:00"]
    edited["libraries"][0]["partners"] = ["pcola", "stpete"]
    edited["staff"][1]["capacity"] = 5
    out, _ = run(write(tmp_path, edited))

    assert "libraries: 0 created, 2 updated, 1 unchanged" in out
    assert "updated: stpete, tampa" in out
    assert "staff: 0 created, 1 updated, 3 unchanged" in out and "updated: bob" in out
    assert "shared queues: 0 created, 0 updated, 2 unchanged" in out
    assert {lib.slug: lib.pk for lib in Library.objects.all()} == ids
    assert {q.slug: q.pk for q in Queue.objects.all()} == queue_ids
    assert {u.username: u.pk for u in User.objects.all()} == user_ids
    assert set(LibraryPartner.objects.values_list("pk", flat=True)) == link_ids, "reordered, not recreated"
    tampa = Library.objects.get(slug="tampa")
    assert [p.slug for p in tampa.partner_libraries()] == ["pcola", "stpete"]
    stpete_mon = WeeklyInterval.objects.filter(queue__slug="stpete", weekday=0)
    assert [(w.start_minute, w.end_minute) for w in stpete_mon] == [(600, 1140)]
    assert StaffProfile.objects.get(user__username="bob").capacity == 5


def test_missing_rows_are_listed_and_pruning_deactivates_without_deleting(tmp_path: Path) -> None:
    full = write(tmp_path, world(), "full.yaml")
    run(full)
    smaller = world()
    smaller["libraries"] = [lib for lib in smaller["libraries"] if lib["slug"] != "pcola"]
    tampa = smaller["libraries"][0]
    tampa["partners"] = ["stpete"]
    tampa["route"][1]["queues"] = ["stpete"]
    smaller["queues"] = smaller["queues"][:1]
    smaller["staff"] = [s for s in smaller["staff"] if s["username"] in ("ana", "bob")]
    smaller["staff"][0]["queues"] = ["statewide"]
    path = write(tmp_path, smaller, "smaller.yaml")

    out, _ = run(path)
    assert "not in the file, left as they are (--prune deactivates them): pcola" in out
    assert "not in the file, left as they are (--prune deactivates them): spanish" in out
    assert "not in the file, left as they are (--prune deactivates them): cora, dan" in out
    assert Library.objects.get(slug="pcola").is_active
    assert User.objects.get(username="cora").is_active

    out, _ = run(path, "--prune")
    assert "deactivated (not in the file; --prune): pcola" in out
    assert "deactivated (not in the file; --prune): cora, dan" in out
    pcola = Library.objects.get(slug="pcola")
    assert not pcola.is_active and not Queue.objects.get(library=pcola).is_active
    assert not Queue.objects.get(slug="spanish").is_active
    for username in ("cora", "dan"):
        assert not User.objects.get(username=username).is_active
        assert not StaffProfile.objects.get(user__username=username).is_active
    assert Library.objects.count() == 3 and StaffProfile.objects.count() == 4, "never deleted"

    out, _ = run(path, "--prune")
    assert "Nothing changed." in out and "deactivated" not in out

    out, _ = run(full)  # back in the file: active again
    assert Library.objects.get(slug="pcola").is_active and User.objects.get(username="cora").is_active
    assert StaffProfile.objects.get(user__username="dan").is_active


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    out, _ = run(write(tmp_path, world()), "--dry-run")
    assert out.startswith("Dry run, nothing written. Consortium gulf: created.")
    assert all(not rows for rows in snapshot().values())


# -- passwords and accounts ---------------------------------------------------------------------


def test_passwords_are_hashed_and_accounts_without_one_get_a_link(tmp_path: Path) -> None:
    out, _ = run(write(tmp_path, world()), "--base-url", "https://ask.example.org/")
    for username in ("ana", "bob", "cora"):
        user = User.objects.get(username=username)
        assert user.check_password(PW)
        assert PW not in user.password and user.password.startswith("md5$")
    dan = User.objects.get(username="dan")
    assert not dan.has_usable_password()
    links = re.findall(r"dan: (https://ask\.example\.org/accounts/reset/([^/]+)/([^/]+)/)", out)
    assert len(links) == 1, out
    _, uid, token = links[0]
    assert force_str(urlsafe_base64_decode(uid)) == str(dan.pk)
    assert default_token_generator.check_token(dan, token)
    assert "ana:" not in out


def test_quiet_prints_only_links(tmp_path: Path) -> None:
    out, _ = run(write(tmp_path, world()), "--quiet")
    lines = out.strip().splitlines()
    assert lines[0].startswith("Set-password links")
    assert len(lines) == 2 and lines[1].startswith("  dan: http://127.0.0.1:8000/accounts/reset/")


def test_a_changed_password_in_the_file_is_set_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    run(write(tmp_path, world()))
    edited = world()
    edited["staff"][0]["password"] = "Another-pw-456"
    edited["staff"][1].pop("password")  # left out: the account keeps the password it has
    out, _ = run(write(tmp_path, edited))
    assert "staff: 0 created, 1 updated, 3 unchanged" in out and "updated: ana" in out
    assert User.objects.get(username="ana").check_password("Another-pw-456")
    assert User.objects.get(username="bob").check_password(PW)


def test_coordinators_and_library_admins_may_sign_in_to_the_admin(tmp_path: Path) -> None:
    run(write(tmp_path, world()))
    assert User.objects.get(username="cora").is_staff
    assert not User.objects.get(username="ana").is_staff
    assert not User.objects.filter(is_superuser=True).exists()


def test_a_username_of_another_consortium_is_refused(tmp_path: Path) -> None:
    run(write(tmp_path, world(), "gulf.yaml"))
    other = world()
    other["consortium"]["slug"] = "keys"
    other["staff"] = [other["staff"][1], other["staff"][0]]  # ana is now staff[1]
    before = snapshot()
    message, err = failing(write(tmp_path, other, "keys.yaml"))
    lines = err.strip().splitlines()
    assert 'staff[0].username: "bob" belongs to the staff of another consortium ("gulf")' in lines
    assert 'staff[1].username: "ana" belongs to the staff of another consortium ("gulf")' in lines
    assert "nothing was imported" in message
    assert snapshot() == before


def test_a_username_of_an_account_that_is_not_staff_is_refused(tmp_path: Path) -> None:
    User.objects.create_superuser("root", "root@example.org", PW)
    data = world()
    data["staff"][2]["username"] = "root"
    _, err = failing(write(tmp_path, data))
    assert 'staff[2].username: "root" is an existing account that is not staff of any library' in err
    assert not Consortium.objects.exists()


# -- export and round trips ---------------------------------------------------------------------


def local_today(tz: str) -> str:
    return dt.datetime.now(ZoneInfo(tz)).date().isoformat()


def conformance_worlds() -> list[dict[str, Any]]:
    """As /work/shared/conformance/conftest.py builds them (basic_world), dates as text."""
    tz, pw = "America/New_York", "Conformance-pw-1"
    settings = {"local_timeout": 3, "partner_timeout": 3, "offer_timeout": 3, "max_wait": 60,
                "reconnect_grace": 3, "patron_grace": 3, "idle_timeout": 600, "librarian_capacity": 3}

    def staff(username: str, library: str, role: str = "librarian", **extra: Any) -> dict[str, Any]:
        return {"username": username, "name": username.upper(), "email": f"{username}@example.org",
                "library": library, "role": role, "password": pw, **extra}

    def library(slug: str, **extra: Any) -> dict[str, Any]:
        return {"slug": slug, "name": f"{slug.title()} Library", "kind": "public", "timezone": tz,
                "hours": "always", **extra}

    statewide = {"slug": "statewide", "name": "Statewide", "hours": "always"}
    return [
        {"consortium": {"slug": "pub-local", "name": "Local first", "timezone": tz, "settings": settings},
         "queues": [statewide],
         "libraries": [library("alpha", zip_codes=["10001"], partners=["beta"]), library("beta")],
         "staff": [staff("pl-a1", "alpha"), staff("pl-b1", "beta", queues=["statewide"]),
                   staff("pl-coord", "alpha", role="coordinator")]},
        {"consortium": {"slug": "pub-closed", "name": "Closed home", "timezone": tz, "settings": settings},
         "queues": [statewide],
         "libraries": [library("gamma", partners=["beta"],
                               closures=[{"date": local_today(tz), "reason": "Test closure"}]),
                       library("beta")],
         "staff": [staff("pc-g1", "gamma"), staff("pc-b1", "beta"),
                   staff("pc-coord", "beta", role="coordinator")]},
    ]


def test_conformance_style_files_import(tmp_path: Path) -> None:
    for i, data in enumerate(conformance_worlds()):
        text = yaml.safe_dump(data, sort_keys=False)  # as vrclient.consortium_file writes them
        path = tmp_path / f"w{i}.yaml"
        path.write_text(text, encoding="utf-8")
        run(path)
    assert Consortium.objects.get(slug="pub-local").local_timeout == 3
    assert Queue.objects.get(consortium__slug="pub-local", slug="alpha").always_open
    gamma = Queue.objects.get(consortium__slug="pub-closed", slug="gamma")
    assert gamma.closures.get().start_date.isoformat() == local_today("America/New_York")
    # Two consortia may both have a library "beta": slugs are per consortium.
    assert Library.objects.filter(slug="beta").count() == 2
    assert User.objects.get(username="pl-a1").check_password("Conformance-pw-1")


def demo_file() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(DEMO_FILE.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("make", [world, demo_file, lambda: conformance_worlds()[1]],
                         ids=["small", "demo", "conformance"])
def test_import_export_import_is_a_no_op(tmp_path: Path, make: Any) -> None:
    data = make()
    run(write(tmp_path, data, "in.yaml"))
    slug = data["consortium"]["slug"]
    exported = export(Consortium.objects.get(slug=slug))
    assert exported == without_passwords(normalize(data))

    out_path = tmp_path / "out.yaml"
    call_command("export_consortium", slug, "-o", str(out_path))
    text = out_path.read_text(encoding="utf-8")
    assert not re.search(r"^[\s-]*password:", text, re.MULTILINE) and PW not in text
    assert load_yaml(out_path.read_text(encoding="utf-8")) == exported
    before = snapshot()
    with CaptureQueriesContext(connection) as queries:
        out, _ = run(out_path)
    assert "Nothing changed." in out
    assert writes(queries) == []
    assert snapshot() == before


def test_export_to_stdout_and_unknown_slug(tmp_path: Path) -> None:
    run(write(tmp_path, world()))
    out = StringIO()
    call_command("export_consortium", "gulf", stdout=out)
    text = out.getvalue()
    assert text.startswith("# Consortium file")
    assert "policy: |" in text, "Markdown policies are written as readable blocks"
    assert "- {date: 2026-12-25, reason: Christmas}" in text
    with pytest.raises(CommandError, match='no consortium "nope"'):
        call_command("export_consortium", "nope", stdout=StringIO())


def test_demo_file_and_banner(tmp_path: Path) -> None:
    out, _ = run(DEMO_FILE, "--quiet")
    assert out == "", "every demo account has a password: no links to print"
    c = Consortium.objects.get(slug="sunshine")
    assert c.timezone == "America/New_York"
    demo_origins = {"http://127.0.0.1:8000", "http://localhost:8000", "http://127.0.0.1:8001"}
    assert demo_origins <= set(c.allowed_origins)
    assert Library.objects.filter(consortium=c).count() >= 10
    assert {lib.timezone for lib in Library.objects.filter(consortium=c)} == {"America/New_York",
                                                                               "America/Chicago"}
    roles = list(StaffProfile.objects.filter(library__consortium=c).values_list("role", flat=True))
    assert roles.count("coordinator") == 2 and "library_admin" in roles and len(roles) >= 25
    assert [q.slug for q in Queue.objects.filter(consortium=c, kind="shared").order_by("position")] == [
        "statewide", "spanish", "after-hours"]

    banner = StringIO()
    call_command("demo_banner", "--port", "8001", stdout=banner)
    text = banner.getvalue()
    assert "http://127.0.0.1:8001/ask/sunshine/" in text and "/staff/" in text and "/admin/" in text
    assert "demo-password-1" in text and "coordinator" in text
    assert len(text.splitlines()) < 25, "short and friendly"


def test_a_library_may_keep_transcripts_for_its_own_number_of_days(tmp_path: Path) -> None:
    data = world()
    data["libraries"][2]["transcript_retention_days"] = 30
    run(write(tmp_path, data))
    assert Library.objects.get(slug="pcola").transcript_retention_days == 30
    assert Library.objects.get(slug="tampa").transcript_retention_days is None, "absent: the consortium's"
    exported = export(Consortium.objects.get(slug="gulf"))
    by_slug = {lib["slug"]: lib for lib in exported["libraries"]}
    assert by_slug["pcola"]["transcript_retention_days"] == 30
    assert "transcript_retention_days" not in by_slug["tampa"]
    assert exported == normalize(without_passwords(data)), "the key round-trips like the others"

    data["libraries"][2]["transcript_retention_days"] = 0
    assert [str(p) for p in validate(data)] == [
        "libraries[2].transcript_retention_days: must be a whole number from 1 to 36500, not the number 0"]


@pytest.mark.django_db
def test_consortium_colours_are_imported_checked_and_exported(tmp_path: Path) -> None:
    data = world()
    data["consortium"]["colors"] = {"accent": "#0B5E7E"}
    run(write(tmp_path, data))
    consortium = Consortium.objects.get(slug=data["consortium"]["slug"])
    assert (consortium.accent_color, consortium.accent_text_color) == ("#0b5e7e", "#ffffff")
    assert export(consortium)["consortium"]["colors"] == {"accent": "#0b5e7e", "accent_text": "#ffffff"}
    data["consortium"]["colors"] = {"accent": "teal", "shadow": "#000000"}
    _message, errors = failing(write(tmp_path, data, "bad.yaml"))
    assert 'consortium.colors.accent: "teal" is not a colour like #1d4ed8' in errors
    assert "consortium.colors.shadow" in errors


def test_follow_up_deadlines_and_the_head_start_are_imported_checked_and_exported(tmp_path: Path) -> None:
    """Issue 17: the consortium's follow-up hours and head start in `settings`, a library's own due hours."""
    data = world()
    data["consortium"]["settings"].update({"followup_due_hours": 48, "returning_head_start": 15})
    data["libraries"][1]["followup_due_hours"] = 24
    run(write(tmp_path, data))
    consortium = Consortium.objects.get(slug="gulf")
    assert (consortium.followup_due_hours, consortium.followup_reminder_hours, consortium.returning_head_start) == (
        48, 24, 15)
    assert Library.objects.get(slug="stpete").followup_due_hours == 24
    assert Library.objects.get(slug="tampa").followup_due_hours is None
    exported = export(consortium)
    assert exported["consortium"]["settings"]["followup_due_hours"] == 48
    assert {lib["slug"]: lib.get("followup_due_hours") for lib in exported["libraries"]} == {
        "pcola": None, "stpete": 24, "tampa": None}
    data["libraries"][1]["followup_due_hours"] = 0
    _message, errors = failing(write(tmp_path, data, "bad.yaml"))
    assert "followup_due_hours: must be a whole number from 1" in errors


@pytest.mark.django_db
def test_alert_settings_are_imported_checked_exported_and_left_out_for_the_defaults(tmp_path: Path) -> None:
    from consortium.models import AlertSettings, alert_settings_of

    data = world()
    data["consortium"]["alerts"] = {"queue_unstaffed_minutes": 5, "mail": False}
    run(write(tmp_path, data))
    consortium = Consortium.objects.get(slug=data["consortium"]["slug"])
    found = alert_settings_of(consortium)
    assert (found.queue_unstaffed_minutes, found.mail, found.followup_overdue_hours) == (5, False, 48)
    assert export(consortium)["consortium"]["alerts"] == {
        "mail": False, "queue_unstaffed_minutes": 5, "unstaffed_percent": 25, "unstaffed_min_chats": 3,
        "shift_absent_minutes": 10, "followup_overdue_hours": 48}
    assert export(consortium) == without_passwords(normalize(data))

    del data["consortium"]["alerts"]  # left out: the defaults again
    run(write(tmp_path, data, "again.yaml"))
    assert not AlertSettings.objects.filter(consortium=consortium).exists()
    assert "alerts" not in export(consortium)["consortium"]

    data["consortium"]["alerts"] = {"unstaffed_percent": 120, "mail": "yes", "queue_unstaffed": 3}
    _message, errors = failing(write(tmp_path, data, "bad.yaml"))
    assert "consortium.alerts.unstaffed_percent: must be a whole number from 1 to 100, not the number 120" in errors
    assert 'consortium.alerts.mail: must be true or false, not the text "yes"' in errors
    assert 'consortium.alerts.queue_unstaffed: unknown key (did you mean "queue_unstaffed_minutes"?)' in errors
