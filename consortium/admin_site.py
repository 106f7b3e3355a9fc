"""The admin site: open to coordinators and library admins by their role, not by `is_staff`.

Settings install `ConsortiumAdminConfig` in place of "django.contrib.admin", which makes
`ConsortiumAdminSite` the default `admin.site`, so every app's admin.py registers onto it.

This module is imported while INSTALLED_APPS is still being read, before any model can be
imported; that is why the imports of project code below sit inside the methods (Django's own
AdminSite.login does the same for its login form).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse


class ConsortiumAdminSite(admin.AdminSite):
    site_header = "Ask a Librarian administration"
    site_title = "Ask a Librarian admin"
    index_title = "Consortium administration"

    def has_permission(self, request: HttpRequest) -> bool:
        from consortium.scoping import can_use_admin

        # Only the StaffProfile role counts (see consortium/scoping.py): a librarian is kept out
        # even if someone ticked is_staff, and a coordinator needs no flag set by hand.
        return can_use_admin(request.user)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from consortium.admin import StaffAdminLoginForm

        # Django's admin login form refuses users without is_staff; ours asks the same question
        # as has_permission. Assigning the same class on every call is idempotent, so thread-safe.
        self.login_form = StaffAdminLoginForm
        return super().login(request, extra_context)


class ConsortiumAdminConfig(AdminConfig):
    default_site = "consortium.admin_site.ConsortiumAdminSite"
