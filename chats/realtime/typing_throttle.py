"""Typing notices: not stored, throttled per user and chat, sent from the event loop."""

from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.serializers import public_user_data
from chats.realtime.envelopes import chat_group, frame_envelope, publish


class Typing:
    def __init__(self) -> None:
        # (user, chat) -> monotonic time of the last relayed typing event.
        self._sent: dict[tuple[int, int], float] = {}
        # PublicUser of each user with a local socket (the `user` of their typing events).
        self._payloads: dict[int, dict[str, Any]] = {}

    def allowed(self, user_id: int, chat_id: int) -> bool:
        """At most one typing event per user and chat per TYPING_THROTTLE_SECONDS (this process)."""
        now = time.monotonic()
        key = (user_id, chat_id)
        last = self._sent.get(key)
        if last is not None and now - last < settings.TYPING_THROTTLE_SECONDS:
            return False
        self._sent[key] = now
        return True

    async def announce(self, user: Any, chat_id: int) -> None:
        """`typing` to the chat's other members (the user is online: they are typing on a socket)."""
        if not self.allowed(user.pk, chat_id):
            return
        payload = self._payloads.get(user.pk)
        if payload is None:
            payload = self._payloads[user.pk] = await _public_user(user)
        frame = {"type": "typing", "chat_id": chat_id, "user": payload}
        await publish([frame_envelope(chat_group(chat_id), frame, skip_user=user.pk)])

    def forget_user(self, user_id: int) -> None:
        self._payloads.pop(user_id, None)

    def sweep(self) -> None:
        now = time.monotonic()
        throttle = settings.TYPING_THROTTLE_SECONDS
        self._sent = {key: at for key, at in self._sent.items() if now - at < throttle}


_public_user = database_sync_to_async(lambda user: public_user_data(user, is_online=True), thread_sensitive=False)
