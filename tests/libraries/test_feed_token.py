"""A librarian's calendar feed address is a secret kept hashed, like a chat token (consortium.tokens):
the feed opens with the token, not with a wrong one nor with the stored hash, and the database never
holds the token. Tokens stored in plain text before are hashed by a migration, so the addresses
calendars already subscribed to keep working."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from consortium.tokens import token_hash, token_hash_matches
from libraries import rota
from libraries.models import StaffProfile
from tests.factories import make_consortium, make_library, make_staff

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("libraries.migrations.0003_feed_token_hash")


@pytest.fixture
def ana() -> StaffProfile:
    return make_staff(make_library(make_consortium("rota"), "tampa"), "ana")


def _row(profile: StaffProfile) -> dict[str, Any]:
    return StaffProfile.objects.filter(pk=profile.pk).values().get()


def test_the_database_keeps_only_the_hash_of_the_feed_token(ana: StaffProfile) -> None:
    token = rota.feed_token_issue(ana)
    assert token is not None and len(token) >= 32
    row = _row(ana)
    assert row["feed_token_hash"] == token_hash(token) != token
    assert token not in {str(value) for value in row.values()}
    new = rota.feed_token_reset(ana)
    assert _row(ana)["feed_token_hash"] == token_hash(new) and new != token


def test_the_feed_opens_with_its_token_only(ana: StaffProfile, client: Client) -> None:
    token = rota.feed_token_issue(ana)
    assert token is not None
    assert client.get(f"/rota/feed/{token}.ics").status_code == 200
    wrong = ("B" if token[0] == "A" else "A") + token[1:]  # one character off, whatever the token
    assert client.get(f"/rota/feed/{wrong}.ics").status_code == 404
    assert client.get(f"/rota/feed/{token_hash(token)}.ics").status_code == 404, "a copy of the database opens nothing"
    ana.user.is_active = False
    ana.user.save(update_fields=["is_active"])
    assert client.get(f"/rota/feed/{token}.ics").status_code == 404, "nor does a deactivated account's"


def test_a_page_with_a_stale_profile_makes_no_second_token(ana: StaffProfile) -> None:
    stale = StaffProfile.objects.get(pk=ana.pk)
    token = rota.feed_token_issue(ana)
    assert token is not None
    assert rota.feed_token_issue(stale) is None, "the other page opened first: its address stands"
    assert _row(ana)["feed_token_hash"] == token_hash(token)


def test_the_migration_hashes_plain_tokens_so_subscribed_addresses_keep_working(ana: StaffProfile,
                                                                                client: Client) -> None:
    plain = "an-address-subscribed-before-the-upgrade"
    StaffProfile.objects.filter(pk=ana.pk).update(feed_token_hash=plain)  # the column as it was before
    other = make_staff(ana.library, "ben")
    MIGRATION.hash_feed_tokens(apps, None)
    assert _row(ana)["feed_token_hash"] == token_hash(plain)
    assert _row(other)["feed_token_hash"] is None, "no token yet: none made"
    assert client.get(f"/rota/feed/{plain}.ics").status_code == 200
    MIGRATION.clear_feed_tokens(apps, None)
    assert _row(ana)["feed_token_hash"] is None
    assert client.get(f"/rota/feed/{plain}.ics").status_code == 404


def test_a_token_matches_its_hash_only() -> None:
    assert token_hash_matches(token_hash("secret"), "secret")
    assert not token_hash_matches(token_hash("secret"), "Secret")
    assert not token_hash_matches("", "")
    assert not token_hash_matches(token_hash("1"), 1)
