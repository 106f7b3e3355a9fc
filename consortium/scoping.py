"""Who may see and change what in the admin, decided by the staff role alone.

Every row belongs to exactly one consortium and nothing crosses between consortia (docs/routing.md,
"Words"), so the admin applies one rule everywhere:

- a superuser sees everything;
- a coordinator sees their own consortium (the library on their StaffProfile decides which);
- a library admin sees their own library;
- a librarian, an inactive account or a user without a StaffProfile sees nothing.

Django's model permissions and `is_staff` are deliberately not used: the role on the StaffProfile is
the single source of truth, so an import that changes a role, or a deactivated profile, takes effect
at once, and nobody has to keep permission rows in step with it. Each ModelAdmin says what each role
may do (`coordinator_actions`, ...) and how its rows reach a consortium and a library
(`path_to_consortium`, `path_to_library`); `ScopedModelAdmin` turns that into querysets, permissions
and foreign-key choices.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.options import BaseModelAdmin
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import ForeignKey, ManyToManyField, Model, QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest

from consortium.models import Consortium
from libraries.models import StaffProfile

M = TypeVar("M", bound=Model)
AnyUser = AbstractBaseUser | AnonymousUser

COORDINATOR = StaffProfile.Role.COORDINATOR
LIBRARY_ADMIN = StaffProfile.Role.LIBRARY_ADMIN
ADMIN_ROLES = frozenset({COORDINATOR, LIBRARY_ADMIN})

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
ALL_ACTIONS = frozenset({VIEW, ADD, CHANGE, DELETE})
READ_ONLY = frozenset({VIEW})
NOTHING: frozenset[str] = frozenset()


def is_superuser(user: AnyUser) -> bool:
    return bool(user.is_active and getattr(user, "is_superuser", False))


def staff_profile(user: AnyUser) -> StaffProfile | None:
    """The user's StaffProfile, or None. Cached on the user object, so once per request."""
    if not user.is_authenticated:
        return None
    # The reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError, when there is none.
    profile: StaffProfile | None = getattr(user, "staff", None)
    return profile


def admin_role(user: AnyUser) -> str | None:
    """The role that governs what this user may do, or None when it grants nothing.

    A deactivated profile (pruned by an import) counts as no profile: leaving a library must end
    its access the same moment, whatever the account's other flags say.
    """
    profile = staff_profile(user)
    if profile is None or not profile.is_active or not user.is_active:
        return None
    return profile.role


def is_coordinator(user: AnyUser) -> bool:
    return admin_role(user) == COORDINATOR


def is_library_admin(user: AnyUser) -> bool:
    return admin_role(user) == LIBRARY_ADMIN


def can_use_admin(user: AnyUser) -> bool:
    return is_superuser(user) or admin_role(user) in ADMIN_ROLES


def user_consortium_id(user: AnyUser) -> int | None:
    profile = staff_profile(user)
    return profile.library.consortium_id if profile is not None else None


def user_library_id(user: AnyUser) -> int | None:
    profile = staff_profile(user)
    return profile.library_id if profile is not None else None


def scope_queryset(qs: QuerySet[M], user: AnyUser, *, path_to_consortium: str | None,
                   path_to_library: str | None) -> QuerySet[M]:
    """Narrow `qs` to the rows this user may see.

    The paths are ORM lookups from the model to a Consortium and to a Library ("pk" for the model
    itself). A missing path means that role sees none of these rows: forgetting to declare one
    hides data rather than leaking it.
    """
    if is_superuser(user):
        return qs
    role = admin_role(user)
    if role == COORDINATOR and path_to_consortium is not None:
        return qs.filter(**{path_to_consortium: user_consortium_id(user)})
    if role == LIBRARY_ADMIN and path_to_library is not None:
        return qs.filter(**{path_to_library: user_library_id(user)})
    return qs.none()


def actions_for(user: AnyUser, *, superuser: frozenset[str], coordinator: frozenset[str],
                library_admin: frozenset[str]) -> frozenset[str]:
    if is_superuser(user):
        return superuser
    role = admin_role(user)
    if role == COORDINATOR:
        return coordinator
    if role == LIBRARY_ADMIN:
        return library_admin
    return NOTHING


class ScopedChoicesMixin(BaseModelAdmin):
    """Foreign-key and many-to-many choices limited to what the user may see.

    "May see" is the related model's own ModelAdmin scope, so a coordinator picks among their
    consortium's rows and a library admin among their library's. A related model that is not
    registered through a ScopedModelAdmin offers no choices to anyone but a superuser.
    """

    def choices_queryset(self, model: type[M], request: HttpRequest) -> QuerySet[M]:
        qs = model._default_manager.all()
        if is_superuser(request.user):
            return qs
        try:
            related_admin = self.admin_site.get_model_admin(model)
        except NotRegistered:
            return qs.none()
        if not isinstance(related_admin, ScopedModelAdmin):
            return qs.none()
        return related_admin.scope(qs, request)

    def formfield_for_foreignkey(self, db_field: ForeignKey[Any, Any], request: HttpRequest,
                                 **kwargs: Any) -> ModelChoiceField[Any] | None:
        if "queryset" not in kwargs and db_field.related_model is not None:
            kwargs["queryset"] = self.choices_queryset(db_field.related_model, request)
        if db_field.related_model is Consortium and not is_superuser(request.user):
            # A coordinator has exactly one consortium: preselect it instead of offering a blank.
            kwargs.setdefault("empty_label", None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: ManyToManyField[Any, Any], request: HttpRequest,
                                 **kwargs: Any) -> ModelMultipleChoiceField[Any] | None:
        if "queryset" not in kwargs and db_field.related_model is not None:
            kwargs["queryset"] = self.choices_queryset(db_field.related_model, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedModelAdmin(ScopedChoicesMixin, admin.ModelAdmin):
    """A ModelAdmin whose rows, permissions and choices follow the rules of this module."""

    path_to_consortium: ClassVar[str | None] = None
    path_to_library: ClassVar[str | None] = None
    superuser_actions: ClassVar[frozenset[str]] = ALL_ACTIONS
    coordinator_actions: ClassVar[frozenset[str]] = NOTHING
    library_admin_actions: ClassVar[frozenset[str]] = NOTHING

    def allowed_actions(self, request: HttpRequest) -> frozenset[str]:
        return actions_for(request.user, superuser=self.superuser_actions,
                           coordinator=self.coordinator_actions, library_admin=self.library_admin_actions)

    def scope(self, qs: QuerySet[M], request: HttpRequest) -> QuerySet[M]:
        return scope_queryset(qs, request.user, path_to_consortium=self.path_to_consortium,
                              path_to_library=self.path_to_library)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.scope(super().get_queryset(request), request)

    def in_scope(self, request: HttpRequest, obj: Model) -> bool:
        # Objects normally come from get_queryset already; checking again costs one query and
        # keeps a permission check honest whatever path handed it the object.
        if is_superuser(request.user) or obj.pk is None:
            return True
        return self.scope(self.model._default_manager.filter(pk=obj.pk), request).exists()

    def may(self, request: HttpRequest, action: str, obj: Model | None = None) -> bool:
        return action in self.allowed_actions(request) and (obj is None or self.in_scope(request, obj))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(self.allowed_actions(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.may(request, VIEW, obj) or self.may(request, CHANGE, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.may(request, ADD)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.may(request, CHANGE, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.may(request, DELETE, obj)


class ScopedInlineMixin(ScopedChoicesMixin):
    """Rows edited on their parent's page: whoever may change the parent may change them.

    `read_only` makes the rows display-only for everyone (a chat's trace); `library_admin_edits`
    False makes them display-only for library admins (a library's partner list, which is the
    coordinator's business).
    """

    read_only: ClassVar[bool] = False
    library_admin_edits: ClassVar[bool] = True

    def _parent_admin(self) -> ScopedModelAdmin:
        parent_model: type[Model] = self.parent_model  # type: ignore[attr-defined]
        parent = self.admin_site.get_model_admin(parent_model)
        assert isinstance(parent, ScopedModelAdmin), "scoped inlines belong on scoped admins"
        return parent

    def _may_edit(self, request: HttpRequest, obj: Model | None) -> bool:
        if self.read_only or (is_library_admin(request.user) and not self.library_admin_edits):
            return False
        return self._parent_admin().has_change_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_admin().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)


class ScopedTabularInline(ScopedInlineMixin, admin.TabularInline):
    extra = 0
