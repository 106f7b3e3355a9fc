"""A process answers requests through its ASGI application without running out of pooled
database connections: each request gives its connection back when it is done."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from consortium import asgi
from tests.asgi_requests import post_json
from tests.factories import make_consortium


# The pool is PostgreSQL's (consortium/settings.py); SQLite has none.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
async def test_more_chat_starts_than_the_pool_holds_each_give_their_connection_back(settings: Any) -> None:
    settings.CHAT_START_RATE = "1000/m"
    settings.QUESTION_CLIENT_RATE = "1000/m"
    await database_sync_to_async(make_consortium)("pooled", allowed_origins=["https://library.example.org"])
    pool = connection.pool
    assert pool is not None, "the PostgreSQL suite runs with the pool on (VR_DB_POOL_MAX)"
    # Every request runs in a thread of its own (Django's ThreadSensitiveContext), so a connection not
    # given back at the request's end would stay checked out: past max_size the next request waits
    # for the pool's timeout and fails. (The sockets' and heartbeat's threads keep theirs by design,
    # routing.threads: counted once, after the first start, and not growing.)
    checked_out: list[int] = []
    for n in range(pool.max_size + 2):
        status, _, body = await post_json(asgi.application, "/api/v1/pooled/chats", {"question": f"q{n}"},
                                          "https://library.example.org")
        assert status == 201, body
        stats = await database_sync_to_async(pool.get_stats)()
        checked_out.append(stats["pool_size"] - stats["pool_available"])
    assert len(set(checked_out)) == 1, checked_out
