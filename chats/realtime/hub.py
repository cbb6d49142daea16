"""The process's hub: one per event loop, the parts of the real-time core put together.

    groups.Subscriptions   which local sockets listen to which group; the layer joins and leaves
    router.Router          the hub's layer channel read, each frame written to the local sockets
    presence.*             the user's first and last socket here, the heartbeat of claims
    typing_throttle.Typing typing notices, throttled
    sends.SendBatches      the sockets' sends, stored in batches, chats side by side, users in turn
    sends.UserRates        each user's sends per second, all their sockets together
    sessions.Sessions      the sockets' token expiry timers, the users whose sessions ended
    limits.SocketLimit     the sockets per user, the oldest closed past WEBSOCKET_MAX_PER_USER
    connects.BatchedCall   sockets connecting together, authorised together
    resync.LayerWatch      the layer watched; sockets told to catch up once it failed them

Lifecycle: `get_hub()` returns the running loop's hub, starting it on first use; `stop_hub()`
stops it (tests stop one per test, see tests/realtime/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from accounts import presence as presence_store
from chats.realtime import adapter, envelopes
from chats.realtime.connects import BatchedCall
from chats.realtime.groups import Listener, Subscriptions
from chats.realtime.limits import EVICTED, SocketLimit
from chats.realtime.presence import PresenceTransitions
from chats.realtime.resync import LayerWatch
from chats.realtime.router import Router
from chats.realtime.sends import SendBatches, UserRates
from chats.realtime.sessions import ENDED, Sessions
from chats.realtime.tasks import settle
from chats.realtime.typing_throttle import Typing

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self, layer: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.stopped = False
        self.listeners: set[Listener] = set()
        self.watch = LayerWatch(self)
        self.subscriptions = Subscriptions(layer, loop, on_group_left=self._group_left, on_failure=self.watch.failed)
        self.router = Router(
            self.subscriptions,
            loop,
            on_member_removed=self._forget_membership,
            on_probe=self.watch.probe_arrived,
            on_failure=self.watch.failed,
        )
        # Presence: open local sockets per user, and the user's chats (whom to tell).
        self.user_sockets: dict[int, int] = {}
        self.user_chats: dict[int, list[int]] = {}
        self.transitions = PresenceTransitions(loop, self.user_sockets, self.user_chats)
        self.typing = Typing()
        self.sessions = Sessions(loop)
        self.router.add_control(ENDED, self.sessions.on_ended)
        self.limits = SocketLimit()
        self.router.add_control(EVICTED, self.limits.on_evicted)
        self.sends = SendBatches(loop)
        self.send_rates = UserRates()
        self._batched: dict[Callable[..., Any], BatchedCall] = {}
        self._started: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._groups_refreshed = time.monotonic()

    @property
    def groups(self) -> dict[str, set[Listener]]:
        return self.subscriptions.members

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started is None:
            self._started = self.loop.create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        envelopes.watch_failures(self.loop, self.watch.publish_failed)
        self._tasks.append(self.loop.create_task(self._heartbeat_loop()))
        self._tasks.append(self.loop.create_task(self.watch.run()))
        try:
            await self.open_channel()
        except Exception:
            # Redis is down as the process starts: sockets are accepted and told to resync later.
            logger.warning("hub: no channel-layer channel yet", exc_info=True)
            self.watch.failed("new channel")

    async def open_channel(self) -> None:
        """The hub's one layer channel, and the router reading it (once; again if it failed)."""
        if self.subscriptions.channel is not None:
            return
        channel = await self.layer.new_channel()
        self.subscriptions.channel = channel
        self._tasks.append(self.loop.create_task(self.router.run(self.layer.receive, channel)))
        adapter.watch_reconnects(self.layer, lambda: self.watch.failed("connection made again"))

    async def stop(self) -> None:
        """Stop receiving and leave every group (tests; a server process just exits)."""
        self.stopped = True
        envelopes.watch_failures(self.loop, None)
        await self.sends.close()
        for task in self._tasks:
            task.cancel()
        await settle(self._tasks)
        await settle(self.transitions.pending_work())
        await self.subscriptions.close()
        await self.limits.stop()
        for user_id in list(self.user_sockets):
            presence_store.socket_closed_here(user_id)
            with contextlib.suppress(Exception):
                await presence_store.process_offline(user_id)
        self.listeners.clear()
        self.user_sockets.clear()

    # Sockets ------------------------------------------------------------------------------

    async def attach(self, listener: Listener, groups: Iterable[str], chats: dict[int, int], last_seen: Any) -> None:
        """Subscribe a newly authorised socket to its groups; live once this returns.

        `chats` are the user's chats and each one's version when the socket was authorised: the
        router delivers the changes after it in order. When the channel layer is down, or cannot
        subscribe, the socket is kept all the same: it is told to resync once the layer is back.
        """
        await self.start()
        groups = list(groups)
        for group in groups:
            chat_id = _chat_of_group(group)
            if chat_id is not None and chat_id in chats:
                self.router.expect(chat_id, chats[chat_id] + 1)
        chat_ids = list(chats)
        self.listeners.add(listener)
        user_id = listener.user_id
        count = self.user_sockets.get(user_id, 0)
        self.user_sockets[user_id] = count + 1
        self.user_chats[user_id] = chat_ids
        if count == 0:
            presence_store.socket_opened_here(user_id)
            self.transitions.change(user_id, online=True, last_seen=last_seen)
        if not self.watch.up or self.subscriptions.channel is None:
            await self.subscriptions.join_all(listener, groups, subscribe=False)
            return
        try:
            await self.subscriptions.join_all(listener, groups)
        except Exception:
            # The failure has reached the watch (Subscriptions.on_failure): resync to come.
            logger.warning("hub: could not subscribe user %s's socket; it will be told to resync", user_id)

    async def detach(self, listener: Listener) -> None:
        """Forget a socket (idempotent); the user's last local socket takes them offline here."""
        if listener not in self.listeners:
            return
        self.listeners.discard(listener)
        self.subscriptions.leave_all(listener)
        user_id = listener.user_id
        count = self.user_sockets.get(user_id, 0) - 1
        if count > 0:
            self.user_sockets[user_id] = count
        elif user_id in self.user_sockets:
            del self.user_sockets[user_id]
            presence_store.socket_closed_here(user_id)
            self.typing.forget_user(user_id)
            self.transitions.change(user_id, online=False, last_seen=None)
        self.limits.closed(listener)

    def _group_left(self, group: str) -> None:
        """The process's last socket left the group: what the router knows of it is stale from now on."""
        chat_id = _chat_of_group(group)
        if chat_id is not None:
            self.router.forget_chat(chat_id)

    def _forget_membership(self, user_id: int, chat_id: int) -> None:
        chats = self.user_chats.get(user_id)
        if chats is not None and chat_id in chats:
            self.user_chats[user_id] = [c for c in chats if c != chat_id]

    def batched(self, function: Callable[[list[Any]], list[Any]]) -> BatchedCall:
        """This loop's coalescing caller of a blocking batch function (see BatchedCall)."""
        call = self._batched.get(function)
        if call is None:
            call = self._batched[function] = BatchedCall(self.loop, function)
        return call

    # Heartbeat ----------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.PRESENCE_HEARTBEAT_SECONDS)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub: heartbeat failed", exc_info=True)

    async def heartbeat(self) -> None:
        """Renew presence claims, forget stale typing stamps, refresh expiring group memberships."""
        await presence_store.heartbeat(list(self.user_sockets))
        await self.limits.heartbeat()
        self.typing.sweep()
        group_expiry = getattr(self.layer, "group_expiry", None)
        now = time.monotonic()
        if group_expiry and now - self._groups_refreshed > group_expiry / 4:
            self._groups_refreshed = now
            await self.subscriptions.refresh()


def _chat_of_group(group: str) -> int | None:
    prefix, _, chat_id = group.partition(".")
    return int(chat_id) if prefix == "chat" and chat_id.isdigit() else None


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The running event loop's hub (one per server process; one per test in tests)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.stopped:
        for old in [old for old in _hubs if old.is_closed()]:
            del _hubs[old]
        hub = _hubs[loop] = Hub(get_channel_layer(), loop)
    return hub


async def stop_hub() -> None:
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.stop()
