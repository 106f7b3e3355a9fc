"""Fault tests: real processes killed, stopped and restarted under a load of concurrent chats.

They run only when asked (`python3 dev.py faults`, which runs `-m fault`): every test here gets the
`fault` marker, which `python3 dev.py test` leaves out. They need PostgreSQL and Redis
(DATABASE_URL, REDIS_URL) like the live tests."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.fault)


@pytest.fixture(autouse=True)
def _needs_services() -> None:
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
        pytest.fail("fault tests need DATABASE_URL (PostgreSQL) and REDIS_URL: run them with python3 dev.py faults")
