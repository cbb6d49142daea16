"""The WebSocket endpoints `/ws/` and `/ws/chat/<id>/`: parse a frame, call the services, reply.

A lean ASGI consumer rather than AsyncJsonWebsocketConsumer: it has no layer channel of its
own (the process's hub, chats.hub, subscribes and delivers for it) and no per-message
`aclose_old_connections` hop to the sync thread (channels >= 4.2 does one before every
handler). Database work goes through `database_sync_to_async` -- which closes stale
connections in the worker thread itself -- on the shared pool (thread_sensitive=False), never
on the loop; sends and connects are coalesced across the process's sockets by the hub, so a
burst costs a few hops and commits rather than one per frame.

Client frames are mapped to handlers by a table (FRAME_HANDLERS). A bad frame gets an
`error` frame and the socket stays open; flooding gets `rate_limited`, then close 4429.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404
from django.utils.functional import SimpleLazyObject

from accounts.models import User
from chats import events, realtime
from chats.hub import get_hub
from chats.realtime import Event, chat_group, encode, send_async, user_group
from chats.socket_work import (
    FrameError,
    connect_lookups,
    error_event,
    read_mark_async,
    store_sends,
)

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_FLOODING = 4429
CLOSE_SERVER_ERROR = 1011
CLIENT_ID_MAX_LENGTH = 64

PONG = encode({"type": "pong"})
# At most this many queued frames are taken together (see RealtimeConsumer._queued_frames).
FRAME_BATCH = 32


# Frame fields -------------------------------------------------------------------------------


def _int_field(frame: dict[str, Any], name: str) -> int:
    value = frame.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError("invalid", f"'{name}' must be an integer.")
    return value


def daphne_connection(send: Any) -> Any:
    """The autobahn protocol behind daphne's ASGI `send`, or None under any other server.

    Daphne hands each connection `functools.partial(Server.handle_reply, protocol)`; the hub
    writes broadcast frames to that protocol directly (chats.hub.deliver).
    """
    if isinstance(send, functools.partial) and getattr(send.func, "__name__", "") == "handle_reply" and send.args:
        protocol = send.args[0]
        if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "factory"):
            return protocol
    return None


# The consumer -------------------------------------------------------------------------------


class RealtimeConsumer:
    """One socket. Also the hub's Listener: `user_id`, `chat_id`, `groups`, `send`, `close`."""

    __slots__ = (
        "_held",
        "_raw_send",
        "_receive",
        "_stamp",
        "_strikes",
        "_tokens",
        "chat_id",
        "closed",
        "groups",
        "scope",
        "send",
        "user",
        "user_id",
        "wire",
    )

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self._receive = receive
        self._raw_send = send
        # What the hub writes to: frames are held until the socket is accepted.
        self.send: Callable[[dict[str, Any]], Awaitable[None]] = self._hold
        self._held: list[dict[str, Any]] | None = []
        self.user: User | None = None
        self.user_id = 0
        kwargs = scope.get("url_route", {}).get("kwargs", {})
        self.chat_id: int | None = kwargs.get("chat_id")
        self.groups: set[str] = set()
        self.wire: Any = None
        self.closed = False
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
                kind = message["type"]
                if kind == "websocket.receive":
                    if self.closed:
                        continue
                    frames, after = self._queued_frames(message)
                    await self.on_frames(frames)
                    if after is not None and after["type"] == "websocket.disconnect":
                        return
                elif kind == "websocket.connect":
                    await self.on_connect()
                elif kind == "websocket.disconnect":
                    return
        finally:
            self.closed = True
            await get_hub().detach(self)

    def _queued_frames(self, first: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The frame just received and those already queued behind it (up to FRAME_BATCH).

        A sender that outpaces its sends' transactions has frames waiting; taking them together
        lets their messages be stored in one thread hop, back to back. Daphne (and Channels'
        test communicator) hand the application `asyncio.Queue.get` as `receive`; with another
        server, frames are simply taken one at a time. Returns the frames and the non-frame
        message (a disconnect) met behind them, if any.
        """
        queue = getattr(self._receive, "__self__", None)
        frames = [first]
        if not isinstance(queue, asyncio.Queue):
            return frames, None
        while len(frames) < FRAME_BATCH and not queue.empty():
            message = queue.get_nowait()
            if message["type"] != "websocket.receive":
                return frames, message
            frames.append(message)
        return frames, None

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
        user, chat_ids = await get_hub().batched(connect_lookups)((scope_user, self.chat_id))
        if user is None:
            await self._refuse(CLOSE_UNAUTHORIZED)
            return
        self.user, self.user_id = user, user.pk
        if chat_ids is None:
            await self._refuse(CLOSE_FORBIDDEN)
            return
        if self.chat_id is None:
            groups = [chat_group(chat_id) for chat_id in chat_ids] + [user_group(user.pk)]
        else:
            groups = [chat_group(self.chat_id)]
        hub = get_hub()
        try:
            await hub.attach(self, groups, chat_ids, user.last_seen)
        except Exception:
            logger.warning("could not subscribe user %s's socket; closing it", user.pk, exc_info=True)
            await hub.detach(self)
            await self._refuse(CLOSE_SERVER_ERROR)
            return
        await self._raw_send({"type": "websocket.accept"})
        held, self._held = self._held, None
        for frame in held or ():
            await self._raw_send(frame)
        self.send = self._raw_send
        self.wire = daphne_connection(self._raw_send)

    async def _refuse(self, code: int) -> None:
        """Accept then close, so that the client sees the code (a refused handshake has none)."""
        self.closed = True
        await self._raw_send({"type": "websocket.accept"})
        await self._raw_send({"type": "websocket.close", "code": code})

    async def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        await get_hub().detach(self)
        await self._raw_send({"type": "websocket.close", "code": code})

    # Frames -------------------------------------------------------------------------------

    async def reply(self, event: Event) -> None:
        await self._raw_send({"type": "websocket.send", "text": encode(event)})

    async def error(self, code: str, detail: str, client_id: Any = None) -> None:
        event: Event = {"type": "error", "code": code, "detail": detail}
        if isinstance(client_id, str):
            event["client_id"] = client_id
        await self.reply(event)

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
        """Handle frames in order; consecutive valid `message.send` frames are stored together."""
        sends: list[dict[str, Any]] = []
        for message in messages:
            if self.closed:
                return
            frame = await self._parse(message)
            if frame is None:
                continue
            if frame["type"] == "message.send":
                try:
                    sends.append(self._send_request(frame))
                    continue
                except FrameError as refused:
                    await self._send_messages(sends)
                    sends = []
                    await self.reply(error_event(refused, frame.get("client_id")))
                    continue
            await self._send_messages(sends)
            sends = []
            await self.on_frame(frame)
        await self._send_messages(sends)

    async def _parse(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The frame as a JSON object with a known type, or None once the client has been told why not."""
        allowed = self._allowed()
        if allowed is None:
            await self.close(CLOSE_FLOODING)
            return None
        if not allowed:
            await self.error("rate_limited", "Too many frames; slow down.")
            return None
        text = message.get("text")
        if text is None:
            await self.error("invalid", "Frames are JSON text.")
            return None
        limit = settings.WEBSOCKET_MAX_FRAME_BYTES
        if len(text) > limit // 4 and len(text.encode()) > limit:
            await self.error("too_large", f"A frame is at most {limit} bytes.")
            return None
        try:
            frame = json.loads(text)
        except ValueError:
            await self.error("invalid", "A frame is one JSON object.")
            return None
        if not isinstance(frame, dict):
            await self.error("invalid", "A frame is one JSON object.")
            return None
        kind = frame.get("type")
        if not isinstance(kind, str) or kind not in FRAME_HANDLERS:
            await self.error("invalid", f"Unknown frame type {kind!r}.", frame.get("client_id"))
            return None
        return frame

    async def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        try:
            await FRAME_HANDLERS[kind](self, frame)
        except (FrameError, ValidationError, PermissionDenied, Http404, ObjectDoesNotExist) as refused:
            await self.reply(error_event(refused, frame.get("client_id")))
        except Exception:
            logger.exception("socket frame %s failed", kind)
            await self.close(CLOSE_SERVER_ERROR)

    def _chat_of(self, frame: dict[str, Any]) -> int:
        """The frame's chat: implied on /ws/chat/<id>/ (and must match when given)."""
        if self.chat_id is None:
            return _int_field(frame, "chat_id")
        if frame.get("chat_id") is not None and frame.get("chat_id") != self.chat_id:
            raise FrameError("invalid", "This socket is for one chat; 'chat_id' must match it or be left out.")
        return self.chat_id

    def _send_request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """The arguments of services.message_create for a `message.send` frame, or FrameError."""
        client_id = frame.get("client_id")
        if not isinstance(client_id, str) or not client_id.strip():
            raise FrameError("invalid", "'client_id' is required.")
        if len(client_id) > CLIENT_ID_MAX_LENGTH:
            raise FrameError("invalid", f"'client_id' has at most {CLIENT_ID_MAX_LENGTH} characters.")
        chat_id = self._chat_of(frame)
        content = frame.get("content")
        if content is not None and not isinstance(content, str):
            raise FrameError("invalid", "'content' must be a string.")
        attachment_id = frame.get("attachment_id")
        if attachment_id is not None:
            attachment_id = _int_field(frame, "attachment_id")
        return {"chat_id": chat_id, "content": content, "client_id": client_id, "attachment_id": attachment_id}

    async def _send_messages(self, requests: list[dict[str, Any]]) -> None:
        """Store messages (with other sockets' sends, in one commit); their events are published,
        then the replies go out in frame order, before the frames behind these are handled."""
        if not requests:
            return
        try:
            replies = await get_hub().sends(store_sends)((self.user, requests))
        except Exception:
            logger.exception("socket message.send failed")
            replies = None
        if replies is None:
            await self.close(CLOSE_SERVER_ERROR)
            return
        for reply in replies:
            if self.closed:
                return
            await self.reply(reply)

    async def on_message_send(self, frame: dict[str, Any]) -> None:
        await self._send_messages([self._send_request(frame)])

    async def on_typing(self, frame: dict[str, Any]) -> None:
        chat_id = self._chat_of(frame)
        group = chat_group(chat_id)
        if group not in self.groups:
            raise FrameError("not_found", "No chat matches the given query.")
        hub = get_hub()
        if not hub.typing_allowed(self.user_id, chat_id):
            return
        payload = await hub.user_payload(self.user)
        await send_async(group, events.typing(chat_id=chat_id, user_payload=payload), skip_user=self.user_id)

    async def on_read(self, frame: dict[str, Any]) -> None:
        chat_id = self._chat_of(frame)
        message_id = _int_field(frame, "message_id")
        await realtime.publish(await read_mark_async(user=self.user, chat_id=chat_id, message_id=message_id))

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self._raw_send({"type": "websocket.send", "text": PONG})


FRAME_HANDLERS: dict[str, Callable[[RealtimeConsumer, dict[str, Any]], Awaitable[None]]] = {
    "message.send": RealtimeConsumer.on_message_send,
    "typing": RealtimeConsumer.on_typing,
    "read": RealtimeConsumer.on_read,
    "ping": RealtimeConsumer.on_ping,
}
