"""Writing one pre-encoded frame to many local sockets: the hub's hot loop (see chats.hub)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Listener(Protocol):
    """What the hub knows of a local socket (chats.consumers.RealtimeConsumer)."""

    user_id: int
    # None on /ws/ (all of the user's chats); the chat's id on /ws/chat/<id>/.
    chat_id: int | None
    groups: set[str]
    send: Send
    # Under daphne, once accepted: the connection's autobahn protocol, written to directly
    # (see `deliver`); None elsewhere (and before accept), where `send` is used.
    wire: Any

    async def close(self, code: int) -> None: ...


async def deliver(listeners: Iterable[Listener], text: str, skip_user: int | None = None) -> None:
    """Write one pre-encoded frame to every listener (but `skip_user`'s). The hot loop.

    Under daphne the frame is framed once (autobahn's prepareMessage, its API for broadcast)
    and its bytes written to each open connection (sendPreparedMessage), instead of going
    through the ASGI `send` of each socket, which re-encodes and re-frames the same text per
    socket. Elsewhere (tests, other servers) each socket's ASGI `send` is used.
    """
    prepared = None
    frame = None
    for listener in tuple(listeners):
        if listener.user_id == skip_user:
            continue
        wire = listener.wire
        try:
            if wire is not None:
                if wire.state == OPEN:
                    if prepared is None:
                        prepared = wire.factory.prepareMessage(text.encode())
                    wire.sendPreparedMessage(prepared)
            else:
                if frame is None:
                    frame = {"type": "websocket.send", "text": text}
                await listener.send(frame)
        except Exception:
            pass  # the socket is going away; its disconnect will detach it


# autobahn's WebSocketProtocol.STATE_OPEN
OPEN = 3
