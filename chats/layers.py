"""The channel layers the hub runs on: Channels' and channels-redis's, minus a per-call cost.

Without Redis (the embedded default): `InMemoryChannelLayer` sweeps every channel and every
group membership for expiry on each `receive` and `group_send`: O(groups) per event. The hub
keeps one membership per group it serves (two or more per open socket), so with 5,000 sockets
the sweep was 82 % of the server's CPU while they connected (2.1 ms a connect instead of
0.5 ms). Here it runs at most once a second: messages still expire after `expiry` seconds (up
to a second later) and memberships after `group_expiry` (a day; the hub renews its own).

With Redis: channels-redis's PubSub layer, its commands batched (BatchedShard).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

SWEEP_INTERVAL_SECONDS = 1.0

T = TypeVar("T")


# Without Redis -------------------------------------------------------------------------------


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _swept_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < SWEEP_INTERVAL_SECONDS:
            return
        self._swept_at = now
        super()._clean_expired()


# With Redis ---------------------------------------------------------------------------------


class BatchedShard(RedisSingleShardConnection):
    """One Redis host of the PubSub layer, whose commands of one moment go out together.

    channels-redis sends each SUBSCRIBE, UNSUBSCRIBE and PUBLISH as a command of its own, one at
    a time under one lock: 60-80 µs of the process's CPU each here, against about 10 for one
    sent among a hundred. A connect costs one or two subscriptions and a presence PUBLISH, so a
    connect storm spent more on this than on anything else of ours. Here:

    - subscriptions and unsubscriptions asked while one is being sent are sent together next,
      consecutive ones of a kind as one command, in the order asked (a subscribe, unsubscribe,
      subscribe of one group stays in that order); each caller returns once its command is
      written, as before;
    - publishes asked while one is being sent go next as one pipeline (in the order asked; one
      send at a time, so a process's events leave in order); each caller returns once Redis has
      answered, or gets its error.

    It overrides channels-redis 4.3's shard (its lock, pubsub client and subscription set), so
    an upgrade of channels-redis is checked by tests/realtime/test_batched_layer.py on Redis.
    """

    def __init__(self, host: dict[str, Any], channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._changes: Batches[tuple[bool, str]] = Batches(self._apply_changes)
        self._publishes: Batches[tuple[str, bytes]] = Batches(self._publish)

    async def subscribe(self, channel: str) -> None:
        await self._changes.put((True, channel))

    async def unsubscribe(self, channel: str) -> None:
        await self._changes.put((False, channel))

    async def publish(self, channel: str, message: bytes) -> None:
        await self._publishes.put((channel, message))

    async def _apply_changes(self, changes: list[tuple[bool, str]]) -> None:
        async with self._lock:
            self._ensure_redis()
            self._ensure_receiver()
            for subscribe, run in itertools.groupby(changes, key=lambda change: change[0]):
                channels = dict.fromkeys(channel for _, channel in run)
                if subscribe:
                    new = [channel for channel in channels if channel not in self._subscribed_to]
                    if new:
                        await self._pubsub.subscribe(*new)
                        self._subscribed_to.update(new)
                else:
                    gone = [channel for channel in channels if channel in self._subscribed_to]
                    if gone:
                        await self._pubsub.unsubscribe(*gone)
                        self._subscribed_to.difference_update(gone)

    async def _publish(self, publishes: list[tuple[str, bytes]]) -> None:
        self._ensure_redis()
        pipeline = self._redis.pipeline(transaction=False)
        for channel, message in publishes:
            pipeline.publish(channel, message)
        await pipeline.execute()

    async def flush(self) -> None:
        await self._changes.close()
        await self._publishes.close()
        await super().flush()


class Batches(Generic[T]):
    """Items handed to `send` in order: at once when nothing is being sent, else in a batch.

    A caller that finds nothing in flight sends its item itself, with no task or future in
    between (a lone publish costs what channels-redis's does). Callers arriving while a send is
    in flight queue; one task sends all that queued as one batch when it is done, and so on.
    Each caller returns when its item was sent, or raises what sending it raised (a
    ConnectionError when the queue was closed first).
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self.send = send
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._sending = False
        self._worker: asyncio.Task[None] | None = None

    async def put(self, item: T) -> None:
        if not self._sending:
            self._sending = True
            try:
                await self.send([item])
            finally:
                self._sending = False
                self._start_worker()
            return
        done = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        await done

    def _start_worker(self) -> None:
        if self._queued and not self._sending:
            self._sending = True
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                waiting = [done for _, done in batch]
                try:
                    await self.send([item for item, _ in batch])
                except Exception as error:
                    _settle(waiting, error)
                except BaseException:
                    _settle(waiting, ConnectionError("the channel layer was closed"))
                    raise
                else:
                    _settle(waiting)
        finally:
            self._sending = False

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker
        queued, self._queued = self._queued, []
        _settle([done for _, done in queued], ConnectionError("the channel layer was closed"))


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None = None) -> None:
    for future in futures:
        if future.done():
            continue  # its caller was cancelled
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class BatchedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, hosts=hosts, **kwargs)
        self._shards = [BatchedShard(host, self) for host in decode_hosts(hosts)]


class BatchedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis's PubSub layer (same CONFIG, same wire format) on BatchedShard."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = BatchedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer
