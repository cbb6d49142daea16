"""The channel layer watched: when it failed the process's sockets, they are told to catch up.

Redis PubSub keeps nothing for a subscriber that is not listening. While Redis is unreachable,
every event published -- and every publish that failed -- is lost to every process, and an open
socket has no way to know. So each process's hub watches its layer (`LayerWatch`) and, once the
layer carries its messages again:

1. subscribes every group its sockets need again (groups.Subscriptions.rejoin: those that
   failed or were joined while the layer was down; redis-py subscribed the others again itself
   when it reconnected),
2. starts each chat's version order over (router.Router.restart: no event waits on a version
   that will never come),
3. sends every local socket `{"type": "resync"}` (a `/ws/` socket: all its chats, its chat list
   too) or `{"type": "resync", "chat_ids": [id]}` (a `/ws/chat/<id>/` socket); the client
   catches up with ?since=<version>,
4. publishes a `resync` to the group of every publish of its own that failed (envelopes.publish
   hands them over), so that the sockets of *other* processes hear of what they missed even if
   their own connection never dropped.

What says the layer failed: a publish, a subscription or a receive raised; the PubSub
connection was made again (adapter.watch_reconnects: redis-py reconnects within a read's
retries, silently); or a probe -- a message the hub sends to its own layer channel every
PROBE_INTERVAL_SECONDS -- could not be sent, or PROBES_MISSED in a row did not come back within
PROBE_TIMEOUT_SECONDS. What says it is back:
a probe came back through the connection that carries every event, then every group subscribed
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from chats.realtime.adapter import deliver
from chats.realtime.envelopes import Envelope, encode, envelope, publish

if TYPE_CHECKING:
    from chats.realtime.hub import Hub

logger = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 3.0
# Down after this many probes in a row sent but not back in time (a failed send: at once).
PROBES_MISSED = 2
SEND_TIMEOUT_SECONDS = 30.0
RETRY_SECONDS = 0.5
# While down, a probe is retried sooner: one sent before redis-py reconnected is lost, not late.
RECOVERY_PROBE_SECONDS = 0.5
REPORT_SECONDS = 30.0

RESYNC_ALL = encode({"type": "resync"})


def resync_text(chat_ids: list[int] | None) -> str:
    return RESYNC_ALL if chat_ids is None else encode({"type": "resync", "chat_ids": chat_ids})


def resync_envelope(group: str) -> Envelope:
    """A `resync` to a group: a chat's (its members catch up that chat) or a user's (everything)."""
    prefix, _, number = group.partition(".")
    if prefix == "chat" and number.isdigit():
        return envelope(group, "resync", resync_text([int(number)]), chat_id=int(number))
    return envelope(group, "resync", RESYNC_ALL)


class LayerWatch:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.up = True
        # Groups of failed publishes, told to resync once the layer is back.
        self.lost_groups: set[str] = set()
        self.resyncs = 0  # times the local sockets were told to resync (tests, logs)
        self._failures = 0
        self._missed = 0
        self._reported_at = time.monotonic()
        self._wake = asyncio.Event()
        self._probes: dict[str, asyncio.Future[None]] = {}

    # What the rest of the hub reports ------------------------------------------------------

    def failed(self, reason: str) -> None:
        """The layer failed (a receive, a subscription, a probe) or its connection was made again."""
        if self.up:
            logger.warning("channel layer unreachable (%s): sockets will be told to resync", reason)
        self.up = False
        self._failures += 1
        self._wake.set()

    def publish_failed(self, groups: list[str]) -> None:
        """Events to these groups were not published: their sockets everywhere must catch up."""
        self.lost_groups.update(groups)
        self._wake.set()  # probe now: if the layer is up after all, tell them at once

    def probe_arrived(self, nonce: str) -> None:
        arrived = self._probes.get(nonce)
        if arrived is not None and not arrived.done():
            arrived.set_result(None)

    # The watch -------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if self.up:
                    await self._watch()
                else:
                    await self._recover()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._still_down(error)
                # A retry every RETRY_SECONDS: sooner after a probe that waited for nothing.
                await asyncio.sleep(max(0.0, RETRY_SECONDS - (time.monotonic() - started)))

    def _still_down(self, error: Exception) -> None:
        """Say so every REPORT_SECONDS (a retry every RETRY_SECONDS would flood the log)."""
        now = time.monotonic()
        if now - self._reported_at >= REPORT_SECONDS:
            self._reported_at = now
            logger.warning("channel layer still unreachable: %r (sockets kept, resync when back)", error)

    async def _watch(self) -> None:
        # asyncio.timeout, never wait_for, in this loop: Python 3.11's wait_for returns when what
        # it waits for is done by the time a cancel reaches it, and the cancel is lost; a hub
        # stopped just as its watch was woken, or as a probe came back, was left probing forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_INTERVAL_SECONDS):
                await self._wake.wait()
        self._wake.clear()
        if not self.up:
            return
        try:
            arrived = await self.probe()
        except Exception as error:
            self.failed(f"a probe could not be sent: {error!r}")
            return
        if not arrived:
            # Late is not lost: a loop or a layer busy for seconds (a connect storm queues its
            # subscriptions ahead of the probe) is no outage, and a false alarm costs every
            # client of the process a catch-up.
            self._missed += 1
            if self._missed >= PROBES_MISSED:
                self.failed(f"{self._missed} probes in a row did not come back")
            return
        self._missed = 0
        if self.lost_groups:
            await self._publish_lost()

    async def _recover(self) -> None:
        self._wake.clear()
        failures = self._failures
        await self.hub.open_channel()
        # One message first: while the layer is down, a subscription per group every retry
        # would fail by thousands (and each say so in the log).
        if not await self.probe(RECOVERY_PROBE_SECONDS):
            raise ConnectionError("a probe did not come back")
        await self.hub.subscriptions.rejoin()
        if self._failures != failures:
            return  # it failed again meanwhile: start over
        self.up = True
        self._missed = 0
        self.hub.router.restart()
        await self._resync_local()
        logger.warning("channel layer reachable again: %d sockets told to resync", len(self.hub.listeners))
        if self.lost_groups:
            await self._publish_lost()

    async def probe(self, timeout: float | None = None) -> bool:
        """Send a message to the hub's own layer channel: True once the router has it back, False
        if it has not within `timeout` of being sent. Raises if it could not be sent."""
        timeout = PROBE_TIMEOUT_SECONDS if timeout is None else timeout
        channel = self.hub.subscriptions.channel
        if channel is None:
            raise ConnectionError("no layer channel")
        nonce = uuid.uuid4().hex
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probes[nonce] = arrived
        try:
            message: dict[str, Any] = {"type": "probe", "event": "probe", "nonce": nonce}
            # The send may wait behind the layer's other commands; Redis's socket timeouts
            # (settings) end one that Redis never answers.
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self.hub.layer.send(channel, message)
            try:
                async with asyncio.timeout(timeout):
                    await arrived
            except TimeoutError:
                return False
            return True
        finally:
            self._probes.pop(nonce, None)

    async def _resync_local(self) -> None:
        self.resyncs += 1
        everything = []
        by_chat: dict[int, list[Any]] = defaultdict(list)
        for listener in tuple(self.hub.listeners):
            if listener.chat_id is None:
                everything.append(listener)
            else:
                by_chat[listener.chat_id].append(listener)
        await deliver(everything, RESYNC_ALL)
        for chat_id, listeners in by_chat.items():
            await deliver(listeners, resync_text([chat_id]))

    async def _publish_lost(self) -> None:
        groups, self.lost_groups = sorted(self.lost_groups), set()
        # A failure hands the groups back (publish_failed) and the watch tries again.
        await publish([resync_envelope(group) for group in groups])
