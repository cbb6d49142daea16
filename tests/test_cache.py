"""The shared cache answers from the process's memory while Redis is unreachable, and goes back to
Redis once it is reachable again (messenger/cache.py)."""

import pytest

from messenger import cache as fallback
from messenger.cache import FallbackRedisCache
from tests.own_redis import REDIS_SERVER, OwnRedis

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to start a Redis of the test's own")


def test_the_cache_counts_locally_while_redis_is_down_and_on_redis_again_once_it_is_back(tmp_path, monkeypatch):
    # given: the cache on a Redis of the test's own, tried again at once after a failure
    monkeypatch.setattr(fallback, "RETRY_SECONDS", 0.0)
    own = OwnRedis(tmp_path)
    own.start()
    cache = FallbackRedisCache(own.url, {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}})
    try:
        cache.set("shared", 1)
        assert cache.get("shared") == 1
        # when Redis dies: no error, the process's own memory answers
        own.kill()
        cache.set("history", [1, 2])
        assert cache.get("history") == [1, 2]
        assert cache.get("shared") is None  # what Redis held is not here
        # when it is back: Redis answers again
        own.start()
        cache.set("after", 3)
        assert cache.get("after") == 3
        assert cache.local.get("after") is None
    finally:
        own.kill()
