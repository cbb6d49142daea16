"""Presence as a process sees it: its open sockets per user, and the transitions they make.

The hub counts each user's local sockets. The first to open and the last to close are queued to
one worker that applies them in order and in batches: one UPDATE of `last_seen`, one Redis
pipeline of claims (accounts.presence: a sorted set per user, one member per process), then a
`presence` event to the user's chats for a real online/offline change -- another process may still
hold the user's sockets. A heartbeat renews the process's claims, so a crashed process's users
fade after PRESENCE_TTL_SECONDS.
"""

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts import presence as presence_store
from chats.realtime.envelopes import Envelope, chat_group, frame_envelope, publish

logger = logging.getLogger(__name__)


def _last_seen_update_sync(user_ids: list[int], stamp: datetime) -> None:
    from accounts.models import User

    User.objects.filter(pk__in=user_ids).update(last_seen=stamp)


_last_seen_update = database_sync_to_async(_last_seen_update_sync, thread_sensitive=False)


class PresenceTransitions:
    """Queued transitions, drained by one worker: one UPDATE of last_seen, one Redis pipeline of
    accounts.presence transitions, then a `presence` event to the user's chats for each real
    online/offline change (another process may still hold the user's sockets).

    `user_sockets` and `user_chats` are the hub's own maps (open local sockets per user, the
    user's chats), read here when a batch is applied.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, user_sockets: dict[int, int], user_chats: dict[int, list[int]]
    ) -> None:
        self.loop = loop
        self.user_sockets = user_sockets
        self.user_chats = user_chats
        self._pending: list[tuple[int, bool, Any]] = []
        self._worker: asyncio.Task[None] | None = None

    def change(self, user_id: int, *, online: bool, last_seen: Any) -> None:
        """Queue a process-level transition; one worker applies them in order, in batches."""
        self._pending.append((user_id, online, last_seen))
        if self._worker is None or self._worker.done():
            self._worker = self.loop.create_task(self._apply_changes())

    def pending_work(self) -> list[asyncio.Task[None]]:
        return [self._worker] if self._worker is not None else []

    async def _apply_changes(self) -> None:
        """Drain the queue: one UPDATE of last_seen, one Redis pipeline, then the announcements.

        A connect or disconnect storm costs a few round trips per batch instead of several per
        socket, and one Redis connection instead of one per concurrent transition.
        """
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._apply_batch(batch)
            except Exception:
                logger.warning("hub: presence of %d users not updated", len(batch), exc_info=True)

    async def _apply_batch(self, batch: list[tuple[int, bool, Any]]) -> None:
        leaving = sorted({user_id for user_id, online, _ in batch if not online})
        stamp = timezone.now()
        if leaving:
            await _last_seen_update(leaving, stamp)
        changed = await presence_store.transitions([(user_id, online) for user_id, online, _ in batch])
        envelopes: list[Envelope] = []
        for (user_id, online, last_seen), announced in zip(batch, changed, strict=True):
            chat_ids = self.user_chats.get(user_id, [])
            if not online and user_id not in self.user_sockets:
                self.user_chats.pop(user_id, None)
            if not announced:
                continue
            frame = {
                "type": "presence",
                "user_id": user_id,
                "is_online": online,
                "last_seen": last_seen if online else stamp,
            }
            nonce = f"{presence_store.PROCESS_ID}:{user_id}:{time.monotonic_ns()}"
            envelopes += [frame_envelope(chat_group(chat_id), frame, nonce=nonce) for chat_id in chat_ids]
        await publish(envelopes)
