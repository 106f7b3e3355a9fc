"""Queues in the admin: a library's local queue, and the consortium's shared queues."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

from consortium.admin import validate_timezone
from consortium.scoping import ALL_ACTIONS, CHANGE, VIEW, ScopedModelAdmin, is_library_admin, is_superuser
from libraries.admin.common import readonly_except, string_list
from libraries.admin.hours import ClosureInline, SpecialHoursInline, WeeklyIntervalInline
from libraries.models import Queue

QUEUE_FIELDS = ("consortium", "slug", "name", "kind", "library", "timezone", "always_open", "mode",
                "languages", "rota_driven", "position", "is_active")


class QueueForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = QUEUE_FIELDS

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data["timezone"])

    def clean_languages(self) -> list[str]:
        return string_list(self.cleaned_data["languages"], _("language codes"), "es")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind", self.instance.kind)
        library = data.get("library", self.instance.library if self.instance.library_id else None)
        consortium = data.get("consortium")
        if kind == Queue.Kind.LOCAL and library is None:
            raise ValidationError(_("a local queue belongs to a library"))
        if kind == Queue.Kind.SHARED and library is not None:
            raise ValidationError(_("a shared queue belongs to no library"))
        if library is not None and consortium is not None and library.consortium_id != consortium.pk:
            raise ValidationError(_("the library is in another consortium"))
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

