"""The shared cache on Redis, answered from this process's memory while Redis is unreachable.

What the cache holds is rate-limit history (DRF's throttles: login, refresh, registration,
uploads): worth sharing between processes, never worth failing a login for. `FallbackRedisCache`
is Django's RedisCache; an operation that cannot reach Redis is answered by a local-memory cache
of this process instead, and Redis is tried again RETRY_SECONDS later. While Redis is down each
process counts on its own, so a client can get up to N times a rate across N processes; the
history counted locally is not carried back to Redis (a window of a minute, at most).
"""

import logging
import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class FallbackRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.local = LocMemCache(f"fallback-{id(self)}", {**params, "OPTIONS": {}})
        self._retry_at = 0.0

    def _either(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() >= self._retry_at:
            try:
                return getattr(super(), name)(*args, **kwargs)
            except UNREACHABLE as error:
                logger.warning("cache: Redis unreachable (%r); counting in this process for %ss", error, RETRY_SECONDS)
                self._retry_at = time.monotonic() + RETRY_SECONDS
        return getattr(self.local, name)(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("add", *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("touch", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get_many", *args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set_many", *args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete_many", *args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("has_key", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("incr", *args, **kwargs)

    def clear(self) -> Any:
        self.local.clear()
        return self._either("clear")
