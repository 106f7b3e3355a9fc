"""Fixtures shared by the tests of libraries/."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def fast_password_hashing(settings: Any) -> None:
    """A test module that makes many accounts hashes their passwords with a fast hasher: the real one
    spends ~0.3 s per password on purpose, which would make such a module slow for nothing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
