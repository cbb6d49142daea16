"""The process's group subscriptions: which local sockets listen to which group.

Channels as usually written gives every socket its own layer channel and group memberships, so
one event to a chat of 100 members costs 100 layer messages. Here a process has ONE layer channel
(the hub's): it joins the group `chat.<id>` / `user.<id>` when the first local socket needs it
and leaves when the last one goes. Layer operations of one group run in the order asked (a
join, leave, join stays so); a socket joining a group whose subscription is under way waits for
it, so that it is live -- hears every later event -- once `attach`/`join` returns. While the
layer is unreachable sockets join without subscribing (`subscribe=False`); once it is back the
hub subscribes every group again (`rejoin`) and tells the sockets to catch up
(chats.realtime.resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from chats.realtime.adapter import Send
from chats.realtime.tasks import settle

logger = logging.getLogger(__name__)


class Listener(Protocol):
    """What the hub knows of a local socket (chats.realtime.consumer.RealtimeConsumer)."""

    user_id: int
    # None on /ws/ (all of the user's chats); the chat's id on /ws/chat/<id>/.
    chat_id: int | None
    groups: set[str]
    send: Send
    wire: Any  # see chats.realtime.adapter.wire_of
    socket_key: str  # among the user's sockets (chats.realtime.limits)

    async def close(self, code: int) -> None: ...


class Subscriptions:
    def __init__(
        self,
        layer: Any,
        loop: asyncio.AbstractEventLoop,
        on_group_left: Callable[[str], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.layer = layer
        self.loop = loop
        self.on_group_left = on_group_left
        # Told of every layer operation that failed: the layer is unreachable (chats.realtime.resync).
        self.on_failure = on_failure
        self.channel: str | None = None  # set once the hub has its layer channel
        self.members: dict[str, set[Listener]] = {}
        # The pending group_add of each group; joiners wait for it before they are live.
        self._ready: dict[str, asyncio.Task[None]] = {}
        # The last layer operation queued per group: adds and discards run in call order.
        self._tails: dict[str, asyncio.Task[None]] = {}

    async def join_all(self, listener: Listener, groups: Iterable[str], *, subscribe: bool = True) -> None:
        """Add a socket to groups; returns once each is subscribed. Raises if one could not be.

        With `subscribe=False` (the layer is down) a group new to the process is not subscribed
        now: `rejoin` does it once the layer is back.
        """
        pending = {}
        for group in groups:
            ready = self._add(listener, group, subscribe)
            if ready is not None:
                pending[group] = ready
        if pending:
            await self._subscribed(pending)

    def _add(self, listener: Listener, group: str, subscribe: bool = True) -> asyncio.Task[None] | None:
        listener.groups.add(group)
        members = self.members.get(group)
        if members is None:
            self.members[group] = {listener}
            if subscribe:
                self._ready[group] = self._enqueue(group, self.layer.group_add)
        else:
            members.add(listener)
        return self._ready.get(group) if subscribe else None

    async def _subscribed(self, pending: dict[str, asyncio.Task[None]]) -> None:
        # asyncio.wait, unlike gather, never cancels them: other sockets may wait on the same one.
        unfinished = [ready for ready in pending.values() if not ready.done()]
        if unfinished:
            await asyncio.wait(unfinished)
        for group, ready in pending.items():
            if not ready.cancelled() and ready.exception() is not None:
                raise ConnectionError(f"could not subscribe to {group}")
            if self._ready.get(group) is ready:
                del self._ready[group]  # live: nothing more to wait for

    def leave(self, listener: Listener, group: str) -> None:
        listener.groups.discard(group)
        members = self.members.get(group)
        if members is None:
            return
        members.discard(listener)
        if not members:
            del self.members[group]
            self._ready.pop(group, None)
            self._enqueue(group, self.layer.group_discard)
            if self.on_group_left is not None:
                self.on_group_left(group)

    def leave_all(self, listener: Listener) -> None:
        for group in list(listener.groups):
            self.leave(listener, group)

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
            if self.on_failure is not None:
                self.on_failure(f"subscription of {group}")

    async def rejoin(self) -> None:
        """Subscribe every group the sockets need again (the layer was down). Raises if one failed.

        Groups already subscribed cost nothing more on the PubSub layer (redis-py subscribed them
        again itself when it reconnected); those that failed, or were joined while the layer was
        down, are subscribed now.
        """
        self._ready.clear()
        tasks = [self._enqueue(group, self.layer.group_add) for group in list(self.members)]
        if not tasks:
            return
        await asyncio.wait(tasks)
        for task in tasks:
            if task.cancelled() or task.exception() is not None:
                raise ConnectionError("could not subscribe every group again")

    async def refresh(self) -> None:
        """Join every group again (a layer whose memberships expire: the core Redis layer)."""
        if self.channel is not None:
            for group in list(self.members):
                await self.layer.group_add(group, self.channel)

    async def close(self) -> None:
        await settle(self._tails.values())
        if self.channel is not None:
            for group in list(self.members):
                with contextlib.suppress(Exception):
                    await self.layer.group_discard(group, self.channel)
        self.members.clear()
