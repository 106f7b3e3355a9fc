from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def _rate_limits_of_the_tests_own(settings):  # type: ignore[no-untyped-def]
    """Each test counts its own requests against the rate limits (consortium.ratelimit): every test's
    client is 127.0.0.1, and in one process (the README's `dev.py test`, no -n) the chats started and
    questions left by the tests before it within the same minute or hour were counted too, so a test
    was refused 429 depending on how fast the ones before it ran."""
    settings.RATE_LIMIT_PREFIX = f"vr-test-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _loop_connections_closed():  # type: ignore[no-untyped-def]
    """The sockets store messages on connections of the test's own event loop (routing.loop_db); the
    loop is gone after the test, and PostgreSQL refuses to drop a test database still connected to.
    The sockets' database threads keep their pooled connections between calls (routing.threads): given
    back after each test, so that a test's own threads (several writers at once) find the pool free.
    On SQLite the threads are only waited for: a presence change's re-routes still running when the
    test ends would hold the database's lock while pytest-django empties it for the next test."""
    yield
    from routing import loop_db, threads

    loop_db.close_all()
    with contextlib.suppress(threading.BrokenBarrierError):  # a thread still busy: closed at the end
        if threads.CONCURRENT:
            threads.close_connections()
        else:
            threads.wait_idle()


@pytest.fixture(scope="session", autouse=True)
def _socket_threads_let_go(django_db_setup: None) -> Iterator[None]:
    """The sockets' database threads (routing.threads) keep their connections between calls: close
    them before the test database is dropped, which PostgreSQL refuses while a connection is open.
    Here for every test folder: the coordinators' board and the texting tests use those threads too."""
    yield
    from routing import threads

    threads.close_connections()
