"""The process-local hub: one channel-layer channel per server process, fanned out in memory.

Channels as usually written gives every socket its own consumer, its own layer channel and
its own group memberships, so one event to a chat of 100 members costs 100 layer messages,
100 consumer dispatches (each, since channels 4.2, after a hop to the sync thread for
`close_old_connections`) and 100 JSON encodings. Here:

- Each process (each event loop, in tests) has ONE `Hub` with ONE layer channel. The hub adds
  that channel to the group `chat.<id>` / `user.<id>` when the first local socket needs it
  and discards it when the last one leaves; one receive loop reads the channel.
- An event is encoded once by whoever sends it (chats.realtime.layer_message): the envelope
  `{"type": "relay", "text": <the frame>, "event", "group", "chat_id"?, "user_id"?}` crosses
  the layer once per process, and the hub writes `text` straight to the ASGI `send` of each
  local socket subscribed to `group` -- no consumer dispatch, no database, no thread hop, no
  per-recipient encoding. Between processes, events still travel through Redis.
- Membership events are acted on here, in order with the events around them: `chat.created`
  through a user's group subscribes that user's `/ws/` sockets to the chat (events.py sends
  it before `member.added`); `member.removed` delivers the frame, then closes the removed
  user's `/ws/chat/<id>/` sockets with 4403 and unsubscribes their `/ws/` sockets from the
  chat, so nothing more from it reaches them.
- Presence: the hub counts sockets per user; the first and last per process are applied in
  order and in batches (chats.presence_transitions) and broadcast as `presence` to the user's
  chats, delivered at most once per socket and not to the user's own; a heartbeat renews this
  process's presence claims. Typing is throttled per user and chat (TYPING_THROTTLE_SECONDS).
- Blocking work is coalesced (`chats.batching`): sockets connecting together are authorised in
  one thread hop with two queries; the sockets' `message.send` frames are stored together, a
  savepoint each (chats.socket_work.store_sends), published after the commit, then answered.

Which layer, and why not the core RedisChannelLayer, is told in docs/realtime.md, with the
Redis pool size and where the time goes.

Lifecycle: `get_hub()` returns the running loop's hub, starting it lazily on first use;
`stop_hub()` stops it (tests stop one per test, see tests/realtime/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from accounts import presence
from chats import events, realtime
from chats.batching import BatchedCall, PublishingBatchedCall
from chats.delivery import Listener, deliver
from chats.presence_transitions import PresenceTransitions
from chats.realtime import chat_group

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self, layer: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.channel: str | None = None
        self.groups: dict[str, set[Listener]] = {}
        self.listeners: set[Listener] = set()
        self.stopped = False
        # The pending group_add of each group; joiners wait for it before they are live.
        self._ready: dict[str, asyncio.Task[None]] = {}
        # The last layer operation queued per group: adds and discards run in call order.
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._started: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Presence: open local sockets per user, the user's chats, the order of transitions.
        self.user_sockets: dict[int, int] = {}
        self.user_chats: dict[int, list[int]] = {}
        # PublicUser of each user with a local socket (the `user` of their typing events).
        self.user_payloads: dict[int, Any] = {}
        self.transitions = PresenceTransitions(loop, self.user_sockets, self.user_chats)
        # Typing throttle: (user, chat) -> monotonic time of the last relayed typing event.
        self._typing_sent: dict[tuple[int, int], float] = {}
        # Presence events arrive once per shared chat group; deliver each once per socket.
        self._presence_seen: OrderedDict[str, set[int]] = OrderedDict()
        self._groups_refreshed = time.monotonic()
        self._batched: dict[Callable[..., Any], BatchedCall] = {}
        self._controls: dict[str, Callable[[str, dict[str, Any], set[Listener]], Awaitable[None]]] = {
            "chat.created": self._on_chat_created,
            "member.removed": self._on_member_removed,
            "presence": self._on_presence,
        }

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started is None:
            self._started = self.loop.create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        self._tasks.append(self.loop.create_task(self._receive_loop()))
        self._tasks.append(self.loop.create_task(self._heartbeat_loop()))

    async def stop(self) -> None:
        """Stop receiving and leave every group (tests; a server process just exits)."""
        self.stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        pending = [*self._tails.values(), *self.transitions.pending_work()]
        for task in pending:
            with contextlib.suppress(BaseException):
                await task
        if self.channel is not None:
            for group in list(self.groups):
                with contextlib.suppress(Exception):
                    await self.layer.group_discard(group, self.channel)
        for user_id in list(self.user_sockets):
            with contextlib.suppress(Exception):
                await presence.process_offline(user_id)
        self.groups.clear()
        self.listeners.clear()
        self.user_sockets.clear()

    # Sockets ------------------------------------------------------------------------------

    async def attach(self, listener: Listener, groups: Iterable[str], chat_ids: list[int], last_seen: Any) -> None:
        """Subscribe a newly authorised socket to its groups; live once this returns.

        Raises when the channel layer cannot subscribe (Redis down): the caller closes.
        """
        await self.start()
        self.listeners.add(listener)
        user_id = listener.user_id
        count = self.user_sockets.get(user_id, 0)
        self.user_sockets[user_id] = count + 1
        self.user_chats[user_id] = chat_ids
        if count == 0:
            self.transitions.change(user_id, online=True, last_seen=last_seen)
        pending: dict[str, asyncio.Task[None]] = {}
        for group in groups:
            ready = self._add(listener, group)
            if ready is not None:
                pending[group] = ready
        if pending:
            await self._subscribed(pending)

    async def detach(self, listener: Listener) -> None:
        """Forget a socket (idempotent); the user's last local socket takes them offline here."""
        if listener not in self.listeners:
            return
        self.listeners.discard(listener)
        for group in list(listener.groups):
            self.leave(listener, group)
        user_id = listener.user_id
        count = self.user_sockets.get(user_id, 0) - 1
        if count > 0:
            self.user_sockets[user_id] = count
        elif user_id in self.user_sockets:
            del self.user_sockets[user_id]
            self.user_payloads.pop(user_id, None)
            self.transitions.change(user_id, online=False, last_seen=None)

    async def join(self, listener: Listener, group: str) -> None:
        ready = self._add(listener, group)
        if ready is not None:
            await self._subscribed({group: ready})

    def _add(self, listener: Listener, group: str) -> asyncio.Task[None] | None:
        """Add a socket to a group (its first one subscribes the process); the subscription still under way."""
        listener.groups.add(group)
        members = self.groups.get(group)
        if members is None:
            self.groups[group] = {listener}
            self._ready[group] = self._enqueue(group, self.layer.group_add)
        else:
            members.add(listener)
        return self._ready.get(group)

    async def _subscribed(self, pending: dict[str, asyncio.Task[None]]) -> None:
        """Wait for these groups' subscriptions; raise if one failed. (asyncio.wait, unlike gather,
        never cancels them: other sockets may be waiting on the same subscription.)"""
        unfinished = [ready for ready in pending.values() if not ready.done()]
        if unfinished:
            await asyncio.wait(unfinished)
        for group, ready in pending.items():
            if not ready.cancelled() and ready.exception() is not None:
                raise ConnectionError(f"could not subscribe to {group}")
            if self._ready.get(group) is ready:
                del self._ready[group]  # live: nothing more to wait for (and no task kept per group)

    def leave(self, listener: Listener, group: str) -> None:
        listener.groups.discard(group)
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(listener)
        if not members:
            del self.groups[group]
            self._ready.pop(group, None)
            self._enqueue(group, self.layer.group_discard)

    def _enqueue(self, group: str, operation: Callable[[str, str], Awaitable[None]]) -> asyncio.Task[None]:
        previous = self._tails.get(group)

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
            assert self.channel is not None
            await operation(group, self.channel)

        task = self.loop.create_task(run())
        self._tails[group] = task
        task.add_done_callback(lambda done: self._operation_done(group, done))
        return task

    def _operation_done(self, group: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(group) is task:
            del self._tails[group]
        if not task.cancelled() and task.exception() is not None:
            logger.warning("channel layer operation on %s failed: %r", group, task.exception())

    def batched(self, function: Callable[[list[Any]], list[Any]]) -> BatchedCall:
        """This loop's coalescing caller of a blocking batch function (see BatchedCall)."""
        call = self._batched.get(function)
        if call is None:
            call = self._batched[function] = BatchedCall(self.loop, function)
        return call

    def sends(self, function: Callable[[list[Any]], tuple[list[Any], list[Any]]]) -> PublishingBatchedCall:
        """This loop's coalescing caller of the socket sends' store (see chats.socket_work.store_sends)."""
        call = self._batched.get(function)
        if call is None:
            call = self._batched[function] = PublishingBatchedCall(self.loop, function, realtime.publish)
        assert isinstance(call, PublishingBatchedCall)
        return call

    # Typing -------------------------------------------------------------------------------

    def typing_allowed(self, user_id: int, chat_id: int) -> bool:
        """At most one typing event per user and chat per TYPING_THROTTLE_SECONDS (this process)."""
        now = time.monotonic()
        key = (user_id, chat_id)
        last = self._typing_sent.get(key)
        if last is not None and now - last < settings.TYPING_THROTTLE_SECONDS:
            return False
        self._typing_sent[key] = now
        return True

    # Receiving ----------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self.channel is not None
        receive, channel = self.layer.receive, self.channel
        while True:
            try:
                message = await receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub: channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            try:
                await self.dispatch(message)
            except Exception:
                logger.exception("hub: could not dispatch %s", message.get("event"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        group = message.get("group")
        listeners = self.groups.get(group) if group else None
        if not listeners:
            return
        control = self._controls.get(message.get("event", ""))
        if control is not None:
            await control(group, message, listeners)  # type: ignore[arg-type]
            return
        await deliver(listeners, message["text"], message.get("skip_user"))

    async def _deliver(self, listeners: Iterable[Listener], message: dict[str, Any]) -> None:
        await deliver(listeners, message["text"])

    async def _on_chat_created(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Through a user's group: deliver, then subscribe that user's /ws/ sockets to the chat."""
        await self._deliver(listeners, message)
        chat_id = message.get("chat_id")
        if chat_id is None or not group.startswith("user."):
            return
        for listener in tuple(listeners):
            if listener.chat_id is None:
                try:
                    await self.join(listener, chat_group(chat_id))
                except Exception:
                    logger.warning("hub: could not subscribe a socket to chat %s", chat_id, exc_info=True)

    async def _on_member_removed(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Deliver once to everyone concerned; the removed user hears nothing more from the chat."""
        chat_id, user_id = message.get("chat_id"), message.get("user_id")
        if chat_id is None or user_id is None:
            await self._deliver(listeners, message)
            return
        removed_group = chat_group(chat_id)
        if group.startswith("user."):
            # The chat group's copy came first to every socket still in the chat; this copy is
            # for the removed user's sockets that were not (or no longer) in the chat's group.
            targets = [listener for listener in listeners if removed_group in listener.groups]
        else:
            targets = list(listeners)
        await self._deliver(targets, message)
        for listener in targets:
            if listener.user_id != user_id:
                continue
            if listener.chat_id == chat_id:
                self.leave(listener, removed_group)
                with contextlib.suppress(Exception):
                    await listener.close(4403)
            elif listener.chat_id is None:
                self.leave(listener, removed_group)
        chats = self.user_chats.get(user_id)
        if chats is not None and chat_id in chats:
            self.user_chats[user_id] = [c for c in chats if c != chat_id]

    async def _on_presence(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        nonce = message.get("nonce")
        if nonce is None:
            await self._deliver(listeners, message)
            return
        seen = self._presence_seen.get(nonce)
        if seen is None:
            seen = self._presence_seen[nonce] = set()
            while len(self._presence_seen) > 256:
                self._presence_seen.popitem(last=False)
        # Not to the user's own sockets: they know.
        skip_user = message.get("user_id")
        fresh = [listener for listener in listeners if id(listener) not in seen and listener.user_id != skip_user]
        seen.update(id(listener) for listener in fresh)
        await self._deliver(fresh, message)

    # Presence -----------------------------------------------------------------------------

    async def user_payload(self, user: Any) -> dict[str, Any]:
        """The PublicUser of a user with a local socket (their typing events), rendered once."""
        payload = self.user_payloads.get(user.pk)
        if payload is None:
            payload = await _public_user_payload(user)
            if user.pk in self.user_sockets:
                self.user_payloads[user.pk] = payload
        return payload

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
        await presence.heartbeat(list(self.user_sockets))
        now = time.monotonic()
        throttle = settings.TYPING_THROTTLE_SECONDS
        self._typing_sent = {key: at for key, at in self._typing_sent.items() if now - at < throttle}
        group_expiry = getattr(self.layer, "group_expiry", None)
        if group_expiry and now - self._groups_refreshed > group_expiry / 4 and self.channel is not None:
            self._groups_refreshed = now
            for group in list(self.groups):
                await self.layer.group_add(group, self.channel)


_public_user_payload = database_sync_to_async(
    lambda user: events.public_user_payload(user, is_online=True), thread_sensitive=False
)


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
