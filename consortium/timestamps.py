"""PostgreSQL's timestamps read by psycopg's C loader.

Django (5.2, on psycopg 3) registers a loader of its own for `timestamptz` on every connection:
psycopg's pure-Python loader, which parses the text in Python, then sets the datetime's tzinfo to the
connection's time zone. On a 2-core machine of the kind we deploy on that cost 13-19 µs a value,
psycopg's C loader 0.5-0.9 µs (bench/timestamps.py); a chat's row holds up to a dozen, a situation
hundreds (presence and shifts), a re-route of a shared queue's 650 chats thousands.

Django needs the Python loader only when the session's time zone is not the connection's: its value
is the session's text with the tzinfo replaced. When the session's TimeZone is UTC and Django's
connection time zone is UTC (USE_TZ with no TIME_ZONE of the database's own: this project's settings
always), psycopg's C loader gives the same datetimes, down to the tzinfo (`datetime.timezone.utc`,
psycopg's own for a UTC session), so that connection reads with it. Any other combination keeps
Django's loader.

Django's `create_cursor` looks at the connection's loader's `timezone` to decide whether a cursor
needs one of its own, and the C loader is a final extension type (no attribute can be added, no
subclass made). So what is registered is `UtcTimestamptzLoader`, a class that says its time zone and
whose instances are psycopg's C loader itself: psycopg's C row loader then takes its fast path.
"""

from __future__ import annotations

import datetime
from typing import Any

import psycopg
from django.db.backends.signals import connection_created
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
# psycopg's own loader for text timestamptz: the C one when psycopg's C extension is installed (the
# lock file's psycopg[binary]), else the Python one (then this changes nothing but who is called).
_PSYCOPG_LOADER: Any = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class UtcTimestamptzLoader:
    """psycopg's timestamptz loader under a class that says its time zone (what Django checks)."""

    format = Format.TEXT
    timezone = datetime.UTC

    def __new__(cls, oid: int, context: Any = None) -> Any:
        return _PSYCOPG_LOADER(oid, context)


def use_c_loader(connection: Any) -> bool:
    """Register the C loader on this Django connection's psycopg connection, when it reads the same
    datetimes as Django's: the session in UTC, Django's connection time zone UTC. True when it is in
    place (it stays for a pooled connection's later uses, which are then found as they are)."""
    raw = getattr(connection, "connection", None)
    if connection.vendor != "postgresql" or not isinstance(raw, psycopg.Connection):
        return False
    adapters = raw.adapters
    if adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is UtcTimestamptzLoader:
        return True
    if connection.timezone is not datetime.UTC or raw.info.parameter_status("TimeZone") != "UTC":
        return False
    adapters.register_loader(TIMESTAMPTZ_OID, UtcTimestamptzLoader)  # type: ignore[arg-type]  # (see above)
    return True


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    use_c_loader(connection)


def install() -> None:
    """Connect the receiver (consortium.apps): each connection Django opens, or takes from its pool,
    gets the C loader when it may."""
    connection_created.connect(_on_connection_created, dispatch_uid="consortium.timestamps")
