"""Sessions on the sockets: a socket lives no longer than its access token, nor than its session.

- **Expiry.** A socket opened (or last renewed) with an access token is closed with 4401 when that
  token expires: one `loop.call_at` timer per socket (a heap entry on the event loop; nothing
  runs until it is due), moved on each renewal and cancelled when the socket closes.
- **Renewal.** An `auth` frame on the socket (`token`: a fresh access token): a valid access token
  of the socket's own user and of the user's current session generation (looked up with the
  renewals of the moment in one query) answers `{"type": "auth.ok", "expires_at"}` and moves the
  timer; any other token closes with 4401 (4503 when the database cannot answer).
- **Ended sessions.** accounts.sessions ends a user's sessions (password change, logging out
  everywhere, deactivation) and, after the commit, sends `sessions_ended`; `announce` publishes the
  control event `session.ended` {user_id, generation} to the user's group `user.<id>` (their /ws/
  sockets) and to `session.<id>` (their /ws/chat/<id>/ sockets, which are not in the user's group).
  Each process's router hands it to `Sessions.on_ended`, which remembers the generation and closes
  the user's local sockets of an older one with 4401. Each `message.send` compares the socket's
  generation with what the process remembers (a dict lookup), so that nothing is stored for a
  socket whose session has ended while the close is on its way.

A socket whose user's sessions end between its connect lookup and its subscription is not told
(its process was not subscribed yet); its token's expiry still ends it, at most
ACCESS_TOKEN_LIFETIME later, and renewing it with an old-generation token closes it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.sessions import sessions_ended, token_generation
from chats.realtime.envelopes import encode, envelope, publish_from_thread, user_group

CLOSE_UNAUTHORIZED = 4401
ENDED = "session.ended"
# Users whose sessions ended that a process remembers (the oldest forgotten first): a socket whose
# connect lookup raced the end is closed when it attaches. About 100 bytes each.
REMEMBERED_USERS = 100_000


def session_group(user_id: int) -> str:
    """The group of a user's /ws/chat/<id>/ sockets, told only that the user's sessions ended."""
    return f"session.{user_id}"


class SessionSocket(Protocol):
    """What this module needs of a socket (chats.realtime.consumer.RealtimeConsumer)."""

    user_id: int
    generation: int

    async def close(self, code: int) -> None: ...


def announce(sender: Any, *, user_id: int, generation: int, **kwargs: Any) -> None:
    """`sessions_ended`'s receiver (after the commit, in the writer's thread): tell every process."""
    routing = {"user_id": user_id, "generation": generation}
    publish_from_thread(
        [envelope(user_group(user_id), ENDED, "", **routing), envelope(session_group(user_id), ENDED, "", **routing)]
    )


sessions_ended.connect(announce, dispatch_uid="chats_realtime_sessions_announce")


def current_generations(user_ids: list[int]) -> list[int | None]:
    """Each user's session generation, or None when inactive or gone (one query; call in a thread)."""
    found = dict(User.objects.filter(pk__in=set(user_ids), is_active=True).values_list("pk", "session_generation"))
    return [found.get(user_id) for user_id in user_ids]


def expires_at_text(exp: float) -> str:
    return datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z")


class Sessions:
    """One per hub: the socket timers, and the latest session generation heard of per user."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.generations: dict[int, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def ended(self, user_id: int, generation: int) -> bool:
        """Has this process heard that the sessions of `generation` and before ended?"""
        return self.generations.get(user_id, -1) > generation

    def expire(self, socket: SessionSocket, exp: float | None, timer: asyncio.TimerHandle | None) -> Any:
        """The socket's timer for a token expiring at `exp` (epoch seconds), replacing `timer`."""
        if timer is not None:
            timer.cancel()
        if exp is None:
            return None
        delay = max(0.0, exp - time.time())
        return self.loop.call_at(self.loop.time() + delay, self._close, socket)

    def _close(self, socket: SessionSocket) -> None:
        task = self.loop.create_task(socket.close(CLOSE_UNAUTHORIZED))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def renewal(self, socket: SessionSocket, token: Any) -> AccessToken | None:
        """The validated token of an `auth` frame, if it is an access token of the socket's user."""
        if not isinstance(token, str) or not token:
            return None
        try:
            validated = AccessToken(token)  # type: ignore[arg-type]  # signature, expiry, type
        except TokenError:
            return None
        if str(validated.get(api_settings.USER_ID_CLAIM)) != str(socket.user_id):
            return None
        return validated

    def renewed(self, validated: AccessToken, current: int | None) -> str | None:
        """The `auth.ok` frame, or None when the token is not of the user's current generation."""
        if current is None or token_generation(validated) != current:
            return None
        return encode({"type": "auth.ok", "expires_at": expires_at_text(float(validated["exp"]))})

    async def on_ended(self, group: str, message: dict[str, Any], listeners: set[Any]) -> None:
        """The router's control for `session.ended`: close the user's local sockets of an older generation."""
        user_id, generation = message["user_id"], message["generation"]
        if self.generations.get(user_id, -1) < generation:
            self.generations.pop(user_id, None)  # re-inserted last: the newest is forgotten last
            self.generations[user_id] = generation
            while len(self.generations) > REMEMBERED_USERS:
                del self.generations[next(iter(self.generations))]
        for listener in tuple(listeners):
            if listener.user_id == user_id and listener.generation < generation:
                await listener.close(CLOSE_UNAUTHORIZED)
