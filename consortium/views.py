from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from routing.layer_watch import layer_answers

# How long /healthz waits for a database connection. Through Django, a request waits for the pool's
# own timeout (10 s, consortium/settings.py) while the server is down: a probe with a shorter
# timeout of its own then heard nothing at all instead of 503 (found by tests/faults: PostgreSQL
# restarted under load).
DATABASE_WAIT = 2.0


def _database_answers() -> bool:
    pool = getattr(connection, "pool", None)  # None without a pool (VR_DB_POOL_MAX=0, SQLite)
    try:
        if pool is not None:
            pool.open()  # as Django does before its first connection (does nothing once open)
            with pool.connection(timeout=DATABASE_WAIT) as conn:
                row = conn.execute("SELECT 1").fetchone()
                return row is not None and tuple(row) == (1,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False
    finally:
        connection.close()


async def healthz(request: HttpRequest) -> JsonResponse:
    db_ok = await sync_to_async(_database_answers, thread_sensitive=False)()
    layer_ok = await layer_answers()  # a round trip through the layer
    status = 200 if db_ok and layer_ok else 503
    return JsonResponse({"database": db_ok, "channel_layer": layer_ok}, status=status)
