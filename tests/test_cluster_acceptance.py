"""cluster/acceptance.py's two assumptions about what it talks to: which host an UPSTREAM_HEADER value
names (also after nginx tried a second host), and where Django's cache keeps a client's `auth`
throttle history (deleted between its browser parts)."""

import ssl
import time

import pytest
from rest_framework.throttling import SimpleRateThrottle

from cluster.acceptance import Proxy, empty_auth_window
from cluster.hosts import AppHost, Network
from messenger.cache import FallbackRedisCache
from tests.own_redis import REDIS_SERVER, OwnRedis


def test_the_upstream_header_names_the_host_that_answered_last(tmp_path):
    # given: three hosts on their loopback fallback addresses (nothing started)
    network = Network(3)
    network.fallback = True
    hosts = [AppHost(network, index, {}, tmp_path, workers=1) for index in range(3)]
    proxy = Proxy(443, ssl.create_default_context(), hosts)
    # then: nginx's $upstream_addr after a retry lists both; the answer came from the last
    assert proxy.host_named("127.0.0.3:8000") is hosts[1]
    assert proxy.host_named("127.0.0.2:8000, 127.0.0.4:8000") is hosts[2]
    assert proxy.host_named("") is None


@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to start a Redis of the test's own")
def test_emptying_one_clients_auth_window_keeps_the_others(tmp_path):
    # given: the app's cache (KEY_PREFIX as CHANNEL_LAYER_PREFIX sets it) on a Redis of the test's own,
    # holding the auth throttle's history of two clients under DRF's own key format
    own = OwnRedis(tmp_path)
    own.start()
    cache = FallbackRedisCache(own.url, {"KEY_PREFIX": "cluster", "OPTIONS": {"socket_timeout": 1}})
    key = SimpleRateThrottle.cache_format
    try:
        for client in ("127.0.0.1", "127.0.0.21"):
            cache.set(key % {"scope": "auth", "ident": client}, [time.time()] * 5, 60)
        # when
        deleted = empty_auth_window(("127.0.0.1", own.port), "cluster", "127.0.0.1")
        # then
        assert deleted == 1
        assert cache.get(key % {"scope": "auth", "ident": "127.0.0.1"}) is None
        assert len(cache.get(key % {"scope": "auth", "ident": "127.0.0.21"})) == 5
    finally:
        own.kill()
