"""Staff in the admin: profiles (with the account made alongside) and the user accounts behind them."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import TypedChoiceField
from django.http import HttpRequest
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from consortium.scoping import (
    ADD,
    CHANGE,
    COORDINATOR,
    VIEW,
    ScopedModelAdmin,
    is_library_admin,
    is_superuser,
    user_consortium_id,
)
from libraries.admin.common import string_list
from libraries.models import Queue, StaffProfile


class StaffProfileForm(forms.ModelForm):
    class Meta:
        model = StaffProfile
        fields = ("library", "role", "queues", "capacity", "languages", "is_active")

    def clean_languages(self) -> list[str]:
        return string_list(self.cleaned_data["languages"], _("language codes"), "es")

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
            raise ValidationError(_("this username is taken"))
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
