"""Where Redis is: one address (REDIS_URL), or the current primary as Redis Sentinel names it.

With `REDIS_SENTINELS` (host:port,host:port,...) every Redis client of the server -- the channel
layer, the cache, presence and the socket limit -- asks those sentinels which server is the
primary of `REDIS_SENTINEL_MASTER`, and asks again when a connection to it fails: after a
failover the next connection goes to the promoted replica. REDIS_URL then gives only the
database number and the credentials (its host and port are not used).

The clients are redis-py's own (`redis.sentinel` and `redis.asyncio.sentinel`); channels-redis
builds the same pool from a host dict with `master_name` and `sentinels`
(channels_redis.utils.create_pool).
"""

from typing import Any
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# A sentinel that does not answer is skipped for the next one after this long.
SENTINEL_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}


def parse_sentinels(raw: str) -> list[tuple[str, int]]:
    """`host:port,[v6]:port,...` -> [(host, port)]; a malformed entry is a configuration error."""
    found: list[tuple[str, int]] = []
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"REDIS_SENTINELS entry {entry!r} is not host:port")
        found.append((host, int(port)))
    return found


def url_options(url: str) -> dict[str, Any]:
    """The database number and credentials of a redis:// URL (what a sentinel pool needs of it)."""
    parsed = urlparse(url)
    options: dict[str, Any] = {}
    path = parsed.path.lstrip("/")
    if path:
        if not path.isdigit():
            raise ImproperlyConfigured(f"REDIS_URL database {path!r} is not a number")
        options["db"] = int(path)
    if parsed.username:
        options["username"] = unquote(parsed.username)
    if parsed.password:
        options["password"] = unquote(parsed.password)
    return options


def sentinels() -> list[tuple[str, int]]:
    return list(getattr(settings, "REDIS_SENTINELS", []))


def identity() -> str:
    """What a cached client was made for (tests change the settings between runs)."""
    return f"{getattr(settings, 'REDIS_URL', '')}|{sentinels()}"


def layer_host(url: str, found: list[tuple[str, int]], master: str, **options: Any) -> dict[str, Any]:
    """The channel layer's host entry (channels_redis.utils.create_pool's two forms)."""
    if not found:
        return {"address": url, **options}
    return {
        "master_name": master,
        "sentinels": found,
        "sentinel_kwargs": SENTINEL_OPTIONS,
        **url_options(url),
        **options,
    }


def sync_client(**options: Any) -> Any:
    """A redis-py client of the primary (thread-safe pool); `options` are the connection's."""
    import redis
    from redis.sentinel import Sentinel

    found = sentinels()
    if not found:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    manager = Sentinel(found, sentinel_kwargs=SENTINEL_OPTIONS)
    return manager.master_for(settings.REDIS_SENTINEL_MASTER, **url_options(settings.REDIS_URL), **options)


def async_client(**options: Any) -> Any:
    """An asyncio redis-py client of the primary, for the running loop."""
    from redis import asyncio as aioredis
    from redis.asyncio.sentinel import Sentinel

    found = sentinels()
    if not found:
        return aioredis.Redis.from_url(settings.REDIS_URL, **options)
    manager = Sentinel(found, sentinel_kwargs=SENTINEL_OPTIONS)
    return manager.master_for(settings.REDIS_SENTINEL_MASTER, **url_options(settings.REDIS_URL), **options)


class SentinelCachePool:
    """Django's RedisCache `pool_class` under REDIS_SENTINELS: its `from_url(LOCATION, **options)`
    answers a sentinel-managed pool of the primary (LOCATION gives the database and credentials)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Any:
        from redis.sentinel import Sentinel, SentinelConnectionPool

        manager = Sentinel(sentinels(), sentinel_kwargs=SENTINEL_OPTIONS)
        return SentinelConnectionPool(settings.REDIS_SENTINEL_MASTER, manager, **url_options(url), **options)
