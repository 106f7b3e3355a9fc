"""Libraries in the admin: onboarding, routing settings, route plans, partners and the policy page."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.admin import validate_timezone
from consortium.scoping import (
    ADD,
    ALL_ACTIONS,
    CHANGE,
    READ_ONLY,
    VIEW,
    ScopedModelAdmin,
    ScopedTabularInline,
    is_library_admin,
)
from libraries.admin.common import readonly_except, string_list
from libraries.models import Library, LibraryPartner, Queue
from libraries.policy import is_allowed_link, render_policy
from libraries.services import library_create_local_queue


class HttpsURLField(forms.URLField):
    """A scheme-less address gets https (Django 6's default), not http."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class LibraryForm(forms.ModelForm):
    class Meta:
        model = Library
        fields = ("consortium", "slug", "name", "kind", "timezone", "city", "website", "is_active",
                  "zip_codes", "consortium_queue", "local_timeout", "partner_timeout", "route", "policy",
                  "policy_reviewed_on", "key_links", "rota_target_hours", "transcript_retention_days",
                  "followup_due_hours", "sms_number", "sms_keyword")
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
        return string_list(self.cleaned_data["zip_codes"], _("ZIP codes"), "33601")

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
            raise ValidationError(_('a list like [{"title": "Catalog", "url": "https://..."}] '
                                    "(http, https or mailto links only)"))
        return links

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        consortium = data.get("consortium")
        if consortium is None and self.instance.consortium_id is not None:
            consortium = self.instance.consortium
        queue = data.get("consortium_queue")
        if queue is not None and consortium is not None and (
                queue.consortium_id != consortium.pk or queue.kind != Queue.Kind.SHARED):
            self.add_error("consortium_queue", "choose one of this consortium's shared queues")
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
        raise ValidationError(_('a list of steps: [{"name": "local", "queues": ["tampa"], "wait": 30}, ...]'))
    known = set(Queue.objects.filter(consortium_id=consortium_id).values_list("slug", flat=True)) | {own_slug}
    names: set[str] = set()
    out = []
    for i, step in enumerate(route, start=1):
        last = i == len(route)
        if not isinstance(step, dict) or not set(step) <= {"name", "queues", "wait"}:
            raise ValidationError(_('step %(i)d: an object with "name", "queues" and "wait"') % {"i": i})
        name, queues, wait = step.get("name"), step.get("queues"), step.get("wait")
        if not isinstance(name, str) or not name.strip() or name in names:
            raise ValidationError(_("step %(i)d: needs a name of its own") % {"i": i})
        names.add(name)
        if not isinstance(queues, list) or not queues or not all(isinstance(q, str) for q in queues):
            raise ValidationError(_("step %(i)d: queues is a list of queue slugs") % {"i": i})
        unknown = [q for q in queues if q not in known]
        if unknown:
            raise ValidationError(_("step %(i)d: no such queue in this consortium: %(queues)s")
                                  % {"i": i, "queues": ", ".join(unknown)})
        if last and wait is not None:
            raise ValidationError(_("step %(i)d: the last step waits as long as it takes; leave wait out") % {"i": i})
        if not last and (not isinstance(wait, int) or isinstance(wait, bool) or wait <= 0):
            raise ValidationError(_("step %(i)d: every step but the last needs a wait in seconds") % {"i": i})
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
        ("Routing", {"fields": ("zip_codes", "consortium_queue", "local_timeout", "partner_timeout", "route")}),
        ("Policy page", {"fields": ("policy", "policy_preview", "policy_reviewed_on", "key_links")}),
        ("Rota and privacy", {"fields": ("rota_target_hours", "transcript_retention_days")}),
        ("Follow-ups", {"fields": ("followup_due_hours",)}),
        ("Texting (docs/sms.md)", {"fields": ("sms_number", "sms_keyword")}),
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
        if db_field.name == "consortium_queue":
            kwargs["queryset"] = self.choices_queryset(Queue, request).filter(kind=Queue.Kind.SHARED)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Library, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # Every library has exactly one local queue; onboarding in the admin must not be able
            # to forget it. The admin wraps this in the same transaction as the library.
            library_create_local_queue(obj)

    @admin.display(description=gettext_lazy("local queue and hours"))
    def local_queue_link(self, obj: Library) -> str:
        queue = Queue.objects.filter(library=obj).first() if obj.pk else None
        if queue is None:
            return _("created when the library is saved")
        url = reverse("admin:libraries_queue_change", args=[queue.pk])
        return format_html('<a href="{}">{} ({})</a>', url, queue.slug, _("edit hours"))

    @admin.display(description=gettext_lazy("policy as librarians see it"))
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

