"""The WebSocket endpoints `/ws/` and `/ws/chat/<id>/`: parse a frame, validate it, call the services.

A lean ASGI application rather than AsyncJsonWebsocketConsumer: a socket has no layer channel of
its own (the process's hub subscribes and its router delivers for it), and no per-frame hop to the
sync thread. Every frame takes one road:

    text -> messenger.json_input.loads (the REST body's rules) -> FRAME_HANDLERS[type]
         -> the REST endpoint's serializer -> the same service as REST (in a worker thread)
         -> `message.ack` / nothing / `error` (messenger.exceptions.error_frame)

`message.send` frames are queued to their chat's lane (chats.realtime.sends), which stores the
sends of many sockets together; a socket's replies go out in the order of its frames, and a frame
behind a send is handled once the send is answered. A frame that fails gets its `error` frame and
the socket stays open; flooding gets `rate_limited`, then close 4429 (the socket's own frames, and
its user's sends on all their sockets: chats.realtime.sends.UserRates). A user's sockets past
WEBSOCKET_MAX_PER_USER close their oldest with 4429 (chats.realtime.limits). A socket lives no longer
than its access token (renewed with an `auth` frame) nor than its user's session: close 4401
(chats.realtime.sessions). Close codes are the contract's 4xxx; 4503 (retry later) when the
database cannot look the socket up, or the hub fails in some other way; 1001 when the server
shuts down, once the frames received before are answered. A channel layer that is down closes
nothing: the socket is accepted and told `resync` once the layer is back (chats.realtime.resync).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils.functional import SimpleLazyObject

from accounts.models import User
from chats import services
from chats.realtime import adapter
from chats.realtime.connects import connect_lookups
from chats.realtime.envelopes import chat_group, encode, user_group
from chats.realtime.hub import get_hub
from chats.realtime.sessions import current_generations, session_group
from chats.serializers import ChatFrameSerializer, MessageSendSerializer, ReadFrameSerializer
from messenger import json_input
from messenger.exceptions import Refused, classify, error_frame

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_FLOODING = 4429
CLOSE_UNAVAILABLE = 4503
CLOSE_GOING_AWAY = 1001  # the server shuts down (chats.realtime.adapter.SERVER_SHUTDOWN)

PONG = encode({"type": "pong"})
# At most this many frames already queued are taken together (chats.realtime.adapter.queued_frames).
FRAME_BATCH = 32

Reply = Awaitable[str]


# One instance of each frame's serializer, validating frame after frame on the loop (run_validation,
# DRF's own step of is_valid): a new instance per frame deep-copied its fields each time, and its
# fields' references back to it were cycles for the garbage collector -- a quarter of the loop's
# time per message.send in bench/.
_SERIALIZERS: dict[type[Any], Any] = {}


def _valid(serializer_class: type[Any], frame: dict[str, Any]) -> dict[str, Any]:
    """The frame's fields as the REST endpoint's serializer validates them (raises its ValidationError)."""
    serializer = _SERIALIZERS.get(serializer_class)
    if serializer is None:
        serializer = _SERIALIZERS[serializer_class] = serializer_class()
    data: dict[str, Any] = dict(serializer.run_validation(frame))
    return data


class RealtimeConsumer:
    """One socket. Also the hub's Listener: `user_id`, `chat_id`, `groups`, `send`, `wire`, `close`."""

    __slots__ = (
        "_expiry",
        "_held",
        "_raw_send",
        "_receive",
        "_stamp",
        "_strikes",
        "_tokens",
        "chat_id",
        "closed",
        "generation",
        "groups",
        "scope",
        "send",
        "socket_key",
        "user",
        "user_id",
        "wire",
    )

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self._receive = receive
        self._raw_send = send
        # What the router writes to: frames are held until the socket is accepted.
        self.send: Callable[[dict[str, Any]], Awaitable[None]] = self._hold
        self._held: list[dict[str, Any]] | None = []
        self.user: User | None = None
        self.user_id = 0
        kwargs = scope.get("url_route", {}).get("kwargs", {})
        self.chat_id: int | None = kwargs.get("chat_id")
        self.groups: set[str] = set()
        self.wire: Any = None
        self.closed = False
        self.socket_key = ""  # among the user's sockets (chats.realtime.limits)
        # The session: the generation of the token it was opened (or renewed) with, and the timer
        # that closes it when that token expires (chats.realtime.sessions).
        self.generation = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._tokens = float(settings.WEBSOCKET_RATE_BURST)
        self._strikes = 0.0
        self._stamp = time.monotonic()

    @classmethod
    def as_asgi(cls) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await cls(scope, receive, send).run()

        return app

    async def run(self) -> None:
        try:
            while True:
                message = await self._receive()
                if message["type"] == "websocket.receive":
                    if self.closed:
                        continue
                    frames, after = adapter.queued_frames(self._receive, message, FRAME_BATCH)
                    await self.on_frames(frames)
                    if after is None:
                        continue
                    message = after
                kind = message["type"]
                if kind == "websocket.connect":
                    await self.on_connect()
                elif kind == "websocket.disconnect":
                    return
                elif kind == adapter.SERVER_SHUTDOWN:
                    # The server is going: every frame received before this one is answered (sends
                    # stored and acked); the client reconnects to another process.
                    await self.close(CLOSE_GOING_AWAY)
        finally:
            self.closed = True
            self._end_session()
            await get_hub().detach(self)

    async def _hold(self, frame: dict[str, Any]) -> None:
        if self._held is not None:
            self._held.append(frame)

    # Connection ---------------------------------------------------------------------------

    async def on_connect(self) -> None:
        scope_user = self.scope.get("user")
        # A lazy user (a valid token) is resolved in the worker thread, never on the loop.
        if scope_user is None or (not isinstance(scope_user, SimpleLazyObject) and not scope_user.is_authenticated):
            await self._refuse(CLOSE_UNAUTHORIZED)
            return
        hub = get_hub()
        token = getattr(scope_user, "__dict__", {}).get("token")  # let go of once resolved (ws_auth)
        try:
            user, chats = await hub.batched(connect_lookups)((scope_user, self.chat_id))
        except DatabaseError:
            # A stalled database fails the lookups within its timeouts (settings: DATABASE_READ_TIMEOUT).
            logger.warning("could not look up a connecting socket's user and chats; closing it", exc_info=True)
            await self._refuse(CLOSE_UNAVAILABLE)
            return
        if user is None:
            await self._refuse(CLOSE_UNAUTHORIZED)
            return
        self.user, self.user_id, self.generation = user, user.pk, user.session_generation
        if chats is None:
            await self._refuse(CLOSE_FORBIDDEN)
            return
        if self.chat_id is None:
            groups = [chat_group(chat_id) for chat_id in chats] + [user_group(user.pk)]
        else:
            groups = [chat_group(self.chat_id), session_group(user.pk)]
        try:
            await hub.attach(self, groups, chats, user.last_seen)
        except Exception:
            logger.warning("could not attach user %s's socket; closing it", user.pk, exc_info=True)
            await hub.detach(self)
            await self._refuse(CLOSE_UNAVAILABLE)
            return
        await self._raw_send({"type": "websocket.accept"})
        held, self._held = self._held, None
        for frame in held or ():
            await self._raw_send(frame)
        self.send = self._raw_send
        self.wire = adapter.wire_of(self._raw_send)
        if hub.sessions.ended(self.user_id, self.generation):  # while it was subscribing
            await self.close(CLOSE_UNAUTHORIZED)
            return
        self._expiry = hub.sessions.expire(self, token["exp"] if token is not None else None, None)
        self.socket_key = hub.limits.new_key()
        await hub.limits.opened(self)

    async def _refuse(self, code: int) -> None:
        """Accept then close, so that the client sees the code (a refused handshake has none)."""
        self.closed = True
        await self._raw_send({"type": "websocket.accept"})
        await self._raw_send({"type": "websocket.close", "code": code})

    async def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_session()
        await get_hub().detach(self)
        await self._raw_send({"type": "websocket.close", "code": code})

    def _end_session(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    # Frames -------------------------------------------------------------------------------

    async def reply(self, text: str) -> None:
        if not self.closed:
            await self._raw_send({"type": "websocket.send", "text": text})

    def _allowed(self) -> bool | None:
        """Token bucket per connection: True to go on, False to refuse, None when flooding persists."""
        now = time.monotonic()
        elapsed, self._stamp = now - self._stamp, now
        self._tokens = min(settings.WEBSOCKET_RATE_BURST, self._tokens + elapsed * settings.WEBSOCKET_RATE_PER_SECOND)
        # Refused frames are remembered, forgotten at one per second: flooding that goes on closes.
        self._strikes = max(0.0, self._strikes - elapsed)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self._strikes += 1
        if self._strikes > settings.WEBSOCKET_FLOOD_CLOSE_AFTER:
            return None
        return False

    async def on_frames(self, messages: list[dict[str, Any]]) -> None:
        """Handle frames in order. A send's reply is awaited only before a frame that is not a send
        (or at the end), so that consecutive sends are stored together."""
        waiting: list[Reply] = []
        for message in messages:
            if self.closed:
                return
            allowed = self._allowed()
            if allowed is None:
                await self._answer(waiting)
                await self.close(CLOSE_FLOODING)
                return
            frame: dict[str, Any] = {}
            try:
                if not allowed:
                    raise Refused("rate_limited", "Too many frames; slow down.")
                frame = self._parse(message)
                handler = FRAME_HANDLERS.get(frame.get("type"))  # type: ignore[arg-type]
                if handler is None:
                    raise Refused("invalid", f"Unknown frame type {frame.get('type')!r}.")
                if handler is not RealtimeConsumer.on_message_send:
                    await self._answer(waiting)
                reply = await handler(self, frame)
            except Exception as error:
                reply = self._refusal(error, frame)
            if reply is not None:
                waiting.append(reply)
        await self._answer(waiting)

    def _refusal(self, error: Exception, frame: dict[str, Any]) -> Reply:
        if classify(error)[0] >= 500:
            logger.exception("socket frame %s failed", frame.get("type"))
        return _ready(encode(error_frame(error, frame.get("client_id"))))

    async def _answer(self, waiting: list[Reply]) -> None:
        while waiting:
            await self.reply(await waiting.pop(0))

    def _parse(self, message: dict[str, Any]) -> dict[str, Any]:
        """The frame as a JSON object (messenger.json_input's rules), or Refused."""
        text = message.get("text")
        if text is None:
            raise Refused("invalid", "Frames are JSON text.")
        limit = settings.WEBSOCKET_MAX_FRAME_BYTES
        if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
            raise Refused("too_large", f"A frame is at most {limit} bytes.")
        frame = json_input.loads(text)
        if not isinstance(frame, dict):
            raise Refused("invalid", "A frame is one JSON object.")
        return frame

    def _chat_of(self, data: dict[str, Any]) -> int:
        """The frame's chat: implied on /ws/chat/<id>/ (and must match when given)."""
        chat_id = data.get("chat_id")
        if self.chat_id is None:
            if chat_id is None:
                raise Refused("invalid", "'chat_id' is required.")
            return int(chat_id)
        if chat_id is not None and chat_id != self.chat_id:
            raise Refused("invalid", "This socket is for one chat; 'chat_id' must match it or be left out.")
        return self.chat_id

    # Handlers: each takes the parsed frame; a send returns its reply still to come ----------------

    async def on_message_send(self, frame: dict[str, Any]) -> Reply | None:
        if get_hub().sessions.ended(self.user_id, self.generation):
            await self.close(CLOSE_UNAUTHORIZED)  # the close is on its way: store nothing more
            return None
        # Before the validation: a flood refused here costs its parse and its answer only. Each
        # refusal is a strike against the socket too, so that a flood that goes on is closed 4429.
        if not get_hub().send_rates.allow(self.user_id):
            self._strikes += 1
            if self._strikes > settings.WEBSOCKET_FLOOD_CLOSE_AFTER:
                await self.close(CLOSE_FLOODING)
                return None
            raise Refused("rate_limited", "Too many messages from this user; slow down.")
        data = _valid(MessageSendSerializer, frame)
        chat_id = self._chat_of(data)
        data.pop("chat_id", None)
        assert self.user is not None
        return get_hub().sends.submit(self.user, chat_id, data)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        chat_id = self._chat_of(_valid(ChatFrameSerializer, frame))
        if chat_group(chat_id) not in self.groups:
            raise Refused("not_found", "No chat matches the given query.")
        await get_hub().typing.announce(self.user, chat_id)

    async def on_read(self, frame: dict[str, Any]) -> None:
        data = _valid(ReadFrameSerializer, frame)
        chat_id = self._chat_of(data)
        await _mark_read(chat_id=chat_id, user=self.user, message_id=data["message_id"])

    async def on_ping(self, frame: dict[str, Any]) -> Reply:
        return _ready(PONG)

    async def on_auth(self, frame: dict[str, Any]) -> Reply | None:
        """Renew the socket's session with a fresh access token of its user; any other closes 4401."""
        hub = get_hub()
        validated = hub.sessions.renewal(self, frame.get("token"))
        current: int | None = None
        if validated is not None:
            try:
                current = await hub.batched(current_generations)(self.user_id)
            except DatabaseError:
                logger.warning("could not look up user %s's session; closing the socket", self.user_id, exc_info=True)
                await self.close(CLOSE_UNAVAILABLE)
                return None
        answer = hub.sessions.renewed(validated, current) if validated is not None else None
        if validated is None or current is None or answer is None or self.closed:
            await self.close(CLOSE_UNAUTHORIZED)
            return None
        self.generation = current  # renewed with a token of the current session: its generation now
        self._expiry = hub.sessions.expire(self, float(validated["exp"]), self._expiry)
        return _ready(answer)


def _ready(text: str) -> Reply:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result(text)
    return future


# Publishes its event from the worker thread (one hop back to the loop), as a REST read does.
_mark_read = database_sync_to_async(services.chat_mark_read, thread_sensitive=False)


FRAME_HANDLERS: dict[str, Callable[[RealtimeConsumer, dict[str, Any]], Awaitable[Reply | None]]] = {
    "message.send": RealtimeConsumer.on_message_send,
    "typing": RealtimeConsumer.on_typing,
    "read": RealtimeConsumer.on_read,
    "ping": RealtimeConsumer.on_ping,
    "auth": RealtimeConsumer.on_auth,
}
