"""Admin for the consortium row itself, and the admin's login form.

Coordinators see and change their own consortium's settings; only a superuser creates, renames or
deactivates a consortium. Library admins do not see this page at all.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium import admin_signin  # noqa: F401  (the locked sign-ins, registered on import)
from consortium.models import SETTING_DEFAULTS, Consortium
from consortium.origins import normalize_origin
from consortium.scoping import VIEW, ScopedModelAdmin, can_use_admin, is_superuser

_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(?::\d{1,5})?$", re.IGNORECASE)


class StaffAdminLoginForm(AdminAuthenticationForm):
    """Lets in exactly the users ConsortiumAdminSite.has_permission lets in."""

    def confirm_login_allowed(self, user: User) -> None:
        # Skip AdminAuthenticationForm's is_staff test, keep AuthenticationForm's is_active test.
        AuthenticationForm.confirm_login_allowed(self, user)
        if not can_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"], code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


def validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_('"%(name)s" is not an IANA time zone, such as America/New_York')
                              % {"name": name}) from None
    return name


class ConsortiumForm(forms.ModelForm):
    class Meta:
        model = Consortium
        fields = ("slug", "name", "timezone", "is_active", "allowed_origins", *SETTING_DEFAULTS,
                  "policy_review_limit_days", "accent_color", "accent_text_color", "sms_number", "sms_help")
        help_texts = {"allowed_origins": gettext_lazy('sites allowed to embed the widget: ["https://www.example.org"]')}

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data["timezone"])

    def clean_allowed_origins(self) -> list[str]:
        origins: Any = self.cleaned_data["allowed_origins"]
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ValidationError(_('a list of origins, like ["https://www.example.org"]'))
        # An origin is scheme, host and port only: a path or trailing slash never matches the
        # browser's Origin header, so it would silently block the widget.
        bad = [o for o in origins if not _ORIGIN.match(o)]
        if bad:
            raise ValidationError(_("not an origin (scheme://host[:port], no path): %(origins)s")
                                  % {"origins": ", ".join(bad)})
        if settings.HTTPS and (plain := [o for o in origins if o.lower().startswith("http://")]):
            # Refused when a browser sends it (routing/access.py): say so here rather than store it.
            raise ValidationError(_("http:// origins are refused while HTTPS is on (a page on plain http can "
                                    "be altered in transit): %(origins)s; use https://")
                                  % {"origins": ", ".join(plain)})
        # Stored as browsers send them (lower case, no default port), which is also how they are compared.
        return list(dict.fromkeys(normalize_origin(o) or o for o in origins))


@admin.register(Consortium)
class ConsortiumAdmin(ScopedModelAdmin):
    form = ConsortiumForm
    path_to_consortium = "pk"
    coordinator_actions = frozenset({VIEW, "change"})
    list_display = ("name", "slug", "timezone", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    fieldsets = (
        (None, {"fields": ("slug", "name", "timezone", "is_active", "allowed_origins")}),
        ("Ask pages", {"fields": ("accent_color", "accent_text_color")}),
        ("Routing times (seconds)", {"fields": (
            "local_timeout", "partner_timeout", "offer_timeout", "max_wait", "reconnect_grace",
            "patron_grace", "idle_timeout",
        )}),
        ("Librarians and records", {"fields": ("librarian_capacity", "transcript_retention_days",
                                               "policy_review_limit_days")}),
        ("End of a shift (seconds)", {"fields": ("shift_warning", "shift_extension")}),
        ("Texting (docs/sms.md)", {"fields": ("sms_number", "sms_help", "sms_idle")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Consortium | None = None) -> tuple[str, ...]:
        if is_superuser(request.user):
            return ()
        # The slug is in every widget embed code, and switching a whole consortium off is the
        # operator's decision, not a coordinator's.
        return ("slug", "is_active")
