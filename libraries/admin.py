"""Admin for member libraries: libraries, queues and their hours, partners and staff.

Who sees what is decided in consortium/scoping.py. In short: a coordinator onboards and runs the
libraries of their consortium; a library admin keeps their own library's hours, policy page and
staff up to date, and nothing else.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db.models import Field, Model, QuerySet
from django.forms import TypedChoiceField
from django.http import HttpRequest
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_encode
from django.utils.safestring import SafeString

from consortium.admin import validate_timezone
from consortium.scoping import (
    ADD,
    ALL_ACTIONS,
    CHANGE,
    COORDINATOR,
    READ_ONLY,
    VIEW,
    ScopedModelAdmin,
    ScopedTabularInline,
    is_library_admin,
    is_superuser,
    user_consortium_id,
)
from libraries.hours import format_interval, parse_interval
from libraries.models import (
    Closure,
    Library,
    LibraryPartner,
    Queue,
    SpecialHours,
    StaffProfile,
    WeeklyInterval,
)
from libraries.policy import is_allowed_link, render_policy
from libraries.services import library_create_local_queue

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
            (5, "Saturday"), (6, "Sunday")]


def readonly_except(model: type[Model], editable: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """Every field of `model` but `editable`, for a role that may change only a few of them."""
    names = [f.name for f in model._meta.get_fields()
             if isinstance(f, Field) and f.concrete and not f.auto_created and f.name not in editable]
    many = [f.name for f in model._meta.many_to_many if f.name not in editable]
    return (*names, *many, *extra)


def string_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f'a list of {what}, like ["{what[:-1]}"]')
    return value


# --- hours -----------------------------------------------------------------------------------------
# Minutes since midnight are what the router stores; people read and type "09:00-17:00".


class WeeklyIntervalForm(forms.ModelForm):
    weekday = forms.TypedChoiceField(choices=[("", "---------"), *WEEKDAYS], coerce=int)
    hours = forms.CharField(max_length=11, help_text="HH:MM-HH:MM in the queue's time zone; end may be 24:00")

    class Meta:
        model = WeeklyInterval
        fields = ("queue", "weekday")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["hours"] = format_interval(self.instance.start_minute, self.instance.end_minute)

    def clean_hours(self) -> str:
        text: str = self.cleaned_data["hours"]
        try:
            self.instance.start_minute, self.instance.end_minute = parse_interval(text)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return text


class SpecialHoursForm(forms.ModelForm):
    hours = forms.CharField(required=False, max_length=200,
                            help_text='"09:00-12:00, 13:00-17:00"; leave empty to close all day')

    class Meta:
        model = SpecialHours
        fields = ("queue", "date", "reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["hours"] = ", ".join(format_interval(s, e) for s, e in self.instance.intervals or [])

    def clean_hours(self) -> str:
        text: str = self.cleaned_data["hours"]
        try:
            intervals = sorted(parse_interval(part) for part in text.split(",") if part.strip())
        except ValueError as e:
            raise ValidationError(str(e)) from None
        for (_, end), (start, _) in itertools.pairwise(intervals):
            if start < end:
                raise ValidationError("intervals overlap")
        self.instance.intervals = [list(i) for i in intervals]
        return text


class ClosureForm(forms.ModelForm):
    class Meta:
        model = Closure
        fields = ("queue", "start_date", "end_date", "reason")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ValidationError("the closure ends before it starts")
        return data


class WeeklyIntervalInline(ScopedTabularInline):
    model = WeeklyInterval
    form = WeeklyIntervalForm
    fields = ("weekday", "hours")
    verbose_name_plural = "weekly hours"


class ClosureInline(ScopedTabularInline):
    model = Closure
    form = ClosureForm
    fields = ("start_date", "end_date", "reason")


class SpecialHoursInline(ScopedTabularInline):
    model = SpecialHours
    form = SpecialHoursForm
    fields = ("date", "hours", "reason")


class _HoursRowAdmin(ScopedModelAdmin):
    """The hour rows on their own, for a consortium-wide look (say, every closure this month)."""

    path_to_consortium = "queue__consortium"
    path_to_library = "queue__library"
    coordinator_actions = ALL_ACTIONS
    library_admin_actions = ALL_ACTIONS
    list_select_related = ("queue",)
    search_fields = ("queue__slug", "queue__name")
    list_filter = (("queue", admin.RelatedOnlyFieldListFilter),)


@admin.register(WeeklyInterval)
class WeeklyIntervalAdmin(_HoursRowAdmin):
    form = WeeklyIntervalForm
    fields = ("queue", "weekday", "hours")
    list_display = ("queue", "day", "hours")

    @admin.display(ordering="weekday")
    def day(self, obj: WeeklyInterval) -> str:
        return dict(WEEKDAYS).get(obj.weekday, str(obj.weekday))

    @admin.display(ordering="start_minute")
    def hours(self, obj: WeeklyInterval) -> str:
        return format_interval(obj.start_minute, obj.end_minute)


@admin.register(Closure)
class ClosureAdmin(_HoursRowAdmin):
    form = ClosureForm
    list_display = ("queue", "start_date", "end_date", "reason")
    date_hierarchy = "start_date"


@admin.register(SpecialHours)
class SpecialHoursAdmin(_HoursRowAdmin):
    form = SpecialHoursForm
    fields = ("queue", "date", "hours", "reason")
    list_display = ("queue", "date", "hours", "reason")
    date_hierarchy = "date"

    @admin.display(description="hours")
    def hours(self, obj: SpecialHours) -> str:
        return ", ".join(format_interval(s, e) for s, e in obj.intervals or []) or "closed"


# --- queues ----------------------------------------------------------------------------------------


QUEUE_FIELDS = ("consortium", "slug", "name", "kind", "library", "timezone", "always_open", "mode",
                "languages", "rota_driven", "position", "is_active")


class QueueForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = QUEUE_FIELDS

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data["timezone"])

    def clean_languages(self) -> list[str]:
        return string_list(self.cleaned_data["languages"], "language codes")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind", self.instance.kind)
        library = data.get("library", self.instance.library if self.instance.library_id else None)
        consortium = data.get("consortium")
        if kind == Queue.Kind.LOCAL and library is None:
            raise ValidationError("a local queue belongs to a library")
        if kind == Queue.Kind.SHARED and library is not None:
            raise ValidationError("a shared queue belongs to no library")
        if library is not None and consortium is not None and library.consortium_id != consortium.pk:
            raise ValidationError("the library is in another consortium")
        return data


@admin.register(Queue)
class QueueAdmin(ScopedModelAdmin):
    form = QueueForm
    path_to_consortium = "consortium"
    path_to_library = "library"
    coordinator_actions = ALL_ACTIONS
    library_admin_actions = frozenset({VIEW, CHANGE})
    inlines = (WeeklyIntervalInline, ClosureInline, SpecialHoursInline)
    list_display = ("name", "slug", "kind", "library", "mode", "always_open", "is_active")
    list_filter = ("kind", "mode", "always_open", "is_active",
                   ("consortium", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("library",)
    search_fields = ("slug", "name", "library__name")
    fields = QUEUE_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Queue | None = None) -> tuple[str, ...]:
        if is_superuser(request.user):
            return ()
        if is_library_admin(request.user):
            # Their hours, and whether to be open around the clock; the rest shapes routing for
            # the whole consortium.
            return readonly_except(Queue, ("always_open",))
        # Local queues come and go with their library (see LibraryAdmin.save_model); a
        # coordinator adds shared queues only. A queue's slug is in route plans, so it stays.
        return ("kind", "library", "slug") if obj is not None else ("kind", "library")

    def has_delete_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        # Deleting a library's local queue would leave the library unreachable.
        if obj is not None and obj.kind == Queue.Kind.LOCAL and not is_superuser(request.user):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Queue, form: Any, change: bool) -> None:
        if not change and not is_superuser(request.user):
            obj.kind, obj.library = Queue.Kind.SHARED, None
        super().save_model(request, obj, form, change)


# --- libraries -------------------------------------------------------------------------------------


class HttpsURLField(forms.URLField):
    """A scheme-less address gets https (Django 6's default), not http."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class LibraryForm(forms.ModelForm):
    class Meta:
        model = Library
        fields = ("consortium", "slug", "name", "kind", "timezone", "city", "website", "is_active",
                  "zip_codes", "fallback", "local_timeout", "partner_timeout", "route", "policy",
                  "policy_reviewed_on", "key_links", "rota_target_hours", "transcript_retention_days")
        # Given as a class so that the admin's own form factory keeps it (with the admin widget).
        field_classes = {"website": HttpsURLField}
        help_texts = {
            "key_links": 'links shown with the policy: [{"title": "Catalog", "url": "https://..."}]',
            "zip_codes": 'the service area: ["33602", "33603"]',
            "route": 'a custom route plan, or empty for the default: [{"name": "local", "queues": '
                     '["tampa"], "wait": 30}, {"name": "consortium", "queues": ["statewide"]}]',
        }

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data["timezone"])

    def clean_zip_codes(self) -> list[str]:
        return string_list(self.cleaned_data["zip_codes"], "ZIP codes")

    def clean_key_links(self) -> list[dict[str, str]]:
        links: Any = self.cleaned_data["key_links"]
        ok = isinstance(links, list) and all(
            isinstance(link, dict) and set(link) == {"title", "url"} and isinstance(link["title"], str)
            and isinstance(link["url"], str) and is_allowed_link(link["url"])
            for link in links
        )
        if not ok:
            # The same shape and link rule as the consortium file and the policy page: anything
            # else could put a javascript: link in front of every librarian.
            raise ValidationError('a list like [{"title": "Catalog", "url": "https://..."}] '
                                  "(http, https or mailto links only)")
        return links

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        consortium = data.get("consortium")
        if consortium is None and self.instance.consortium_id is not None:
            consortium = self.instance.consortium
        fallback = data.get("fallback")
        if fallback is not None and consortium is not None and (
                fallback.consortium_id != consortium.pk or fallback.kind != Queue.Kind.SHARED):
            self.add_error("fallback", "choose one of this consortium's shared queues")
        slug = data.get("slug")
        if self.instance.pk is None and slug and consortium is not None and \
                Queue.objects.filter(consortium=consortium, slug=slug).exists():
            # The new local queue takes the library's slug (route plans name it that way).
            self.add_error("slug", f'the consortium already has a queue "{slug}"')
        if "route" in self.fields and consortium is not None:
            own_slug = slug or self.instance.slug
            try:
                data["route"] = clean_route(data.get("route"), consortium_id=consortium.pk, own_slug=own_slug)
            except ValidationError as e:
                self.add_error("route", e)
        return data


def clean_route(route: Any, *, consortium_id: int, own_slug: str) -> list[dict[str, Any]] | None:
    """A custom route plan as the router reads it (routing.plan.plan_from_json), or None.

    Checked here because the router trusts it: a malformed plan would only show up when a patron
    of this library starts a chat. Same rules as the consortium file.
    """
    if route in (None, [], ""):
        return None  # the default plan
    if not isinstance(route, list):
        raise ValidationError('a list of steps: [{"name": "local", "queues": ["tampa"], "wait": 30}, ...]')
    known = set(Queue.objects.filter(consortium_id=consortium_id).values_list("slug", flat=True)) | {own_slug}
    names: set[str] = set()
    out = []
    for i, step in enumerate(route, start=1):
        last = i == len(route)
        if not isinstance(step, dict) or not set(step) <= {"name", "queues", "wait"}:
            raise ValidationError(f'step {i}: an object with "name", "queues" and "wait"')
        name, queues, wait = step.get("name"), step.get("queues"), step.get("wait")
        if not isinstance(name, str) or not name.strip() or name in names:
            raise ValidationError(f"step {i}: needs a name of its own")
        names.add(name)
        if not isinstance(queues, list) or not queues or not all(isinstance(q, str) for q in queues):
            raise ValidationError(f"step {i}: queues is a list of queue slugs")
        unknown = [q for q in queues if q not in known]
        if unknown:
            raise ValidationError(f"step {i}: no such queue in this consortium: {', '.join(unknown)}")
        if last and wait is not None:
            raise ValidationError(f"step {i}: the last step waits as long as it takes; leave wait out")
        if not last and (not isinstance(wait, int) or isinstance(wait, bool) or wait <= 0):
            raise ValidationError(f"step {i}: every step but the last needs a wait in seconds")
        out.append({"name": name, "queues": list(dict.fromkeys(queues)), "wait": wait})
    return out


class LibraryPartnerForm(forms.ModelForm):
    class Meta:
        model = LibraryPartner
        fields = ("library", "position", "partner")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        library, partner = data.get("library"), data.get("partner")
        if library is not None and partner is not None:
            if partner.pk is not None and partner.pk == library.pk:
                self.add_error("partner", "a library is not its own partner")
            elif partner.consortium_id != library.consortium_id:
                self.add_error("partner", "partners are libraries of the same consortium")
        return data


class LibraryPartnerInline(ScopedTabularInline):
    model = LibraryPartner
    form = LibraryPartnerForm
    fk_name = "library"
    fields = ("position", "partner")
    ordering = ("position",)
    verbose_name_plural = "partners (the partners step, in this order)"
    # The partner list decides where a library's patrons go next: the coordinator's call.
    library_admin_edits = False


@admin.register(Library)
class LibraryAdmin(ScopedModelAdmin):
    form = LibraryForm
    path_to_consortium = "consortium"
    path_to_library = "pk"
    # Libraries are deactivated, never deleted: chats and statistics keep pointing at them.
    coordinator_actions = frozenset({VIEW, ADD, CHANGE})
    library_admin_actions = frozenset({VIEW, CHANGE})
    inlines = (LibraryPartnerInline,)
    list_display = ("name", "slug", "kind", "city", "local_queue_link", "policy_reviewed_on", "is_active")
    list_filter = ("kind", "is_active", ("consortium", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "slug", "city")
    fieldsets = (
        (None, {"fields": ("consortium", "slug", "name", "kind", "timezone", "city", "website", "is_active",
                           "local_queue_link")}),
        ("Routing", {"fields": ("zip_codes", "fallback", "local_timeout", "partner_timeout", "route")}),
        ("Policy page", {"fields": ("policy", "policy_preview", "policy_reviewed_on", "key_links")}),
        ("Rota and privacy", {"fields": ("rota_target_hours", "transcript_retention_days")}),
    )
    POLICY_FIELDS: ClassVar[tuple[str, ...]] = ("policy", "policy_reviewed_on", "key_links")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Library]:
        return super().get_queryset(request).select_related("local_queue")

    def get_readonly_fields(self, request: HttpRequest, obj: Library | None = None) -> tuple[str, ...]:
        shown = ("local_queue_link", "policy_preview")
        if is_library_admin(request.user):
            return readonly_except(Library, self.POLICY_FIELDS, *shown)
        # The slug names the local queue and is in embed codes and route plans: fixed once made.
        return (*shown, "slug") if obj is not None else shown

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "fallback":
            kwargs["queryset"] = self.choices_queryset(Queue, request).filter(kind=Queue.Kind.SHARED)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Library, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # Every library has exactly one local queue; onboarding in the admin must not be able
            # to forget it. The admin wraps this in the same transaction as the library.
            library_create_local_queue(obj)

    @admin.display(description="local queue and hours")
    def local_queue_link(self, obj: Library) -> str:
        queue = Queue.objects.filter(library=obj).first() if obj.pk else None
        if queue is None:
            return "created when the library is saved"
        url = reverse("admin:libraries_queue_change", args=[queue.pk])
        return format_html('<a href="{}">{} (edit hours)</a>', url, queue.slug)

    @admin.display(description="policy as librarians see it")
    def policy_preview(self, obj: Library) -> SafeString:
        return render_policy(obj.policy)


@admin.register(LibraryPartner)
class LibraryPartnerAdmin(ScopedModelAdmin):
    form = LibraryPartnerForm
    path_to_consortium = "library__consortium"
    path_to_library = "library"
    coordinator_actions = ALL_ACTIONS
    library_admin_actions = READ_ONLY
    list_display = ("library", "position", "partner")
    list_select_related = ("library", "partner")
    list_filter = (("library", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("library__name", "partner__name")


# --- staff -----------------------------------------------------------------------------------------


class StaffProfileForm(forms.ModelForm):
    class Meta:
        model = StaffProfile
        fields = ("library", "role", "queues", "capacity", "languages", "is_active")

    def clean_languages(self) -> list[str]:
        return string_list(self.cleaned_data["languages"], "language codes")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        library = data.get("library")
        queues = data.get("queues")
        if library is not None and queues is not None and any(
                q.consortium_id != library.consortium_id or q.kind != Queue.Kind.SHARED for q in queues):
            self.add_error("queues", "choose among the shared queues of the library's consortium")
        return data


class StaffProfileAddForm(StaffProfileForm):
    """A new staff member: the account is made with the profile, and sets its own password."""

    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError("this username is taken")
        return username


@admin.register(StaffProfile)
class StaffProfileAdmin(ScopedModelAdmin):
    form = StaffProfileForm
    add_form = StaffProfileAddForm
    path_to_consortium = "library__consortium"
    path_to_library = "library"
    # Staff are deactivated, never deleted: their chats keep pointing at them.
    coordinator_actions = frozenset({VIEW, ADD, CHANGE})
    library_admin_actions = frozenset({VIEW, ADD, CHANGE})
    list_display = ("display_name", "username", "library", "role", "capacity", "is_active")
    list_filter = ("role", "is_active", ("library", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "library")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    filter_horizontal = ("queues",)

    @admin.display(ordering="user__username")
    def username(self, obj: StaffProfile) -> str:
        return obj.user.get_username()

    def get_fieldsets(self, request: HttpRequest, obj: StaffProfile | None = None) -> Any:
        profile = (None, {"fields": ("library", "role", "queues", "capacity", "languages", "is_active")})
        if obj is None:
            return (("Account", {"fields": ("username", "first_name", "last_name", "email")}), profile)
        return (("Account", {"fields": ("user",)}), profile)

    def get_form(self, request: HttpRequest, obj: StaffProfile | None = None, change: bool = False,
                 **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: StaffProfile | None = None) -> tuple[str, ...]:
        return ("user",) if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: StaffProfile | None = None) -> bool:
        # A coordinator's profile may sit in any library; its library admin must not be able to
        # demote or disable them (nor touch an operator's account).
        if obj is not None and is_library_admin(request.user) and (
                obj.role == COORDINATOR or obj.user.is_superuser):
            return False
        return super().has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "library" and is_library_admin(request.user):
            # Their own library is the only choice: library admins cannot move staff elsewhere.
            kwargs["empty_label"] = None
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "queues":
            # The shared queues of the consortium, also for a library admin, whose Queue scope
            # is only their local queue (served anyway, so never listed here).
            queues = Queue.objects.filter(kind=Queue.Kind.SHARED)
            if not is_superuser(request.user):
                consortium_id = user_consortium_id(request.user)
                queues = queues.filter(consortium_id=consortium_id) if consortium_id else queues.none()
            kwargs["queryset"] = queues
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest,
                                   **kwargs: Any) -> TypedChoiceField | None:
        if db_field.name == "role" and is_library_admin(request.user):
            # Making coordinators is the coordinators' business. The form rejects any other value.
            kwargs["choices"] = [(r.value, r.label) for r in StaffProfile.Role if r != COORDINATOR]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: StaffProfile, form: Any, change: bool) -> None:
        if not change:
            data = form.cleaned_data
            # No password: the person chooses one through the link below, which nobody else sees
            # once it has been handed over.
            obj.user = User.objects.create_user(
                username=data["username"], email=data["email"], first_name=data["first_name"],
                last_name=data["last_name"], password=None,
            )
        super().save_model(request, obj, form, change)
        if not change:
            uid = urlsafe_base64_encode(force_bytes(obj.user.pk))
            path = reverse("password_reset_confirm",
                           kwargs={"uidb64": uid, "token": default_token_generator.make_token(obj.user)})
            messages.info(request, format_html("Send {} this link to set a password: {}",
                                               obj.user.get_username(), request.build_absolute_uri(path)))


# --- user accounts ---------------------------------------------------------------------------------


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(ScopedModelAdmin, DjangoUserAdmin):
    """Accounts: Django's user admin, narrowed for coordinators to their consortium's staff.

    A coordinator may fix a name or e-mail, deactivate an account or set a password; never grant
    superuser, staff or permission flags, and never touch a superuser's account (that would hand
    them the operator's keys).
    """

    path_to_consortium = "staff__library__consortium"
    coordinator_actions = frozenset({VIEW, CHANGE})
    COORDINATOR_FIELDSETS: ClassVar[Any] = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        return qs if is_superuser(request.user) else qs.filter(is_superuser=False)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not is_superuser(request.user):
            return self.COORDINATOR_FIELDSETS
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if is_superuser(request.user):
            return super().get_readonly_fields(request, obj)
        return ("last_login", "date_joined")

    def get_list_filter(self, request: HttpRequest) -> Any:
        return super().get_list_filter(request) if is_superuser(request.user) else ("is_active",)
