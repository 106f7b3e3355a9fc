"""Staff sign-in throttling (consortium/signin.py): per account, per client, cool-off, unlock, reset limits."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from consortium.signin import client_address
from tests.factories import PASSWORD, make_consortium, make_library, make_staff

pytestmark = pytest.mark.django_db
LOCKED = re.compile(r"Too many attempts: try again in (\d+) minutes?\.")


@pytest.fixture
def staff() -> dict[str, Any]:
    c = make_consortium("north")
    lib = make_library(c, "north-lib")
    other = make_library(make_consortium("south"), "south-lib")
    return {"lib": lib, "ann": make_staff(lib, "ann"), "bob": make_staff(lib, "bob"),
            "cora": make_staff(lib, "cora", role="coordinator"), "sam": make_staff(other, "sam")}


def sign_in(username: str, password: str, *, address: str = "10.0.0.1", path: str = "/accounts/login/",
            **headers: str) -> HttpResponse:
    response: HttpResponse = Client(REMOTE_ADDR=address, **headers).post(
        path, {"username": username, "password": password})
    return response


def fail(username: str, times: int, **kw: Any) -> list[int]:
    return [sign_in(username, "wrong-password", **kw).status_code for _ in range(times)]


def locked(response: HttpResponse) -> int:
    """The minutes the lockout page names (and checks it is one)."""
    assert response.status_code == 429
    found = LOCKED.search(response.content.decode())
    assert found, response.content.decode()
    assert int(response["Retry-After"]) == int(found[1]) * 60
    return int(found[1])


def test_five_failures_lock_the_account_even_for_the_right_password(staff: dict[str, Any]) -> None:
    assert fail("ann", 4) == [200] * 4, "the form again, with its error"
    assert locked(sign_in("ann", "wrong-password")) == 15, "the fifth failure locks"
    assert locked(sign_in("ann", PASSWORD)) == 15
    assert locked(sign_in("ann", PASSWORD, address="10.9.9.9")) == 15, "the account, from any address"
    assert sign_in("bob", PASSWORD).status_code == 302, "another account from the same client is let in"


def test_failures_while_locked_do_not_extend_the_lock(staff: dict[str, Any]) -> None:
    fail("ann", 5)
    count = AccessAttempt.objects.filter(username="ann").get().failures_since_start
    fail("ann", 3)
    assert AccessAttempt.objects.filter(username="ann").get().failures_since_start == count == 5


def test_the_client_is_locked_at_its_own_higher_limit(staff: dict[str, Any]) -> None:
    limit = settings.SIGNIN_CLIENT_FAILURE_LIMIT
    assert limit == 20
    for name in ("guess1", "guess2", "guess3", "guess4"):  # 4 each: no account reaches its limit of 5
        assert fail(name, 4) == [200] * 4
    assert sign_in("bob", PASSWORD).status_code == 302, "16 failures: this client may still sign in"
    assert fail("guess5", 4) == [200, 200, 200, 429], "the 20th failure locks the client"
    locked(sign_in("bob", PASSWORD))
    assert sign_in("bob", PASSWORD, address="10.0.0.2").status_code == 302, "other clients are not affected"


def test_the_lock_ends_after_the_cool_off(staff: dict[str, Any]) -> None:
    fail("ann", 5)
    locked(sign_in("ann", PASSWORD))
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME + timedelta(minutes=2))
    assert locked(sign_in("ann", PASSWORD)) == 2, "the page counts down"
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in("ann", PASSWORD).status_code == 302


def test_the_admin_sign_in_is_throttled_too(staff: dict[str, Any]) -> None:
    assert fail("cora", 5, path="/admin/login/")[:4] == [200] * 4
    locked(sign_in("cora", PASSWORD, path="/admin/login/"))
    locked(sign_in("cora", PASSWORD))  # one count for both pages


def test_a_coordinator_unlocks_their_own_consortiums_staff_only(staff: dict[str, Any]) -> None:
    fail("ann", 5)
    fail("sam", 5, address="10.0.0.3")
    root = User.objects.create_superuser("root", "root@example.org", "pw-Root-123")
    coordinator = Client()
    coordinator.force_login(staff["cora"].user)
    listing = coordinator.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert ">ann<" in listing.content.decode() and ">sam<" not in listing.content.decode()
    sam = AccessAttempt.objects.get(username="sam")
    assert coordinator.post(f"/admin/axes/accessattempt/{sam.pk}/delete/", {"post": "yes"}).status_code in {302, 403}
    assert AccessAttempt.objects.filter(username="sam").exists(), "another consortium's account stays locked"
    ann = AccessAttempt.objects.get(username="ann")
    assert coordinator.post(f"/admin/axes/accessattempt/{ann.pk}/delete/", {"post": "yes"}).status_code == 302
    assert sign_in("ann", PASSWORD).status_code == 302, "unlocked"
    librarian = Client()
    librarian.force_login(staff["bob"].user)
    assert librarian.get("/admin/axes/accessattempt/").status_code == 302, "to the admin's sign-in"
    superuser = Client()
    superuser.force_login(root)
    assert superuser.post(f"/admin/axes/accessattempt/{sam.pk}/delete/", {"post": "yes"}).status_code == 302
    assert sign_in("sam", PASSWORD, address="10.0.0.3").status_code == 302


def test_failures_are_logged_without_the_password(staff: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        sign_in("ann", "hunter2-secret")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ann" in text and "10.0.0.1" in text
    assert "hunter2-secret" not in text
    assert "hunter2-secret" not in str(AccessAttempt.objects.values_list("post_data", flat=True).get())


def test_the_client_is_the_socket_peer_unless_a_trusted_proxy_says_otherwise() -> None:
    factory = RequestFactory()
    spoofed = factory.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(spoofed) == "203.0.113.7"
    via_proxy = factory.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9, 10.0.0.6")
    assert client_address(via_proxy) == "10.0.0.5"
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/24"]):
        assert client_address(spoofed) == "203.0.113.7", "not from a proxy: the header is the client's own"
        # The client wrote 1.2.3.4 itself; our proxies appended the rest: the client is the last non-proxy.
        assert client_address(via_proxy) == "198.51.100.9"


def test_a_spoofed_forwarded_for_does_not_escape_the_client_limit(staff: dict[str, Any]) -> None:
    for n in range(settings.SIGNIN_CLIENT_FAILURE_LIMIT):
        sign_in(f"guess{n % 4}x{n}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    locked(sign_in("bob", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200"))


def test_the_test_clients_login_is_not_throttled(staff: dict[str, Any]) -> None:
    fail("ann", 5)
    assert Client().login(username="bob", password=PASSWORD), "in-process sign-ins have no client to count"


def test_password_reset_is_limited_per_address_and_per_client(staff: dict[str, Any]) -> None:
    def reset(email: str, address: str) -> HttpResponse:
        response: HttpResponse = Client(REMOTE_ADDR=address).post("/accounts/password_reset/", {"email": email})
        return response

    # Fresh addresses and clients on every run: with REDIS_URL set the counts outlive the test database.
    run = secrets.token_hex(4)
    net = f"10.{secrets.randbelow(200)}.{secrets.randbelow(200)}"
    ann = staff["ann"].user
    ann.email = f"ann-{run}@example.org"
    ann.save(update_fields=["email"])
    assert [reset(ann.email, f"{net}.{n}").status_code for n in range(3)] == [302] * 3
    assert len(mail.outbox) == 3
    locked(reset(ann.email, f"{net}.9"))
    assert len(mail.outbox) == 3, "no mail past the limit"
    assert reset(f"bob-{run}@example.org", f"{net}.9").status_code == 302, "another address is let through"
    for n in range(10):  # VR_PASSWORD_RESET_CLIENT_RATE: 10/h, whatever the addresses asked for
        assert reset(f"nobody{n}-{run}@example.org", f"{net}.200").status_code == 302
    locked(reset(f"cora-{run}@example.org", f"{net}.200"))
