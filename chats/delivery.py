"""Writing one pre-encoded frame to many local sockets: the hub's hot loop (see chats.hub)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from twisted.internet import tcp

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
                    if not write_now(wire, prepared.payloadHybi):
                        wire.sendPreparedMessage(prepared)
            else:
                if frame is None:
                    frame = {"type": "websocket.send", "text": text}
                await listener.send(frame)
        except Exception:
            pass  # the socket is going away; its disconnect will detach it


def write_now(wire: Any, data: bytes) -> bool:
    """Hand a framed message to the connection's socket now, when nothing waits before it.

    Twisted's `transport.write` only buffers: the bytes leave on a later pass of the reactor,
    which first registers the socket for writability and unregisters it once written -- per
    frame and per socket, the largest cost of a broadcast to many sockets. When neither
    autobahn's send queue nor the transport's buffers hold anything (the usual case), the frame
    goes to the socket at once through Twisted's own `writeSomeData` (what the reactor would
    call); what the kernel does not take is buffered by `transport.write`, behind it, so order
    is kept. False (nothing written) where that does not hold: the caller sends as autobahn does.
    """
    transport = wire.transport
    if (
        wire.send_queue
        or getattr(wire, "_perMessageCompress", True) is not None
        or type(transport) is not _TCP_SERVER
        or not transport.connected
        or transport.disconnecting
        or getattr(transport, "_writeDisconnected", True)
        or getattr(transport, "_tempDataLen", None) != 0
        or len(transport.dataBuffer) != transport.offset
    ):
        return False
    sent = transport.writeSomeData(data)
    if not isinstance(sent, int):
        return False  # the connection is lost: let autobahn and the reactor find out
    if sent < len(data):
        transport.write(data[sent:])
    wire.trafficStats.outgoingOctetsWireLevel += len(data)
    return True


# autobahn's WebSocketProtocol.STATE_OPEN
OPEN = 3
# The transport of a connection accepted by daphne over plain TCP (TLS and others are left alone).
_TCP_SERVER = tcp.Server
