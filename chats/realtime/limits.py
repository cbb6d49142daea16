"""Sockets per user: at most WEBSOCKET_MAX_PER_USER open at once, across every process; a socket
past the limit closes the user's oldest with 4429.

- **Without REDIS_URL** (one process): the hub's own list of the user's sockets, oldest first.
- **With REDIS_URL**: a sorted set per user, member = `<hub id>|<n>` (one per socket), score = the
  time it opened. A socket that opens runs one script: add it, drop the members of hubs no longer
  alive, and take out the oldest members past the limit, which it returns. A socket that closes
  removes its member. A hub is alive while its key `<prefix>:ws-hub:<hub id>` is: the script sets
  the opener's own, the hub's heartbeat renews it (PRESENCE_TTL_SECONDS), a hub that stops
  deletes it, and a process that crashed lets it expire -- its sockets then stop counting at the
  next open, with nobody cleaning up after it.
- **An open or a close costs no round trip of its own.** The scripts of sockets opening together
  go in one pipeline, sent by one worker (a user's 100 sockets connecting at once were 100
  concurrent EVALs, a pool connection each). A close's member is queued, and one worker removes
  every member queued meanwhile in one pipeline (one ZREM per user): a user's flood of sockets
  closed 4429 together was a ZREM each, concurrent, and redis-py opened a connection for each one
  the pool lacked (~1.5 ms of the loop's CPU apiece in redis-py 8.1, which reads its own package
  metadata per connection: bench/README.md, "One user's flood"). An open of the same user takes
  its queued members into its own script, removed before it counts, so a socket closed here
  never counts against a newer one.
- The evicted sockets of this hub are closed here. Those of other hubs are named in a control
  event `socket.evicted` {user_id, sockets} published to the user's groups `user.<id>` (their /ws/
  sockets) and `session.<id>` (their /ws/chat/<id>/ sockets), as chats.realtime.sessions does;
  each hub's router hands it to `on_evicted`, which closes its own of them.

Redis unreachable (or silent for REDIS_WAIT_SECONDS): the socket is kept and nothing is evicted (a
limit is no reason to refuse service); a close whose removal failed leaves a member that is the
oldest and so the next evicted, closing nobody.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any, Protocol

from django.conf import settings

from accounts import presence as presence_store
from chats.realtime.envelopes import envelope, publish, user_group
from chats.realtime.sessions import session_group
from chats.realtime.tasks import settle

logger = logging.getLogger(__name__)

CLOSE_TOO_MANY = 4429
EVICTED = "socket.evicted"
# A Redis that does not answer holds a connect or a close no longer than this (the loop's client
# has no read timeout: accounts.presence). asyncio.timeout, not wait_for: Python 3.11's wait_for
# loses a cancel that comes as the command is answered (chats.realtime.resync).
REDIS_WAIT_SECONDS = 1.0

# Members removed per ZREM command of the closes' pipeline.
REMOVALS_PER_COMMAND = 500

# KEYS[1] = the user's sockets, KEYS[2] = this hub's key; ARGV = now, member, limit, ttl, the hubs'
# key prefix, then the members of this hub's sockets of the user closed since (queued removals).
# Returns the members evicted (the oldest past the limit).
_OPENED = """
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
for i = 6, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 86400)
local alive = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local hub = string.match(member, '^(.*)|')
  if alive[hub] == nil then alive[hub] = redis.call('EXISTS', ARGV[5] .. hub) == 1 end
  if not alive[hub] then redis.call('ZREM', KEYS[1], member) end
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if excess <= 0 then return {} end
local evicted = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
redis.call('ZREM', KEYS[1], unpack(evicted))
return evicted
"""


class LimitedSocket(Protocol):
    """What this module needs of a socket (chats.realtime.consumer.RealtimeConsumer)."""

    user_id: int
    socket_key: str

    async def close(self, code: int) -> None: ...


def _prefix() -> str:
    return str(settings.CACHES["default"].get("KEY_PREFIX", "") or "messenger")


def _sockets_key(user_id: int) -> str:
    return f"{_prefix()}:ws-sockets:{user_id}"


def _hubs_prefix() -> str:
    return f"{_prefix()}:ws-hub:"


class SocketLimit:
    """One per hub: the hub's sockets by key, and the user's oldest closed past the limit."""

    def __init__(self) -> None:
        self.hub_id = uuid.uuid4().hex[:12]
        self._numbers = itertools.count(1)
        # Every socket of this hub by key; per user, oldest first (the limit without Redis).
        self.sockets: dict[str, LimitedSocket] = {}
        self.by_user: dict[int, OrderedDict[str, LimitedSocket]] = {}
        # Members of closed sockets not yet removed from the shared sets, per user (with Redis).
        self.removals: dict[int, list[str]] = {}
        self._remover: asyncio.Task[None] | None = None
        # Sockets opening, their scripts not sent yet (with Redis); sent by one worker together.
        self._opening: list[tuple[LimitedSocket, int, asyncio.Future[list[Any] | None]]] = []
        self._counter: asyncio.Task[None] | None = None

    def new_key(self) -> str:
        return f"{self.hub_id}|{next(self._numbers)}"

    async def opened(self, socket: LimitedSocket) -> None:
        """An accepted socket: count it; close the user's oldest sockets past the limit."""
        self.sockets[socket.socket_key] = socket
        mine = self.by_user.setdefault(socket.user_id, OrderedDict())
        mine[socket.socket_key] = socket
        limit = settings.WEBSOCKET_MAX_PER_USER
        if limit <= 0:  # no limit
            return
        client = presence_store._redis_async()
        if client is None:
            evicted = list(itertools.islice(mine, max(0, len(mine) - limit)))
        else:
            found = await self._count(socket, limit)
            if found is None:
                return
            evicted = [key.decode() if isinstance(key, bytes) else key for key in found]
        elsewhere = [key for key in evicted if key not in self.sockets]
        if elsewhere:
            await publish(
                [
                    envelope(group, EVICTED, "", user_id=socket.user_id, sockets=elsewhere)
                    for group in (user_group(socket.user_id), session_group(socket.user_id))
                ]
            )
        await self._close(key for key in evicted if key in self.sockets)

    async def _count(self, socket: LimitedSocket, limit: int) -> list[Any] | None:
        """The opening socket's script, sent with those of the sockets opening meanwhile in one
        pipeline; its evicted members, or None when Redis failed it."""
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._opening.append((socket, limit, future))
        if self._counter is None or self._counter.done():
            self._counter = asyncio.get_running_loop().create_task(self._count_opened())
        return await future

    async def _count_opened(self) -> None:
        while self._opening:
            batch, self._opening = self._opening, []
            client = presence_store._redis_async()
            results: list[Any]
            try:
                pipeline = client.pipeline(transaction=False)
                for socket, limit, _ in batch:
                    pipeline.eval(
                        _OPENED,
                        2,
                        _sockets_key(socket.user_id),
                        _hubs_prefix() + self.hub_id,
                        time.time(),
                        socket.socket_key,
                        limit,
                        settings.PRESENCE_TTL_SECONDS,
                        _hubs_prefix(),
                        *self.removals.pop(socket.user_id, []),
                    )
                async with asyncio.timeout(REDIS_WAIT_SECONDS):
                    results = await pipeline.execute(raise_on_error=False)
            except Exception as error:
                results = [error] * len(batch)
            for (socket, _, future), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    logger.warning("could not count user %s's sockets; none closed", socket.user_id, exc_info=result)
                    result = None
                if not future.done():
                    future.set_result(result)

    def closed(self, socket: LimitedSocket) -> None:
        """A socket that closed (idempotent): it no longer counts here at once, in the shared set
        once the worker has removed it (the caller waits for nothing)."""
        if self.sockets.pop(socket.socket_key, None) is None:
            return
        mine = self.by_user.get(socket.user_id)
        if mine is not None:
            mine.pop(socket.socket_key, None)
            if not mine:
                del self.by_user[socket.user_id]
        if presence_store._redis_async() is None:
            return
        self.removals.setdefault(socket.user_id, []).append(socket.socket_key)
        if self._remover is None or self._remover.done():
            self._remover = asyncio.get_running_loop().create_task(self._remove_closed())

    async def _remove_closed(self) -> None:
        """Remove the queued members of closed sockets, all of them in one pipeline, until none is
        left. A failure leaves them in the set: the oldest, so the next evicted, closing nobody."""
        while self.removals:
            removals, self.removals = self.removals, {}
            client = presence_store._redis_async()
            if client is None:
                return
            pipeline = client.pipeline(transaction=False)
            for user_id, keys in removals.items():
                for start in range(0, len(keys), REMOVALS_PER_COMMAND):
                    pipeline.zrem(_sockets_key(user_id), *keys[start : start + REMOVALS_PER_COMMAND])
            try:
                async with asyncio.timeout(REDIS_WAIT_SECONDS):
                    await pipeline.execute()
            except Exception:
                logger.warning("could not uncount %d closed sockets", sum(map(len, removals.values())), exc_info=True)

    async def on_evicted(self, group: str, message: dict[str, Any], listeners: set[Any]) -> None:
        """The router's control for `socket.evicted`: close this hub's sockets named in it."""
        await self._close(key for key in message["sockets"] if key in self.sockets)

    async def _close(self, keys: Any) -> None:
        for socket in [self.sockets[key] for key in keys]:
            await socket.close(CLOSE_TOO_MANY)

    async def heartbeat(self) -> None:
        """Keep this hub alive in the shared sets (its sockets count only while it is)."""
        client = presence_store._redis_async()
        if client is not None and self.sockets:
            await client.set(_hubs_prefix() + self.hub_id, "1", ex=settings.PRESENCE_TTL_SECONDS)

    async def stop(self) -> None:
        await settle(task for task in (self._counter, self._remover) if task is not None)
        client = presence_store._redis_async()
        if client is not None:
            try:
                async with asyncio.timeout(REDIS_WAIT_SECONDS):
                    await client.delete(_hubs_prefix() + self.hub_id)
            except Exception:
                logger.warning("could not retire hub %s's socket count", self.hub_id, exc_info=True)
        self.sockets.clear()
        self.by_user.clear()
