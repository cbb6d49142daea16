"""The process's router: reads the hub's layer channel and writes each frame to the local sockets.

An envelope (chats.realtime.envelopes) names its group; the router writes its text, as encoded by
the renderer, to every local socket in that group (chats.realtime.adapter.deliver) -- no consumer
dispatch, database query or JSON encoding per recipient. Besides delivering:

- **Version order.** Changes to one chat's messages are committed in version order (under the
  chat's row lock) but published by whichever thread or process committed them, so two of them
  can cross on the way. The router delivers a chat's versioned events in version order, starting
  from the chat's version when the process's first socket in it was authorised (or the version
  of its `chat.created`): one that comes ahead of a missing version waits for it, at most
  GAP_WAIT_SECONDS (a publish that never comes -- the channel layer lost it, or it was sent
  before the subscription was live -- costs that wait once, and the client sees the gap and
  catches up with ?since=). Events without a version pass at once.
- **Membership.** `chat.created` through a user's group also subscribes that user's `/ws/`
  sockets to the chat; `member.removed` is delivered, then the removed user's `/ws/chat/<id>/`
  sockets are closed with 4403 and their `/ws/` sockets leave the chat's group.
- **Presence** arrives once per chat the user shares with a socket's user; each socket gets it
  once, and the user's own sockets not at all.
- **Resync** (chats.realtime.resync): a `resync` to a chat's group means its events were lost; the
  chat's order starts over (`restart`) before the frame is delivered. A `probe` (no group) is
  the hub's own message, sent to its channel to see that the layer carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chats.realtime.adapter import deliver
from chats.realtime.envelopes import chat_group
from chats.realtime.groups import Listener, Subscriptions

logger = logging.getLogger(__name__)

GAP_WAIT_SECONDS = 0.5
CLOSE_FORBIDDEN = 4403


@dataclass
class ChatSequence:
    """The next version to deliver of one chat, and the events that came ahead of it."""

    next_version: int | None = None
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class Router:
    def __init__(
        self,
        subscriptions: Subscriptions,
        loop: asyncio.AbstractEventLoop,
        on_member_removed: Callable[[int, int], None],
        on_probe: Callable[[str], None] = lambda nonce: None,
        on_failure: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.subscriptions = subscriptions
        self.loop = loop
        self.on_member_removed = on_member_removed
        self.on_probe = on_probe
        self.on_failure = on_failure
        self.sequences: dict[int, ChatSequence] = {}
        self._seen_once: OrderedDict[str, set[int]] = OrderedDict()
        self._controls: dict[str, Callable[[str, dict[str, Any], set[Listener]], Awaitable[None]]] = {
            "chat.created": self._on_chat_created,
            "member.removed": self._on_member_removed,
            "presence": self._on_presence,
            "user.updated": self._on_user_updated,
            "resync": self._on_resync,
        }

    def add_control(self, kind: str, handler: Callable[[str, dict[str, Any], set[Listener]], Awaitable[None]]) -> None:
        """Handle envelopes of `kind` with `handler(group, message, local listeners of the group)`."""
        self._controls[kind] = handler

    async def run(self, receive: Callable[[str], Awaitable[dict[str, Any]]], channel: str) -> None:
        while True:
            try:
                message = await receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("router: channel layer receive failed; retrying", exc_info=True)
                self.on_failure("receive")
                await asyncio.sleep(1)
                continue
            try:
                await self.dispatch(message)
            except Exception:
                logger.exception("router: could not dispatch %s", message.get("event"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event") == "probe":
            self.on_probe(message.get("nonce", ""))
            return
        group = message.get("group")
        listeners = self.subscriptions.members.get(group) if group else None
        if not listeners:
            return
        version = message.get("version")
        if version is not None:
            await self._in_order(message["chat_id"], version, message)
            return
        control = self._controls.get(message.get("event", ""))
        if control is not None:
            await control(group, message, listeners)  # type: ignore[arg-type]
            return
        await deliver(listeners, message["text"], message.get("skip_user"))

    # Version order --------------------------------------------------------------------------

    async def _in_order(self, chat_id: int, version: int, message: dict[str, Any]) -> None:
        sequence = self.sequences.setdefault(chat_id, ChatSequence())
        expected = sequence.next_version
        if expected is not None and version > expected:
            sequence.held[version] = message
            if sequence.timer is None:
                sequence.timer = self.loop.call_later(GAP_WAIT_SECONDS, self._give_up_waiting, chat_id)
            return
        await self._deliver_message(message)  # the next one, the first seen, or a late one
        if expected is None or version == expected:
            sequence.next_version = version + 1
            await self._release(chat_id, sequence)

    async def _release(self, chat_id: int, sequence: ChatSequence) -> None:
        while sequence.next_version in sequence.held:
            await self._deliver_message(sequence.held.pop(sequence.next_version))
            sequence.next_version += 1
        if not sequence.held and sequence.timer is not None:
            sequence.timer.cancel()
            sequence.timer = None

    def _give_up_waiting(self, chat_id: int) -> None:
        """The missing version did not come: deliver what waited, in order, and go on from there."""
        sequence = self.sequences.get(chat_id)
        if sequence is None:
            return
        sequence.timer = None
        if sequence.held:
            sequence.next_version = min(sequence.held)
            self.loop.create_task(self._release(chat_id, sequence))

    async def _deliver_message(self, message: dict[str, Any]) -> None:
        listeners = self.subscriptions.members.get(message["group"])
        if listeners:
            await deliver(listeners, message["text"], message.get("skip_user"))

    def expect(self, chat_id: int, version: int) -> None:
        """The chat's next change is `version` (as of a socket's authorisation), unless already known."""
        sequence = self.sequences.setdefault(chat_id, ChatSequence())
        if sequence.next_version is None:
            sequence.next_version = version

    def forget_chat(self, chat_id: int) -> None:
        """The process no longer listens to the chat: its sequence starts over if it does again."""
        sequence = self.sequences.pop(chat_id, None)
        if sequence is not None and sequence.timer is not None:
            sequence.timer.cancel()

    def restart(self, chat_ids: Iterable[int] | None = None) -> None:
        """Events of these chats (None: every chat) were lost: what waits for a missing version is
        delivered now, in order, and the next version that comes is where each chat's order starts."""
        for chat_id in list(self.sequences) if chat_ids is None else list(chat_ids):
            sequence = self.sequences.pop(chat_id, None)
            if sequence is None:
                continue
            if sequence.timer is not None:
                sequence.timer.cancel()
            if sequence.held:
                held = [sequence.held.pop(version) for version in sorted(sequence.held)]
                self.loop.create_task(self._deliver_all(held))

    async def _deliver_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self._deliver_message(message)

    # Membership, presence, resync -------------------------------------------------------------

    async def _on_resync(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        chat_id = message.get("chat_id")
        if chat_id is not None:
            self.restart([chat_id])
        await deliver(listeners, message["text"])

    async def _on_chat_created(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Through a user's group: deliver, then subscribe that user's /ws/ sockets to the chat."""
        await deliver(listeners, message["text"])
        chat_id = message.get("chat_id")
        if chat_id is None or not group.startswith("user."):
            return
        if message.get("chat_version") is not None:
            self.expect(chat_id, message["chat_version"] + 1)
        for listener in tuple(listeners):
            if listener.chat_id is None:
                try:
                    await self.subscriptions.join_all(listener, [chat_group(chat_id)])
                except Exception:
                    logger.warning("router: could not subscribe a socket to chat %s", chat_id, exc_info=True)

    async def _on_member_removed(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Deliver once to everyone concerned; the removed user hears nothing more from the chat."""
        chat_id, user_id = message["chat_id"], message["user_id"]
        removed_group = chat_group(chat_id)
        targets: Iterable[Listener]
        if group.startswith("user."):
            # The chat group's copy came first to every socket still in the chat; this copy is
            # for the removed user's sockets that were not (or no longer) in the chat's group.
            targets = [listener for listener in listeners if removed_group in listener.groups]
        else:
            targets = list(listeners)
        await deliver(targets, message["text"])
        for listener in targets:
            if listener.user_id != user_id:
                continue
            if listener.chat_id == chat_id:
                self.subscriptions.leave(listener, removed_group)
                with contextlib.suppress(Exception):
                    await listener.close(CLOSE_FORBIDDEN)
            elif listener.chat_id is None:
                self.subscriptions.leave(listener, removed_group)
        self.on_member_removed(user_id, chat_id)

    async def _on_presence(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Once per socket, though sent to each of the user's chats; never to the user's own sockets."""
        await self._once_per_socket(message, listeners, skip_user=message.get("user_id"))

    async def _on_user_updated(self, group: str, message: dict[str, Any], listeners: set[Listener]) -> None:
        """Once per socket, though sent to each of the user's chats and their own group; theirs included."""
        await self._once_per_socket(message, listeners, skip_user=None)

    async def _once_per_socket(self, message: dict[str, Any], listeners: set[Listener], *, skip_user: Any) -> None:
        """Deliver an event sent through several groups (the same `nonce`) at most once to each local socket."""
        nonce = message.get("nonce")
        if nonce is None:
            await deliver(listeners, message["text"])
            return
        seen = self._seen_once.get(nonce)
        if seen is None:
            seen = self._seen_once[nonce] = set()
            while len(self._seen_once) > 256:
                self._seen_once.popitem(last=False)
        fresh = [listener for listener in listeners if id(listener) not in seen and listener.user_id != skip_user]
        seen.update(id(listener) for listener in fresh)
        await deliver(fresh, message["text"])
