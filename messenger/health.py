"""GET /healthz: is the database answering, does the channel layer carry a message, is there disk?

Answers within HEALTH_CHECK_SECONDS (plus a little) whatever hangs: the database and disk checks
each run in a thread of their own, and the channel layer's round trip under asyncio.timeout. A
check still running from an earlier request (a hung database) is not started again: the new
request waits for it until that run's own deadline, and past it reports the check down at once.
So a hung database costs one thread and one connection attempt per process, not one per request.
(messenger/http_threads.py serves /healthz on a thread of its own, beside the busy pool.)

    {"database": "ok", "channel_layer": "ok", "disk": "ok"}   200
    {"database": "down", "channel_layer": "ok", "disk": "full"}  503

"disk" is "full" when the upload folder's file system has less than DISK_MIN_FREE_BYTES free.
"""

import asyncio
import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 1.5


class Probe:
    """A check run in its own thread, at most one run at a time; `result` waits for it with a deadline."""

    def __init__(self, name: str, check: Callable[[], str]) -> None:
        self.name = name
        self.check = check
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"health-{name}")
        self._lock = threading.Lock()
        self._running: Future[str] | None = None
        self._deadline = 0.0

    def start(self, timeout: float) -> tuple[Future[str], float]:
        """The run in flight, or a new one if none is; with the moment its answer is due."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._executor.submit(self.check)
                self._deadline = time.monotonic() + timeout
            return self._running, self._deadline

    @staticmethod
    def outcome(run: tuple[Future[str], float], name: str) -> str:
        future, deadline = run
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            logger.error("health: the %s check did not answer in time", name)
            return "down"
        except Exception:
            logger.exception("health: the %s check failed", name)
            return "down"


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database is down")
        return False
    finally:
        # The probe's thread keeps no connection between checks (nor a broken one).
        connection.close()


def database_status() -> str:
    return "ok" if database_ok() else "down"


def disk_status() -> str:
    """ "full" when the upload folder's file system has less than DISK_MIN_FREE_BYTES free."""
    path = Path(settings.UPLOADS_DIR)
    while not path.exists() and path != path.parent:
        path = path.parent
    free = shutil.disk_usage(path).free
    if free < settings.DISK_MIN_FREE_BYTES:
        logger.error("health: %s has %s bytes free (DISK_MIN_FREE_BYTES=%s)", path, free, settings.DISK_MIN_FREE_BYTES)
        return "full"
    return "ok"


async def _layer_round_trip() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await layer.new_channel()
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.check", "token": token})
    received = await layer.receive(channel)
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


async def _layer_round_trip_within(timeout: float) -> bool:
    # The timeout cancels the round trip when it runs out, so nothing of it stays in flight.
    async with asyncio.timeout(timeout):
        return await _layer_round_trip()


def channel_layer_ok(timeout: float = HEALTH_CHECK_SECONDS) -> bool:
    try:
        return async_to_sync(_layer_round_trip_within)(timeout)
    except Exception:
        logger.exception("health: channel layer is down")
        return False


PROBES = {"database": Probe("database", database_status), "disk": Probe("disk", disk_status)}


def healthz(request: HttpRequest) -> JsonResponse:
    runs = {name: probe.start(HEALTH_CHECK_SECONDS) for name, probe in PROBES.items()}
    layer = "ok" if channel_layer_ok() else "down"
    checks = {
        "database": Probe.outcome(runs["database"], "database"),
        "channel_layer": layer,
        "disk": Probe.outcome(runs["disk"], "disk"),
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)
