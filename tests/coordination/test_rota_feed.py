"""The calendar address on a librarian's rota page: shown once when made, and once more when made anew
(only its hash is kept), and working in a calendar app from then on."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_consortium, make_library, make_staff

pytestmark = pytest.mark.django_db

ADDRESS = re.compile(r'value="https?://[^"/]+(/rota/feed/[^"]+\.ics)"')


def _address(page: str) -> str | None:
    found = ADDRESS.search(page)
    return found.group(1) if found else None


def test_the_address_is_shown_once_when_made_and_once_when_made_anew(client: Client) -> None:
    lia = make_staff(make_library(make_consortium("alpha"), "tampa"), "lia")
    assert client.login(username=lia.user.username, password=PASSWORD)

    first = client.get("/rota/").content.decode()
    address = _address(first)
    assert address is not None and "Copy this address now" in first
    assert client.get(address).status_code == 200

    again = client.get("/rota/").content.decode()
    assert _address(again) is None and "Make a new one" in again, "not kept, so not shown again"
    assert client.get(address).status_code == 200, "but it still works"

    reset = client.post("/rota/", {"action": "reset_feed"})
    assert reset.status_code == 200, "the new address is in this answer, the only place it can be"
    page = reset.content.decode()
    new = _address(page)
    assert new is not None and new != address and "the old one no longer works" in page
    assert client.get(address).status_code == 404
    assert client.get(new).status_code == 200
    assert _address(client.get("/rota/").content.decode()) is None
