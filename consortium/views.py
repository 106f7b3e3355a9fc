from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from routing.layer_watch import layer_answers


def _database_answers() -> bool:
    try:
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
