"""Every use of a server library's internals, in one module, each with a plain fallback.

The real-time path leans on what daphne, Twisted, autobahn, channels and channels-redis do not
offer as API, where bench/ measured it worth it (figures in docs/realtime.md and bench/README.md):

- daphne's ASGI `send` hides the connection's autobahn protocol: `wire_of` finds it, and
  `deliver` frames a broadcast once and writes its bytes to each socket at once (Twisted's
  `writeSomeData`), instead of the ASGI `send` of every socket re-framing the same text;
- daphne hands the application an `asyncio.Queue.get` as `receive`: `queued_frames` takes the
  frames already waiting, so a fast sender's sends are stored together;
- channels-redis's PubSub shard sends each command alone: `BatchedShard` sends those of one
  moment together; Channels' in-memory layer sweeps every group on every event:
  `SweepingInMemoryChannelLayer` sweeps once a second;
- redis-py reconnects the PubSub connection and subscribes again without a word to anyone, and
  what was published in between is lost: `watch_reconnects` tells the hub (chats.realtime.resync).

The one other place that reaches into daphne is messenger/paced_server.py (its connection checks
and pings, spread out; its graceful shutdown, which tells each socket's application with a
SERVER_SHUTDOWN message), kept apart because importing daphne's Server installs Twisted's reactor,
which only the server process may do.

With SERVER_INTERNALS=false (settings) none of it is used: sockets are written through their
ASGI `send`, frames are received one at a time, and the stock layers run (settings.CHANNEL_LAYERS).
CI runs the real-time suite that way too (tests/realtime/test_plain_asgi.py), so an upgrade that
breaks an internal breaks this file's tests, and the fallback is known to work.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, create_pool, decode_hosts
from django.conf import settings
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from twisted.internet import asyncioreactor, tcp
from twisted.python import log as twisted_log

from chats.realtime.tasks import settle

T = TypeVar("T")

Send = Callable[[dict[str, Any]], Awaitable[None]]


def enabled() -> bool:
    return bool(getattr(settings, "SERVER_INTERNALS", True))


# daphne: the connection behind `send`, the frames behind `receive` -------------------------------


def wire_of(send: Any) -> Any:
    """The autobahn protocol behind daphne's ASGI `send`, or None (another server, or internals off).

    Daphne hands each connection `functools.partial(Server.handle_reply, protocol)`.
    """
    if not enabled():
        return None
    if isinstance(send, functools.partial) and getattr(send.func, "__name__", "") == "handle_reply" and send.args:
        protocol = send.args[0]
        if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "factory"):
            return protocol
    return None


def queued_frames(
    receive: Any, first: dict[str, Any], limit: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The frame just received and those already queued behind it (up to `limit`).

    Daphne (and Channels' test communicator) hand the application `asyncio.Queue.get` as
    `receive`; elsewhere frames are taken one at a time. Returns the frames and the non-frame
    message (a disconnect) met behind them, if any.
    """
    queue = getattr(receive, "__self__", None)
    frames = [first]
    if not enabled() or not isinstance(queue, asyncio.Queue):
        return frames, None
    while len(frames) < limit and not queue.empty():
        message = queue.get_nowait()
        if message["type"] != "websocket.receive":
            return frames, message
        frames.append(message)
    return frames, None


# The type of the message messenger.paced_server puts in each open socket's receive queue when
# the process shuts down (behind the frames already received): the application answers those,
# then closes the socket with 1001. (Under another server it never comes: the socket is cut.)
SERVER_SHUTDOWN = "server.shutdown"


# Twisted and autobahn: one broadcast frame to many sockets ---------------------------------------


class Socket(Protocol):
    """What `deliver` needs of a local socket (chats.realtime.consumer.RealtimeConsumer)."""

    user_id: int
    send: Send
    # Under daphne, once accepted: the connection's autobahn protocol (`wire_of`), written to
    # directly; None elsewhere (and before accept), where `send` is used.
    wire: Any


async def deliver(listeners: Iterable[Socket], text: str, skip_user: int | None = None) -> None:
    """Write one pre-encoded frame to every listener (but `skip_user`'s). The hot loop.

    Under daphne the frame is framed once (autobahn's prepareMessage, its API for broadcast)
    and its bytes written to each open connection (sendPreparedMessage), instead of going
    through the ASGI `send` of each socket, which re-encodes and re-frames the same text per
    socket. Elsewhere (tests, other servers) each socket's ASGI `send` is used.
    """
    prepared = None
    frame = None
    for listener in tuple(listeners):
        if listener.user_id == skip_user:
            continue
        wire = listener.wire
        try:
            if wire is not None:
                if wire.state == OPEN:
                    if prepared is None:
                        prepared = wire.factory.prepareMessage(text.encode())
                    if not write_now(wire, prepared.payloadHybi):
                        wire.sendPreparedMessage(prepared)
            else:
                if frame is None:
                    frame = {"type": "websocket.send", "text": text}
                await listener.send(frame)
        except Exception:
            pass  # the socket is going away; its disconnect will detach it


def write_now(wire: Any, data: bytes) -> bool:
    """Hand a framed message to the connection's socket now, when nothing waits before it.

    Twisted's `transport.write` only buffers: the bytes leave on a later pass of the reactor,
    which first registers the socket for writability and unregisters it once written -- per
    frame and per socket, the largest cost of a broadcast to many sockets. When neither
    autobahn's send queue nor the transport's buffers hold anything (the usual case), the frame
    goes to the socket at once through Twisted's own `writeSomeData` (what the reactor would
    call); what the kernel does not take is buffered by `transport.write`, behind it, so order
    is kept. False (nothing written) where that does not hold: the caller sends as autobahn does.
    """
    transport = wire.transport
    if (
        wire.send_queue
        or getattr(wire, "_perMessageCompress", True) is not None
        or type(transport) is not _TCP_SERVER
        or not transport.connected
        or transport.disconnecting
        or getattr(transport, "_writeDisconnected", True)
        or getattr(transport, "_tempDataLen", None) != 0
        or len(transport.dataBuffer) != transport.offset
    ):
        return False
    sent = transport.writeSomeData(data)
    if not isinstance(sent, int):
        return False  # the connection is lost: let autobahn and the reactor find out
    if sent < len(data):
        transport.write(data[sent:])
    wire.trafficStats.outgoingOctetsWireLevel += len(data)
    return True


def send_ping(wire: Any) -> bool:
    """autobahn's keepalive ping (`_sendAutoPing`: the same 12-byte payload, pending pong and
    timeout), its frame written at once by `write_now` rather than buffered for a later pass of
    the reactor: with tens of thousands of idle sockets a process, pings are most of what the
    process writes (5,000 a second at 100,000 sockets), and each buffered one cost two epoll
    registrations and a pass of the loop. False (nothing sent) where `write_now` cannot write:
    the caller pings as autobahn does."""
    if wire.state != OPEN:
        return False
    sent = time.time_ns()
    payload = _PING_PAYLOAD.pack(sent, (wire.autoPingPendingSeq + 1) & 0xFFFFFFFF)
    if not write_now(wire, _PING_HEADER + payload):
        return False
    wire.autoPingPendingCall = None
    wire.autoPingPendingSent = sent
    wire.autoPingPendingSeq += 1
    wire.autoPingPending = payload
    if wire.autoPingTimeout:
        wire.autoPingTimeoutCall = wire.factory._batched_timer.call_later(wire.autoPingTimeout, wire.onAutoPingTimeout)
    return True


def take_lone_pong(wire: Any, data: bytes) -> bool:
    """A client's pong to `send_ping`, arriving alone (as it does from an idle client: 18 bytes),
    taken as autobahn's frame parser would take it -- the pending pong cleared, its timeout
    cancelled -- without the parser's per-frame machinery (~60 % of a process's CPU at 17,000
    idle sockets went to pings and pongs). False, nothing touched, for anything else: the bytes
    go to autobahn as usual."""
    pending = wire.autoPingPending
    if (
        len(data) != _PONG_LENGTH
        or data[0] != _PONG_FIRST
        or data[1] != _PONG_SECOND
        or pending is None
        or wire.state != OPEN
        or wire.data  # part of a frame is waiting for the rest
        or wire.current_frame is not None
        or wire.autoPingInterval  # autobahn's own ping schedule (daphne's server pings instead)
        or wire.logOctets
        or wire.logFrames
    ):
        return False
    mask = int.from_bytes(data[2:6] * 3, "big")
    if (int.from_bytes(data[6:], "big") ^ mask).to_bytes(_PING_PAYLOAD.size, "big") != pending:
        return False
    wire.trafficStats.incomingOctetsWireLevel += len(data)
    if wire.autoPingTimeoutCall:
        wire.autoPingTimeoutCall.cancel()
    wire.autoPingPending = None
    wire.autoPingPendingSent = None
    wire.autoPingTimeoutCall = None
    return True


# A ping frame from the server: FIN and opcode 9, unmasked, 12 bytes of payload (autobahn's
# autoPingSize: the time it was sent in ns and a sequence number, which its pong handler reads).
_PING_PAYLOAD = struct.Struct(">QL")
_PING_HEADER = bytes([0x89, _PING_PAYLOAD.size])
# Its pong from a client: FIN and opcode 10, masked (as every client frame), the same 12 bytes.
_PONG_FIRST = 0x8A
_PONG_SECOND = 0x80 | _PING_PAYLOAD.size
_PONG_LENGTH = 2 + 4 + _PING_PAYLOAD.size


# autobahn's WebSocketProtocol.STATE_OPEN
OPEN = 3
# The transport of a connection accepted by daphne over plain TCP (TLS and others are left alone).
_TCP_SERVER = tcp.Server


def call_logging_failures(selectable: Any, method: Callable[..., Any], *args: Any) -> Any:
    """What Twisted's asyncio reactor calls for each read or write event of a connection, in place of
    `twisted.python.log.callWithLogger`: the same failure logging, without the log context that one
    builds per event (the selectable's log prefix, a context dict copied and pushed and popped). daphne
    sends Twisted's log nowhere, so the context was never read; with 100,000 idle sockets the events are
    10,000 a second (their pings and pongs)."""
    try:
        return method(*args)
    except KeyboardInterrupt:
        raise
    except BaseException:
        twisted_log.err(system=getattr(selectable, "logstr", "-"))
        return None


def lean_reactor_events() -> None:
    """Twisted's asyncio reactor calls `call_logging_failures` for the I/O events it registers from now on."""
    asyncioreactor.callWithLogger = call_logging_failures


# Channel layers -------------------------------------------------------------------------------------

SWEEP_INTERVAL_SECONDS = 1.0


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

    def _ensure_redis(self) -> None:
        # channels-redis's own, with a PubSub that says when it reconnected (WatchedPubSub).
        if self._redis is None:
            pool = create_pool(self.host)
            self._redis: Any = aioredis.Redis(connection_pool=pool)
            self._pubsub = WatchedPubSub(pool, self._reconnected)

    def _reconnected(self) -> None:
        callback = getattr(self.channel_layer, "reconnected", None)
        if callback is not None:
            callback()

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
            await settle([self._worker])
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


class WatchedPubSub(PubSub):
    """redis-py's PubSub, calling `after_reconnect` once it has subscribed again after a reconnect.

    redis-py registers `on_connect` on the connection after its first connect, so it runs on
    reconnects only: when the connection was lost (Redis restarted, the network dropped) and
    made again, inside a read's retries or by the next read. Whatever was published meanwhile
    never reached this process.
    """

    def __init__(self, connection_pool: Any, after_reconnect: Callable[[], None]) -> None:
        super().__init__(connection_pool)
        self.after_reconnect = after_reconnect

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self.after_reconnect()


class BatchedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, hosts=hosts, **kwargs)
        self._shards = [BatchedShard(host, self) for host in decode_hosts(hosts)]
        # Called when a shard's PubSub connection was made again (see watch_reconnects).
        self.reconnected: Callable[[], None] | None = None


def watch_reconnects(layer: Any, callback: Callable[[], None]) -> bool:
    """Call `callback` whenever the running loop's layer connection to Redis was made again.

    False when the layer cannot tell (the stock layers, SERVER_INTERNALS=false, in memory): the
    hub's probes (chats.realtime.resync) are then all it has.
    """
    if not enabled() or not isinstance(layer, BatchedRedisPubSubChannelLayer):
        return False
    loop_layer = layer._get_layer()
    loop_layer.reconnected = callback
    return True


class BatchedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis's PubSub layer (same CONFIG, same wire format) on BatchedShard."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = BatchedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer
