"""PostgreSQL's timestamps are read by psycopg's C loader, giving what Django's own loader gives
(consortium.timestamps)."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from consortium import timestamps

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUES = ("SELECT now(), NULL::timestamptz, '2026-03-02 16:30:00.000123+00'::timestamptz, "
          "'2026-11-01 01:30:00-04'::timestamptz, '1999-12-31 23:59:59.999999+14'::timestamptz, "
          "'0001-01-01 00:00:00+00'::timestamptz")


def _loader() -> object:
    return connection.connection.adapters.get_loader(timestamps.TIMESTAMPTZ_OID, Format.TEXT)


def test_a_connection_reads_timestamps_in_c_and_they_are_djangos_datetimes_exactly() -> None:
    connection.ensure_connection()
    assert _loader() is timestamps.UtcTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute(VALUES)
        fast = cursor.fetchone()
        loader = cursor.cursor._tx.get_loader(timestamps.TIMESTAMPTZ_OID, Format.TEXT)
    assert type(loader).__module__.startswith("psycopg")  # psycopg's own (C) loader, not Django's class
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)  # Django's loader, on this cursor alone
        cursor.execute(VALUES)
        djangos = cursor.fetchone()
    assert fast == djangos
    assert all(value is None or value.tzinfo is datetime.UTC for value in fast)
    assert fast[3] == datetime.datetime(2026, 11, 1, 5, 30, tzinfo=datetime.UTC)


def test_a_session_in_another_time_zone_keeps_djangos_loader() -> None:
    connection.ensure_connection()
    raw = connection.connection
    register_tzloader(connection.timezone, raw)  # Django's loader, as a new connection has it
    djangos = _loader()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TimeZone = 'America/New_York'")
        assert not timestamps.use_c_loader(connection)
        assert _loader() is djangos
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TimeZone = 'UTC'")
    assert timestamps.use_c_loader(connection)
    assert _loader() is timestamps.UtcTimestamptzLoader
