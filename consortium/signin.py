"""Staff sign-in throttling: django-axes, with this service's two limits, client address and lockout page.

Every staff sign-in (``/accounts/login/`` and ``/admin/login/``) goes through Django's ``authenticate``,
where axes counts the failures in the database, shared by every process (docs/security.md, "Sign-in"):

- per account: ``AXES_FAILURE_LIMIT`` failures for one user name, from anywhere, lock that account;
- per client: ``SIGNIN_CLIENT_FAILURE_LIMIT`` failures from one address, whatever the user names, lock
  that address. It is higher, so that a shared library desk where one person mistyped is not locked out
  for everyone, while one address trying many accounts is stopped all the same.

A lock ends ``AXES_COOLOFF_TIME`` after the last counted failure; failures while locked are not counted,
so an attacker cannot keep a librarian out for ever (they get the limit again per cool-off, no more).
A superuser, or the coordinator of the account's consortium, unlocks earlier by deleting the account's
access attempts in the admin (consortium/admin_signin.py). Axes logs failures with the user name,
address and path, never the password (it masks the password field in what it stores as well).

The client is counted as every per-client limit counts it (consortium/clients.py): the socket peer, or
behind one of ``TRUSTED_PROXIES`` the address the proxy names; an IPv6 client by its /64.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.views import PasswordResetView
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from consortium import ratelimit
from consortium.clients import request_client_key


def client_address(request: HttpRequest) -> str:
    """The client sign-in limits are counted by: its key (consortium/clients.py), an IPv6 client's /64."""
    return request_client_key(request)


class SignInBackend(AxesStandaloneBackend):
    """Axes' check of a lock before the password is tried, for sign-ins that come with a request.

    Every HTTP sign-in passes its request to ``authenticate`` (Django's login view and the admin's both
    do). A call without one comes from inside the process (a shell, the test client's ``login``): no
    client to count, so it is left to the next backend instead of failing as axes' own backend does.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _failures(attempts: Any) -> int:
    return int(attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0)


class SignInHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per account and a higher one per client.

    Axes compares one count with one limit (``AXES_FAILURE_LIMIT``). The count returned here reaches
    that limit exactly when the account has reached it or the client has reached its own, higher one:
    the client's failures are shifted down by the difference between the two limits.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        by_account, by_client = self.get_user_attempts(request, credentials)  # AXES_LOCKOUT_PARAMETERS' order
        shift = settings.SIGNIN_CLIENT_FAILURE_LIMIT - settings.AXES_FAILURE_LIMIT
        return max(_failures(by_account), _failures(by_client) - shift)


def minutes_left(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """Whole minutes (at least 1) until the lock on this account or client ends.

    Counted from the latest failure of either, so when only one of them is locked the page may name a
    little more time than is left: never less.
    """
    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None) or client_address(request)
    last = (AccessAttempt.objects.filter(username=username) | AccessAttempt.objects.filter(ip_address=address)) \
        .aggregate(t=Max("attempt_time"))["t"]
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    left = (last + cool_off - timezone.now()) if last else cool_off
    return max(1, math.ceil(left.total_seconds() / 60))


def locked_out_page(request: HttpRequest, minutes: int) -> HttpResponse:
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    """What a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE): 429 and when to try again."""
    return locked_out_page(request, minutes_left(request, credentials))


class ThrottledPasswordResetView(PasswordResetView):
    """Django's password reset, at most so many requests per address asked for and per client.

    Counted as the chat limits are (consortium/ratelimit.py: Redis, shared by all processes, in production).
    The answer past a limit is the sign-in lockout page: it says no more than that there were too many.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        email = str(request.POST.get("email", "")).strip().lower()
        # The address is hashed into the key: the limiter's store never holds a readable email.
        waits = [ratelimit.PASSWORD_RESET_CLIENT.hit(client_address(request)),
                 ratelimit.PASSWORD_RESET_EMAIL.hit(hashlib.sha256(email.encode()).hexdigest())]
        wait = max(waits)
        if wait:
            return locked_out_page(request, max(1, math.ceil(wait / 60)))
        return super().post(request, *args, **kwargs)
