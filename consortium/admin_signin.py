"""Locked sign-ins in the admin: who may see them and unlock them (deleting an account's attempts).

django-axes registers its own admin of the attempts, open to whoever holds Django's model permissions:
here nobody but a superuser, since the role decides (consortium/scoping.py). This one replaces it so
that a coordinator also sees, and can unlock, the accounts of their own consortium's staff: attempts
whose user name is one of theirs. Attempts for other names (unknown ones, another consortium's staff),
and so a locked client address, are the superuser's. A library admin sees none.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from consortium.scoping import DELETE, VIEW, ScopedModelAdmin, is_coordinator, is_superuser, user_consortium_id

admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(ScopedModelAdmin):
    superuser_actions = frozenset({VIEW, DELETE})
    coordinator_actions = frozenset({VIEW, DELETE})
    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "path_info")
    list_filter = ("attempt_time", "path_info")
    search_fields = ("username", "ip_address")
    date_hierarchy = "attempt_time"
    # What axes stored: the address, the browser, the paths; the password field is masked by axes.
    readonly_fields = ("username", "ip_address", "user_agent", "path_info", "http_accept", "get_data",
                       "post_data", "failures_since_start", "attempt_time")
    fields = readonly_fields

    def scope(self, qs: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
        if is_superuser(request.user):
            return qs
        consortium_id = user_consortium_id(request.user)
        if is_coordinator(request.user) and consortium_id is not None:
            staff = User.objects.filter(staff__library__consortium_id=consortium_id)
            return qs.filter(username__in=staff.values("username"))
        return qs.none()

