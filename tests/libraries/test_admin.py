"""The admin, scoped by staff role: coordinators see their consortium, library admins their library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consortium.models import Consortium
from libraries.models import Library, LibraryPartner, Queue, StaffProfile, WeeklyInterval
from libraries.services import library_create_local_queue
from routing.models import Chat, Ticket, TraceEvent
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff

pytestmark = pytest.mark.usefixtures("fast_password_hashing")  # every test makes several accounts


@dataclass
class World:
    alpha: Consortium
    beta: Consortium
    statewide: Queue
    spanish: Queue
    beta_statewide: Queue
    tampa: Library
    orlando: Library
    miami: Library
    coordinator: StaffProfile
    library_admin: StaffProfile
    librarian: StaffProfile
    orlando_librarian: StaffProfile
    beta_coordinator: StaffProfile


@pytest.fixture
def world(db: Any) -> World:
    alpha, beta = make_consortium("alpha"), make_consortium("beta")
    statewide, spanish = make_shared_queue(alpha, "statewide"), make_shared_queue(alpha, "spanish")
    beta_statewide = make_shared_queue(beta, "statewide")
    tampa, orlando = make_library(alpha, "tampa"), make_library(alpha, "orlando")
    miami = make_library(beta, "miami")
    return World(
        alpha=alpha, beta=beta, statewide=statewide, spanish=spanish, beta_statewide=beta_statewide,
        tampa=tampa, orlando=orlando, miami=miami,
        coordinator=make_staff(tampa, "cora", role="coordinator"),
        library_admin=make_staff(tampa, "lia", role="library_admin"),
        librarian=make_staff(tampa, "leo"),
        orlando_librarian=make_staff(orlando, "olga"),
        beta_coordinator=make_staff(miami, "bob", role="coordinator"),
    )


def client_for(profile: StaffProfile) -> Client:
    client = Client()
    client.force_login(profile.user)
    return client


def url(name: str, *args: Any) -> str:
    # Quoted as the admin's own links are: a chat id may hold "_3C", which the admin reads as "<".
    return reverse(f"admin:{name}", args=[quote(a) for a in args])


def form_data(response: Any) -> dict[str, Any]:
    """What the browser would post back for an admin change or add page, unchanged."""
    data: dict[str, Any] = {}

    def add(form: forms.BaseForm) -> None:
        for name, field in form.fields.items():
            bound = form[name]
            value = bound.value()
            if isinstance(field, forms.BooleanField):
                if value:
                    data[bound.html_name] = "on"
            elif value is None and isinstance(field, forms.ModelMultipleChoiceField):
                continue  # nothing selected: the browser sends no value at all
            elif value is None:
                data[bound.html_name] = ""
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def changelist_pks(client: Client, name: str) -> set[Any]:
    response = client.get(url(name))
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def assert_not_found(response: Any) -> None:
    # The admin answers an object outside the queryset as if it did not exist: a redirect to the
    # index with a message (or a 404), never the object.
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.url == url("index")


def make_chat(consortium: Consortium, library: Library | None = None) -> Chat:
    now = timezone.now()
    chat = Chat.objects.create(consortium=consortium, home_library=library, question="Do you have atlases?",
                               token_hash="x" * 64, created_at=now, arrived_at=now, last_activity_at=now)
    TraceEvent.objects.create(chat=chat, at=now, kind="created", data={"step": "local"})
    return chat


# --- coordinators ----------------------------------------------------------------------------------


def test_coordinator_sees_only_their_consortium(world: World) -> None:
    client = client_for(world.coordinator)
    assert changelist_pks(client, "libraries_library_changelist") == {world.tampa.pk, world.orlando.pk}
    assert changelist_pks(client, "consortium_consortium_changelist") == {world.alpha.pk}
    assert world.beta_statewide.pk not in changelist_pks(client, "libraries_queue_changelist")
    staff = changelist_pks(client, "libraries_staffprofile_changelist")
    assert world.orlando_librarian.pk in staff
    assert world.beta_coordinator.pk not in staff
    users = changelist_pks(client, "auth_user_changelist")
    assert world.librarian.user.pk in users
    assert world.beta_coordinator.user.pk not in users


def test_coordinator_cannot_open_another_consortiums_objects(world: World) -> None:
    client = client_for(world.coordinator)
    assert_not_found(client.get(url("libraries_library_change", world.miami.pk)))
    assert_not_found(client.get(url("consortium_consortium_change", world.beta.pk)))
    assert_not_found(client.get(url("libraries_queue_change", world.beta_statewide.pk)))
    assert_not_found(client.get(url("libraries_staffprofile_change", world.beta_coordinator.pk)))
    assert_not_found(client.get(url("auth_user_change", world.beta_coordinator.user.pk)))
    assert_not_found(client.get(url("auth_user_password_change", world.beta_coordinator.user.pk)))
    world.miami.refresh_from_db()
    response = client.post(url("libraries_library_change", world.miami.pk), {"name": "Taken"})
    assert_not_found(response)
    world.miami.refresh_from_db()
    assert world.miami.name != "Taken"


def test_coordinator_edits_their_library(world: World) -> None:
    client = client_for(world.coordinator)
    page = client.get(url("libraries_library_change", world.orlando.pk))
    assert page.status_code == 200
    data = form_data(page)
    data.update(name="Orlando Public Library", zip_codes='["32801"]', consortium_queue=str(world.spanish.pk))
    response = client.post(url("libraries_library_change", world.orlando.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    world.orlando.refresh_from_db()
    assert world.orlando.name == "Orlando Public Library"
    assert world.orlando.zip_codes == ["32801"]
    assert world.orlando.consortium_queue == world.spanish


def test_coordinator_edits_their_consortium_but_not_its_slug(world: World) -> None:
    client = client_for(world.coordinator)
    page = client.get(url("consortium_consortium_change", world.alpha.pk))
    data = form_data(page)
    assert "slug" not in data
    data.update(max_wait="900", allowed_origins='["https://www.alpha.example.org"]', slug="stolen")
    response = client.post(url("consortium_consortium_change", world.alpha.pk), data)
    assert response.status_code == 302
    world.alpha.refresh_from_db()
    assert (world.alpha.max_wait, world.alpha.slug) == (900, "alpha")
    assert world.alpha.allowed_origins == ["https://www.alpha.example.org"]


def test_coordinator_cannot_add_or_delete_consortia_nor_delete_libraries(world: World) -> None:
    client = client_for(world.coordinator)
    assert client.get(url("consortium_consortium_add")).status_code == 403
    assert client.get(url("consortium_consortium_delete", world.alpha.pk)).status_code == 403
    assert client.get(url("libraries_library_delete", world.tampa.pk)).status_code == 403


def test_coordinator_choices_are_limited_to_their_consortium(world: World) -> None:
    client = client_for(world.coordinator)
    form = client.get(url("libraries_library_add")).context["adminform"].form
    assert list(form.fields["consortium"].queryset) == [world.alpha]
    assert set(form.fields["consortium_queue"].queryset) == {world.statewide, world.spanish}
    staff_form = client.get(url("libraries_staffprofile_add")).context["adminform"].form
    assert set(staff_form.fields["library"].queryset) == {world.tampa, world.orlando}
    assert set(staff_form.fields["queues"].queryset) == {world.statewide, world.spanish}
    queue_form = client.get(url("libraries_queue_add")).context["adminform"].form
    assert list(queue_form.fields["consortium"].queryset) == [world.alpha]


def test_coordinator_cannot_post_a_foreign_choice(world: World) -> None:
    client = client_for(world.coordinator)
    data = form_data(client.get(url("libraries_library_change", world.orlando.pk)))
    data["consortium_queue"] = str(world.beta_statewide.pk)
    response = client.post(url("libraries_library_change", world.orlando.pk), data)
    assert response.status_code == 200
    assert "consortium_queue" in response.context["adminform"].form.errors
    world.orlando.refresh_from_db()
    assert world.orlando.consortium_queue is None


def test_adding_a_library_creates_its_local_queue(world: World) -> None:
    client = client_for(world.coordinator)
    data = form_data(client.get(url("libraries_library_add")))
    data.update(consortium=str(world.alpha.pk), slug="clearwater", name="Clearwater Library", kind="public",
                timezone="America/New_York", zip_codes='["33755"]', key_links="[]", route="", is_active="on")
    data.update({"partner_links-TOTAL_FORMS": "2", "partner_links-0-position": "0",
                 "partner_links-0-partner": str(world.tampa.pk), "partner_links-1-position": "1",
                 "partner_links-1-partner": str(world.orlando.pk)})
    response = client.post(url("libraries_library_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    library = Library.objects.get(consortium=world.alpha, slug="clearwater")
    queue = Queue.objects.get(library=library)
    assert (queue.slug, queue.kind, queue.consortium, queue.timezone) == (
        "clearwater", Queue.Kind.LOCAL, world.alpha, "America/New_York")
    assert library.partner_libraries() == [world.tampa, world.orlando]


def test_a_new_library_cannot_take_a_queue_slug(world: World) -> None:
    client = client_for(world.coordinator)
    data = form_data(client.get(url("libraries_library_add")))
    data.update(consortium=str(world.alpha.pk), slug="statewide", name="Statewide Library", kind="public",
                timezone="America/New_York")
    response = client.post(url("libraries_library_add"), data)
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert not Library.objects.filter(slug="statewide").exists()


def test_library_create_local_queue_is_idempotent(world: World) -> None:
    assert library_create_local_queue(world.tampa) == Queue.objects.get(library=world.tampa)
    assert Queue.objects.filter(library=world.tampa).count() == 1


def test_coordinator_cannot_see_or_reset_a_superusers_account(world: World) -> None:
    operator = make_staff(world.tampa, "root")
    User.objects.filter(pk=operator.user.pk).update(is_superuser=True)
    client = client_for(world.coordinator)
    assert operator.user.pk not in changelist_pks(client, "auth_user_changelist")
    assert_not_found(client.get(url("auth_user_password_change", operator.user.pk)))


def test_coordinator_edits_an_account_without_privilege_fields(world: World) -> None:
    client = client_for(world.coordinator)
    page = client.get(url("auth_user_change", world.librarian.user.pk))
    form = page.context["adminform"].form
    assert not {"is_superuser", "is_staff", "groups", "user_permissions"} & set(form.fields)
    data = form_data(page)
    data.update(email="leo@new.example.org", is_superuser="on", is_staff="on")
    response = client.post(url("auth_user_change", world.librarian.user.pk), data)
    assert response.status_code == 302
    user = User.objects.get(pk=world.librarian.user.pk)
    assert user.email == "leo@new.example.org"
    assert not user.is_superuser
    assert not user.is_staff


# --- chats ----------------------------------------------------------------------------------------


def test_chats_are_read_only_and_scoped(world: World) -> None:
    ours, theirs = make_chat(world.alpha, world.tampa), make_chat(world.beta, world.miami)
    client = client_for(world.coordinator)
    assert changelist_pks(client, "routing_chat_changelist") == {ours.pk}
    page = client.get(url("routing_chat_change", ours.pk))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert b"created" in page.content  # the trace, inline
    assert client.post(url("routing_chat_change", ours.pk), {"question": "changed"}).status_code == 403
    assert client.get(url("routing_chat_add")).status_code == 403
    assert_not_found(client.get(url("routing_chat_change", theirs.pk)))
    ours.refresh_from_db()
    assert ours.question == "Do you have atlases?"


def test_superuser_sees_everything_but_cannot_edit_chats(world: World) -> None:
    chat = make_chat(world.beta)
    root = User.objects.create_superuser("root", "root@example.org", PASSWORD)
    client = Client()
    client.force_login(root)
    assert changelist_pks(client, "libraries_library_changelist") == {world.tampa.pk, world.orlando.pk,
                                                                       world.miami.pk}
    assert client.get(url("routing_chat_change", chat.pk)).context["has_change_permission"] is False


# --- library admins -------------------------------------------------------------------------------


def test_library_admin_sees_only_their_library(world: World) -> None:
    client = client_for(world.library_admin)
    assert changelist_pks(client, "libraries_library_changelist") == {world.tampa.pk}
    assert changelist_pks(client, "libraries_queue_changelist") == {world.tampa.local_queue.pk}
    assert changelist_pks(client, "libraries_staffprofile_changelist") == {
        world.coordinator.pk, world.library_admin.pk, world.librarian.pk}
    index = client.get(url("index"))
    assert index.status_code == 200
    assert b"Consortia" not in index.content


def test_library_admin_is_kept_out_of_everything_else(world: World) -> None:
    client = client_for(world.library_admin)
    assert client.get(url("consortium_consortium_changelist")).status_code == 403
    assert client.get(url("consortium_consortium_change", world.alpha.pk)).status_code == 403
    assert client.get(url("routing_chat_changelist")).status_code == 403
    assert client.get(url("auth_user_changelist")).status_code == 403
    assert client.get(url("libraries_library_add")).status_code == 403
    assert_not_found(client.get(url("libraries_library_change", world.orlando.pk)))
    assert_not_found(client.get(url("libraries_queue_change", world.orlando.local_queue.pk)))
    assert_not_found(client.get(url("libraries_queue_change", world.statewide.pk)))
    assert_not_found(client.get(url("libraries_staffprofile_change", world.orlando_librarian.pk)))
    assert_not_found(client.get(url("libraries_library_change", world.miami.pk)))


def test_library_admin_edits_their_hours(world: World) -> None:
    queue = world.tampa.local_queue
    client = client_for(world.library_admin)
    page = client.get(url("libraries_queue_change", queue.pk))
    assert page.status_code == 200
    data = form_data(page)
    data.pop("always_open", None)
    data.update({"weekly-TOTAL_FORMS": "2", "weekly-0-weekday": "0", "weekly-0-hours": "09:00-17:00",
                 "weekly-1-weekday": "5", "weekly-1-hours": "10:00-24:00",
                 "closures-TOTAL_FORMS": "1", "closures-0-start_date": "2026-12-25",
                 "closures-0-end_date": "2026-12-26", "closures-0-reason": "Christmas",
                 "special_hours-TOTAL_FORMS": "1", "special_hours-0-date": "2026-12-24",
                 "special_hours-0-hours": "09:00-12:00"})
    response = client.post(url("libraries_queue_change", queue.pk), data)
    assert response.status_code == 302, response.context["errors"]
    queue.refresh_from_db()
    assert not queue.always_open
    assert sorted(queue.weekly.values_list("weekday", "start_minute", "end_minute")) == [
        (0, 540, 1020), (5, 600, 1440)]
    assert queue.closures.get().reason == "Christmas"
    assert queue.special_hours.get().intervals == [[540, 720]]


def test_hours_are_checked(world: World) -> None:
    queue = world.tampa.local_queue
    client = client_for(world.library_admin)
    data = form_data(client.get(url("libraries_queue_change", queue.pk)))
    data.update({"weekly-TOTAL_FORMS": "1", "weekly-0-weekday": "0", "weekly-0-hours": "17:00-09:00"})
    response = client.post(url("libraries_queue_change", queue.pk), data)
    assert response.status_code == 200
    assert not WeeklyInterval.objects.filter(queue=queue).exists()


def test_library_admin_cannot_reshape_the_queue(world: World) -> None:
    queue = world.tampa.local_queue
    client = client_for(world.library_admin)
    data = form_data(client.get(url("libraries_queue_change", queue.pk)))
    data.update(slug="hijack", mode="direct", consortium=str(world.beta.pk))
    assert client.post(url("libraries_queue_change", queue.pk), data).status_code == 302
    queue.refresh_from_db()
    assert (queue.slug, queue.mode, queue.consortium) == ("tampa", "broadcast", world.alpha)


def test_library_admin_edits_their_policy_page_only(world: World) -> None:
    client = client_for(world.library_admin)
    page = client.get(url("libraries_library_change", world.tampa.pk))
    assert set(page.context["adminform"].form.fields) == {"policy", "policy_reviewed_on", "key_links"}
    data = form_data(page)
    data.update(policy="# Cards\n\nFree for residents.", policy_reviewed_on="2026-01-15",
                key_links='[{"title": "Catalog", "url": "https://catalog.example.org"}]', name="Renamed")
    response = client.post(url("libraries_library_change", world.tampa.pk), data)
    assert response.status_code == 302
    world.tampa.refresh_from_db()
    assert world.tampa.policy.startswith("# Cards")
    assert str(world.tampa.policy_reviewed_on) == "2026-01-15"
    assert world.tampa.key_links == [{"title": "Catalog", "url": "https://catalog.example.org"}]
    assert world.tampa.name == "Tampa Library"
    page = client.get(url("libraries_library_change", world.tampa.pk))
    assert b"<h1>Cards</h1>" in page.content  # the preview


def test_key_links_must_be_web_links(world: World) -> None:
    client = client_for(world.library_admin)
    data = form_data(client.get(url("libraries_library_change", world.tampa.pk)))
    data["key_links"] = '[{"title": "x", "url": "javascript:alert(1)"}]'
    response = client.post(url("libraries_library_change", world.tampa.pk), data)
    assert response.status_code == 200
    assert "key_links" in response.context["adminform"].form.errors


def test_library_admin_cannot_edit_partners(world: World) -> None:
    LibraryPartner.objects.create(library=world.tampa, partner=world.orlando, position=0)
    client = client_for(world.library_admin)
    page = client.get(url("libraries_library_change", world.tampa.pk))
    (partners,) = page.context["inline_admin_formsets"]
    assert not partners.has_change_permission
    assert not partners.has_add_permission


def test_library_admin_edits_their_staff(world: World) -> None:
    client = client_for(world.library_admin)
    page = client.get(url("libraries_staffprofile_change", world.librarian.pk))
    form = page.context["adminform"].form
    assert set(form.fields["queues"].queryset) == {world.statewide, world.spanish}
    assert list(form.fields["library"].queryset) == [world.tampa]
    assert "coordinator" not in dict(form.fields["role"].choices)
    data = form_data(page)
    data.update(capacity="5", languages='["en", "es"]', queues=[str(world.spanish.pk)])
    response = client.post(url("libraries_staffprofile_change", world.librarian.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    world.librarian.refresh_from_db()
    assert world.librarian.capacity == 5
    assert world.librarian.languages == ["en", "es"]
    assert list(world.librarian.queues.all()) == [world.spanish]


@pytest.mark.parametrize("change", [
    {"role": "coordinator"},
    {"library": "orlando"},
    {"queues": "beta_statewide"},
])
def test_library_admin_cannot_promote_or_move_staff(world: World, change: dict[str, str]) -> None:
    client = client_for(world.library_admin)
    data = form_data(client.get(url("libraries_staffprofile_change", world.librarian.pk)))
    for field, value in change.items():
        if field == "library":
            data[field] = str(world.orlando.pk)
        elif field == "queues":
            data[field] = [str(world.beta_statewide.pk)]
        else:
            data[field] = value
    response = client.post(url("libraries_staffprofile_change", world.librarian.pk), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    world.librarian.refresh_from_db()
    assert (world.librarian.role, world.librarian.library) == ("librarian", world.tampa)
    assert not world.librarian.queues.exists()


def test_library_admin_cannot_change_a_coordinator_in_their_library(world: World) -> None:
    client = client_for(world.library_admin)
    page = client.get(url("libraries_staffprofile_change", world.coordinator.pk))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    response = client.post(url("libraries_staffprofile_change", world.coordinator.pk), {"role": "librarian"})
    assert response.status_code == 403
    world.coordinator.refresh_from_db()
    assert world.coordinator.role == "coordinator"


def test_library_admin_adds_a_librarian_to_their_library(world: World) -> None:
    client = client_for(world.library_admin)
    data = form_data(client.get(url("libraries_staffprofile_add")))
    data.update(username="newbie", email="newbie@example.org", first_name="New", role="librarian",
                library=str(world.tampa.pk), languages='["en"]', is_active="on")
    response = client.post(url("libraries_staffprofile_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    profile = StaffProfile.objects.get(user__username="newbie")
    assert (profile.library, profile.role) == (world.tampa, "librarian")
    assert not profile.user.has_usable_password()


# --- who gets in ----------------------------------------------------------------------------------


def test_librarian_cannot_reach_the_admin(world: World) -> None:
    client = client_for(world.librarian)
    response = client.get(url("index"))
    assert response.status_code == 302
    assert response.url.startswith(url("login"))
    response = client.get(url("libraries_library_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(url("login"))


def test_is_staff_alone_does_not_open_the_admin(world: World) -> None:
    User.objects.filter(pk=world.librarian.user.pk).update(is_staff=True)
    response = Client().post(url("login"), {"username": "leo", "password": PASSWORD})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client_for(world.librarian).get(url("index")).status_code == 302


def test_admins_log_in_without_is_staff(world: World) -> None:
    assert not world.library_admin.user.is_staff
    client = Client()
    response = client.post(url("login"), {"username": "lia", "password": PASSWORD, "next": url("index")})
    assert response.status_code == 302
    assert client.get(url("index")).status_code == 200


def test_a_deactivated_profile_loses_access(world: World) -> None:
    StaffProfile.objects.filter(pk=world.coordinator.pk).update(is_active=False)
    assert client_for(world.coordinator).get(url("index")).status_code == 302


# --- every page renders ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "coordinator", "library_admin"])
def test_every_admin_page_renders_for_every_role(world: World, who: str) -> None:
    """A smoke test over every registered model: list, add and one object's page."""
    chat = make_chat(world.alpha, world.tampa)
    Ticket.objects.create(consortium=world.alpha, library=world.tampa, chat=chat, question="q",
                          patron_email="p@example.org", source="question_form", created_at=timezone.now())
    LibraryPartner.objects.create(library=world.tampa, partner=world.orlando, position=0)
    WeeklyInterval.objects.create(queue=world.tampa.local_queue, weekday=0, start_minute=540, end_minute=1020)
    if who == "superuser":
        client = Client()
        client.force_login(User.objects.create_superuser("root", "root@example.org", PASSWORD))
    else:
        client = client_for(world.coordinator if who == "coordinator" else world.library_admin)
    assert client.get(url("index")).status_code == 200
    for model in admin.site._registry:
        name = f"{model._meta.app_label}_{model._meta.model_name}"
        listing = client.get(url(f"{name}_changelist"))
        assert listing.status_code in (200, 403), name
        assert client.get(url(f"{name}_add")).status_code in (200, 403), name
        if listing.status_code == 200 and listing.context["cl"].result_list:
            obj = listing.context["cl"].result_list[0]
            assert client.get(url(f"{name}_change", obj.pk)).status_code == 200, name


def test_a_spanish_coordinator_reads_the_admins_own_words_in_spanish(world: World) -> None:
    """The models' and fields' names (verbose_name) and their choices are the admin's headings and labels."""
    world.coordinator.language = "es"
    world.coordinator.save(update_fields=["language"])
    client = client_for(world.coordinator)
    listing = client.get(url("libraries_library_changelist")).content.decode()
    assert "Bibliotecas" in listing
    form = client.get(url("libraries_library_change", world.tampa.pk)).content.decode()
    assert "Zona horaria" in form and "Códigos postales" in form and "Pública" in form
    assert "Zip codes" not in form


def test_a_spanish_library_admin_reads_the_admins_refusals_and_hints_in_spanish(world: World) -> None:
    """The admin's own forms: a refused interval, the hint under a field and a field's help_text."""
    world.library_admin.language = "es"
    world.library_admin.save(update_fields=["language"])
    queue = world.tampa.local_queue
    client = client_for(world.library_admin)
    page = client.get(url("libraries_queue_change", queue.pk))
    assert "en la zona horaria de la cola; el final puede ser 24:00" in page.content.decode()
    data = form_data(page)
    data.update({"weekly-TOTAL_FORMS": "1", "weekly-0-weekday": "0", "weekly-0-hours": "17:00-09:00"})
    response = client.post(url("libraries_queue_change", queue.pk), data)
    assert response.status_code == 200
    assert "&quot;17:00-09:00&quot; termina antes de empezar" in response.content.decode()
    assert not WeeklyInterval.objects.filter(queue=queue).exists()
    library_page = client.get(url("libraries_library_change", world.tampa.pk)).content.decode()
    assert "días antes de borrar los datos de los chats de sus usuarios" in library_page  # a model's help_text
