"""REDIS_SENTINELS: the channel layer, the cache and presence find the primary through Redis Sentinel
and follow it when it fails over. On a primary, a replica and three sentinels of the test's own
(faults.sentinel), on loopback; the shared Redis is not used."""

import asyncio
import json
import time
import uuid

import pytest
import redis
from django.test import override_settings

from accounts import presence
from chats.realtime.adapter import BatchedRedisPubSubChannelLayer, watch_reconnects
from faults.infra import program
from faults.sentinel import MASTER, OwnSentinelRedis
from messenger.cache import FallbackRedisCache
from messenger.redis_conn import layer_host, parse_sentinels, url_options
from tests.test_settings import start

pytestmark = pytest.mark.skipif(program("redis-server") is None, reason="needs redis-server")


@pytest.fixture
def sentinel_redis(tmp_path):
    own = OwnSentinelRedis(tmp_path, tmp_path / "logs")
    try:
        own.start()
        yield own
    finally:
        own.stop()


def test_sentinels_are_parsed_as_host_port_pairs():
    assert parse_sentinels(" 10.0.0.1:26379, [::1]:26380 ,") == [("10.0.0.1", 26379), ("::1", 26380)]


@pytest.mark.parametrize("raw", ["10.0.0.1", "10.0.0.1:", "10.0.0.1:port", ":26379", "10.0.0.1:70000"])
def test_a_malformed_sentinel_is_refused_at_start(tmp_path, raw):
    # when
    result = start(tmp_path, DEBUG="true", REDIS_SENTINELS=raw)
    # then
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "is not host:port" in result.stderr


def test_with_sentinels_the_layer_and_the_cache_ask_them_for_the_primary(tmp_path):
    # when
    result = start(
        tmp_path,
        "print(json.dumps([s.REDIS_URL, s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0],"
        " s.CACHES['default']['OPTIONS'].get('pool_class')]))",
        DEBUG="true",
        REDIS_SENTINELS="10.213.0.1:26379,10.213.0.1:26380",
        REDIS_SENTINEL_MASTER="chat",
    )
    # then
    assert result.returncode == 0, result.stderr
    url, host, pool_class = json.loads(result.stdout)
    assert url == "redis://chat/0"
    assert host["master_name"] == "chat"
    assert host["sentinels"] == [["10.213.0.1", 26379], ["10.213.0.1", 26380]]
    assert host["db"] == 0 and "address" not in host
    assert pool_class == "messenger.redis_conn.SentinelCachePool"


def test_the_url_gives_the_database_and_the_credentials_under_sentinels():
    # when
    host = layer_host("redis://app:s%40cret@ignored:1/3", [("h", 1)], "m", max_connections=5)
    # then
    assert url_options("redis://app:s%40cret@ignored:1/3") == {"db": 3, "username": "app", "password": "s@cret"}
    assert {key: host[key] for key in ("db", "password", "master_name", "max_connections")} == {
        "db": 3,
        "password": "s@cret",
        "master_name": "m",
        "max_connections": 5,
    }


async def until(condition, timeout: float, step: float = 0.1):
    """Poll `condition` (a coroutine function answering a value or None) for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = await condition()
        except (TimeoutError, redis.RedisError, OSError):
            found = None
        if found:
            return found
        await asyncio.sleep(step)
    return None


async def test_every_client_follows_the_primary_when_it_fails_over(sentinel_redis):
    # given: the layer, the cache and both presence clients configured with the sentinels only
    sentinels = sentinel_redis.sentinels
    url = f"redis://{MASTER}/0"
    with override_settings(REDIS_URL=url, REDIS_SENTINELS=sentinels, REDIS_SENTINEL_MASTER=MASTER):
        layer = BatchedRedisPubSubChannelLayer(
            hosts=[layer_host(url, sentinels, MASTER, socket_connect_timeout=1, socket_timeout=5)],
            prefix=f"sentinel{uuid.uuid4().hex[:8]}",
        )
        reconnects: list[float] = []
        channel = await layer.new_channel()
        await layer.group_add("chat.1", channel)
        assert watch_reconnects(layer, lambda: reconnects.append(time.monotonic()))
        cache = FallbackRedisCache(
            url,
            {
                "OPTIONS": {"pool_class": "messenger.redis_conn.SentinelCachePool", "socket_timeout": 1},
                "KEY_PREFIX": "t",
            },
        )
        sync_client = presence._redis()
        async_client = presence._redis_async()
        await layer.group_send("chat.1", {"type": "relay", "n": 0})
        assert (await asyncio.wait_for(layer.receive(channel), 2))["n"] == 0
        await asyncio.to_thread(cache.set, "before", "1", 60)
        assert await asyncio.to_thread(sync_client.set, "presence-sync", "1")
        assert await async_client.set("presence-async", "1")
        old = sentinel_redis.primary()
        assert old is not None
        # when: the primary dies
        old_port = sentinel_redis.kill_primary()
        promoted_after = await asyncio.to_thread(sentinel_redis.wait_promoted, old_port, 30)
        new = sentinel_redis.primary()
        # then: each client works against the promoted replica within seconds, and the layer said
        # it reconnected (the hub's cue to tell every socket `resync`)
        assert new is not None and new != old
        direct = redis.Redis(host=new[0], port=new[1], socket_timeout=1)

        # (one receive, never cancelled: cancelling one unsubscribes its channel, channels-redis's rule)
        receiving = asyncio.ensure_future(layer.receive(channel))

        async def delivered():
            await layer.group_send("chat.1", {"type": "relay", "n": 1})
            await asyncio.wait([receiving], timeout=1)
            return receiving.done()

        assert await until(delivered, 10)
        assert receiving.result()["n"] == 1
        assert reconnects, "the layer did not report its reconnect"

        async def cached():
            await asyncio.to_thread(cache.set, "after", "2", 60)
            return direct.get(cache.make_and_validate_key("after"))

        assert await until(cached, 10) is not None
        assert direct.get(cache.make_and_validate_key("before")) is not None  # replicated before the kill
        assert await until(lambda: asyncio.to_thread(sync_client.set, "presence-sync", "2"), 10)
        assert await until(lambda: async_client.set("presence-async", "2"), 10)
        assert direct.get("presence-sync") == b"2" and direct.get("presence-async") == b"2"
        print(f"failover: promoted after {promoted_after:.1f} s")
        await layer.flush()
        await async_client.aclose()
