"""Who is online: a count of open sockets per user, kept in the shared cache.

With REDIS_URL the cache is Redis, so every server process sees the same counts; in the
embedded default it is the process's own memory, which is all there is.
"""

from collections.abc import Iterable

from django.core.cache import cache

# A crashed process never decrements: its counts fade after this many seconds unless
# a live connection refreshes them (see chats.hub).
PRESENCE_TTL_SECONDS = 120


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def online_ids(user_ids: Iterable[int]) -> set[int]:
    ids = list(set(user_ids))
    if not ids:
        return set()
    found = cache.get_many([_key(i) for i in ids])
    return {i for i in ids if (found.get(_key(i)) or 0) > 0}


def connected(user_id: int) -> bool:
    """Count one more open socket; True when the user just came online."""
    key = _key(user_id)
    if cache.add(key, 1, PRESENCE_TTL_SECONDS):
        return True
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, PRESENCE_TTL_SECONDS)
        return True
    cache.touch(key, PRESENCE_TTL_SECONDS)
    return count == 1


def refresh(user_id: int) -> None:
    cache.touch(_key(user_id), PRESENCE_TTL_SECONDS)


def disconnected(user_id: int) -> bool:
    """Count one socket fewer; True when the user's last socket closed."""
    key = _key(user_id)
    try:
        count = cache.decr(key)
    except ValueError:
        return True
    if count <= 0:
        cache.delete(key)
        return True
    return False
