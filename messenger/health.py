"""GET /healthz: is the database answering, and does the channel layer carry a message?"""

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database is down")
        return False


async def _layer_round_trip() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await layer.new_channel()
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.check", "token": token})
    received = await asyncio.wait_for(layer.receive(channel), timeout=2)
    await _forget_channel(layer, channel)
    return bool(received.get("token") == token)


async def _forget_channel(layer: Any, channel: str) -> None:
    """Release the probe's channel: the PubSub layer drops a channel's Redis subscription only
    when a receive on it is cancelled (otherwise every health check would leave one behind)."""
    waiter = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(BaseException):
        await waiter


def channel_layer_ok() -> bool:
    try:
        return async_to_sync(_layer_round_trip)()
    except Exception:
        logger.exception("health: channel layer is down")
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": "ok" if database_ok() else "down",
        "channel_layer": "ok" if channel_layer_ok() else "down",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)
