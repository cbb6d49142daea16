"""Who is online: a user is online while they have an open socket on any server process.

Each server process counts its own sockets per user in memory (chats.realtime.hub) and tells this
module only of the transitions: its first socket for a user (`process_online`), its last
(`process_offline`). What is shared is, per user, which processes hold a socket and until
when that claim is good:

- With REDIS_URL: a sorted set per user, member = process id, score = expiry time. The hub's
  heartbeat pushes the expiry of every user it holds forward (`heartbeat`); a process that
  crashes stops doing so and its claims fade after PRESENCE_TTL_SECONDS, without anyone
  cleaning up. `online_ids` counts unexpired claims, one pipelined round trip for a page.
- Without it (the embedded default, one process): the Django cache, one key per user with
  the same TTL, refreshed by the same heartbeat.

`online_ids` is synchronous (serializers call it in worker threads); the transitions and the
heartbeat are coroutines for the hub, on the event loop: with Redis through an asyncio client
of the loop, without it straight on the in-process cache (no I/O, no thread hop).
"""

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from messenger import redis_conn

logger = logging.getLogger(__name__)

# Who this process is in the shared sets: unique per process start.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

_client_lock = threading.Lock()
_client: tuple[str, Any] | None = None  # (REDIS_URL, client): a changed URL (tests) gets a new client

# KEYS[1] = the user's set; ARGV = now, expiry, process id, ttl.
# Returns the number of live claims after adding ours (1 => the user just came online).
_ONLINE = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
"""
# Returns the number of live claims left after removing ours (0 => the user went offline).
_OFFLINE = """
redis.call('ZREM', KEYS[1], ARGV[2])
local left = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
if left == 0 then redis.call('DEL', KEYS[1]) end
return left
"""
# KEYS = the users' sets; ARGV = expiry, process id, ttl. Renews this process's claim in each.
_RENEW = """
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[2])
  redis.call('EXPIRE', key, ARGV[3])
end
return #KEYS
"""
HEARTBEAT_CHUNK = 500

# A Redis that does not answer (paused, a dropped network) must not hold a login or a page: a
# command of the threads' client waits at most this, is tried once more, and a read that failed
# is not tried again for UNREACHABLE_SECONDS (everyone elsewhere reported offline meanwhile).
_CLIENT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}
UNREACHABLE_SECONDS = 5.0
_unreachable_until = 0.0


def _redis() -> Any:
    """A synchronous redis-py client of its own (thread-safe pool), or None without REDIS_URL."""
    global _client
    if not getattr(settings, "REDIS_URL", ""):
        return None
    url = redis_conn.identity()
    current = _client
    if current is None or current[0] != url:
        with _client_lock:
            current = _client
            if current is None or current[0] != url:
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                client = redis_conn.sync_client(
                    max_connections=settings.REDIS_MAX_CONNECTIONS, retry=Retry(NoBackoff(), 1), **_CLIENT_OPTIONS
                )
                current = (url, client)
                _client = current
    return current[1]


def _ttl() -> int:
    """A claim lives this long unless a heartbeat (every PRESENCE_HEARTBEAT_SECONDS) renews it."""
    return int(settings.PRESENCE_TTL_SECONDS)


def _prefix() -> str:
    return str(settings.CACHES["default"].get("KEY_PREFIX", "") or "messenger")


def _key(user_id: int) -> str:
    return f"{_prefix()}:presence:{user_id}"


def _cache_key(user_id: int) -> str:
    return f"presence:{user_id}"


# Users with a socket open on this process, counted by its hubs (chats.realtime.hub): online
# without asking Redis -- a socket's sender, for one, on every message it sends.
_here: Counter[int] = Counter()


def socket_opened_here(user_id: int) -> None:
    _here[user_id] += 1


def socket_closed_here(user_id: int) -> None:
    _here[user_id] -= 1
    if _here[user_id] <= 0:
        del _here[user_id]


def online_ids(user_ids: Iterable[int]) -> set[int]:
    """Which of these users are online: here first (a socket on this process), then everywhere."""
    wanted = set(user_ids)
    here = {user_id for user_id in wanted if user_id in _here}
    ids = list(wanted - here)
    if not ids:
        return here
    return here | _online_elsewhere(ids)


def forget_unreachable() -> None:
    """Ask Redis again at the next read, though it failed less than UNREACHABLE_SECONDS ago (tests)."""
    global _unreachable_until
    _unreachable_until = 0.0


def _online_elsewhere(ids: list[int]) -> set[int]:
    global _unreachable_until
    client = _redis()
    if client is None:
        found = cache.get_many([_cache_key(i) for i in ids])
        return {i for i in ids if found.get(_cache_key(i))}
    if time.monotonic() < _unreachable_until:
        return set()
    now = f"({time.time()}"
    pipe = client.pipeline(transaction=False)
    for user_id in ids:
        pipe.zcount(_key(user_id), now, "+inf")
    try:
        counts = pipe.execute()
    except Exception:
        # Presence is a nicety: with Redis away, pages still render (everyone offline).
        logger.warning("presence: Redis unreachable; reporting users offline", exc_info=True)
        _unreachable_until = time.monotonic() + UNREACHABLE_SECONDS
        return set()
    return {user_id for user_id, count in zip(ids, counts, strict=True) if count}


_async_clients: dict[asyncio.AbstractEventLoop, tuple[str, Any]] = {}


def _redis_async() -> Any:
    """The running loop's asyncio redis-py client (one per loop: tests run many), or None."""
    if not getattr(settings, "REDIS_URL", ""):
        return None
    url = redis_conn.identity()
    loop = asyncio.get_running_loop()
    current = _async_clients.get(loop)
    if current is None or current[0] != url:
        for old in [old for old in _async_clients if old.is_closed()]:
            del _async_clients[old]
        # No read timeout on the loop's client: a loop busy for a second (a connect storm) would
        # time out answers that came; a Redis that never answers holds the presence worker only.
        client = redis_conn.async_client(max_connections=settings.REDIS_MAX_CONNECTIONS, socket_connect_timeout=1)
        current = (url, client)
        _async_clients[loop] = current
    return current[1]


async def transitions(changes: list[tuple[int, bool]]) -> list[bool]:
    """Apply this process's transitions in order: (user_id, True) for its first socket of the
    user, (user_id, False) for its last. Each answer: did the user come online / go offline?
    With Redis, one pipelined round trip for the whole list."""
    if not changes:
        return []
    client = _redis_async()
    if client is None:
        answers = []
        for user_id, online in changes:
            if online:
                answers.append(bool(cache.add(_cache_key(user_id), 1, _ttl())))
            else:
                cache.delete(_cache_key(user_id))
                answers.append(True)
        return answers
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for user_id, online in changes:
        if online:
            pipe.eval(_ONLINE, 1, _key(user_id), now, now + _ttl(), PROCESS_ID, _ttl())
        else:
            pipe.eval(_OFFLINE, 1, _key(user_id), now, PROCESS_ID)
    results = await pipe.execute()
    return [int(live) == 1 if online else int(live) == 0 for (_, online), live in zip(changes, results, strict=True)]


async def process_online(user_id: int) -> bool:
    """This process opened its first socket for the user; True when the user just came online."""
    return (await transitions([(user_id, True)]))[0]


async def process_offline(user_id: int) -> bool:
    """This process closed its last socket for the user; True when the user went offline."""
    return (await transitions([(user_id, False)]))[0]


async def heartbeat(user_ids: Iterable[int]) -> None:
    """Renew this process's claims for the users it holds sockets for.

    In chunks of HEARTBEAT_CHUNK users, one script call each (two commands a user cost ~19 µs of
    loop time to build and parse: 2,500 users held the loop ~50 ms every PRESENCE_HEARTBEAT_SECONDS,
    and messages waited): the loop serves sockets between the chunks.
    """
    ids = list(user_ids)
    if not ids:
        return
    client = _redis_async()
    chunks = [ids[start : start + HEARTBEAT_CHUNK] for start in range(0, len(ids), HEARTBEAT_CHUNK)]
    if client is None:
        for chunk in chunks:
            for user_id in chunk:
                if not cache.touch(_cache_key(user_id), _ttl()):
                    cache.add(_cache_key(user_id), 1, _ttl())
            await asyncio.sleep(0)
        return
    expiry = time.time() + _ttl()
    for chunk in chunks:
        keys = [_key(user_id) for user_id in chunk]
        await client.eval(_RENEW, len(keys), *keys, expiry, PROCESS_ID, _ttl())
