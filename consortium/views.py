from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False
    finally:
        connection.close()


async def _channel_layer_answers() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    group = f"healthz.{uuid.uuid4().hex}"
    try:
        # A round trip through the layer: only a working Redis (or the in-memory layer) answers.
        async with asyncio.timeout(2):
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            await layer.group_send(group, {"type": "healthz.ping"})
            await layer.receive(channel)
            await layer.group_discard(group, channel)
        return True
    except Exception:
        return False


async def healthz(request: HttpRequest) -> JsonResponse:
    db_ok = await sync_to_async(_database_answers, thread_sensitive=False)()
    layer_ok = await _channel_layer_answers()
    status = 200 if db_ok and layer_ok else 503
    return JsonResponse({"database": db_ok, "channel_layer": layer_ok}, status=status)
