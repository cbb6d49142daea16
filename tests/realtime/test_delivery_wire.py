"""chats.realtime.adapter.write_now: a broadcast frame reaches the socket at once, in order, under daphne's
Twisted transport (a real tcp.Server and autobahn protocol over a socket pair; the reactor is a
recorder, so that nothing is written unless the code under test writes it)."""

import socket
from types import SimpleNamespace
from typing import Any, cast

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import tcp

from chats.realtime.adapter import OPEN, call_logging_failures, send_ping, take_lone_pong, write_now


class RecordingReactor:
    def __init__(self) -> None:
        self.writers: set = set()

    def addReader(self, reader) -> None:
        pass

    def removeReader(self, reader) -> None:
        pass

    def addWriter(self, writer) -> None:
        self.writers.add(writer)

    def removeWriter(self, writer) -> None:
        self.writers.discard(writer)


@pytest.fixture
def connection():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    reactor = RecordingReactor()
    factory = WebSocketServerFactory()
    factory.protocol = WebSocketServerProtocol
    wire: Any = factory.buildProtocol(None)
    port: Any = SimpleNamespace(_realPortNumber=8000)
    transport = tcp.Server(ours, wire, ("127.0.0.1", 50000), port, 0, cast(Any, reactor))
    wire.makeConnection(transport)
    yield wire, transport, peer, reactor
    ours.close()
    peer.close()


def received(peer: socket.socket) -> bytes:
    peer.setblocking(False)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_with_nothing_waiting_the_frame_is_on_the_socket_at_once(connection):
    wire, _transport, peer, reactor = connection
    assert write_now(wire, b"frame-1")
    assert write_now(wire, b"frame-2")
    # then: in the peer's socket already, with no pass of the reactor and no writer registered
    assert received(peer) == b"frame-1frame-2"
    assert reactor.writers == set()
    assert wire.trafficStats.outgoingOctetsWireLevel == len(b"frame-1frame-2")


def test_what_the_kernel_does_not_take_is_buffered_and_later_frames_queue_behind_it(connection):
    wire, transport, peer, reactor = connection
    big = bytes(range(256)) * 40_000  # 10 MB: more than the socket pair's buffers hold
    # when
    assert write_now(wire, big)
    # then: the rest waits in Twisted's buffer for the reactor, and the next frame may not jump it
    assert reactor.writers == {transport}
    assert not write_now(wire, b"after")
    transport.write(b"after")  # what the caller then does (autobahn's sendData)
    got = bytearray()
    while transport in reactor.writers:
        got += received(peer)
        transport.doWrite()
    got += received(peer)
    assert bytes(got) == big + b"after"


def test_a_closing_connection_or_a_queued_frame_is_left_to_autobahn(connection):
    wire, transport, peer, _reactor = connection
    wire.send_queue.append((b"queued", False))
    assert not write_now(wire, b"x")
    wire.send_queue.clear()
    transport.loseConnection()
    assert not write_now(wire, b"x")
    assert received(peer) == b""


def test_a_lost_connection_writes_nothing_and_is_left_to_the_reactor(connection):
    wire, _transport, peer, _reactor = connection
    peer.close()
    # when the peer is gone, the write fails: nothing is claimed as sent
    results = [write_now(wire, b"x" * 1000) for _ in range(3)]
    assert results[-1] is False


# The keepalive: chats.realtime.adapter.send_ping and take_lone_pong ----------------------------


class RecordingTimer:
    """Stands for autobahn's batched timer: the pong timeouts asked for, and which were cancelled."""

    def __init__(self) -> None:
        self.calls: list[SimpleNamespace] = []

    def call_later(self, seconds: float, callback: Any) -> SimpleNamespace:
        call = SimpleNamespace(seconds=seconds, callback=callback, cancelled=False)
        call.cancel = lambda: setattr(call, "cancelled", True)
        self.calls.append(call)
        return call


def masked(opcode: int, payload: bytes) -> bytes:
    mask = b"\x11\x22\x33\x44"
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture
def open_socket(connection):
    wire, transport, peer, reactor = connection
    wire.dataReceived(  # the opening handshake, as a client sends it
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    while transport in reactor.writers:
        transport.doWrite()
    assert received(peer).startswith(b"HTTP/1.1 101") and wire.state == OPEN
    wire.autoPingTimeout = 30
    wire.factory._batched_timer = RecordingTimer()
    return wire, peer, reactor


def test_a_keepalive_ping_is_written_at_once_and_waits_for_its_pong(open_socket):
    wire, peer, reactor = open_socket
    # when
    assert send_ping(wire)
    # then: autobahn's ping frame (12 bytes: sent-at in ns, sequence), on the socket with no reactor pass
    frame = received(peer)
    assert frame[:2] == b"\x89\x0c" and len(frame) == 14
    assert frame[2:] == wire.autoPingPending and wire.autoPingPendingSeq == 1
    assert reactor.writers == set()
    [timeout] = wire.factory._batched_timer.calls
    assert timeout.seconds == 30 and timeout.callback == wire.onAutoPingTimeout and not timeout.cancelled


def test_its_pong_alone_clears_the_ping_and_cancels_the_timeout(open_socket):
    wire, _peer, _reactor = open_socket
    send_ping(wire)
    [timeout] = wire.factory._batched_timer.calls
    # when
    assert take_lone_pong(wire, masked(0xA, wire.autoPingPending))
    # then
    assert timeout.cancelled
    assert wire.autoPingPending is None and wire.autoPingTimeoutCall is None


@pytest.mark.parametrize(
    "what",
    ["another payload", "a frame behind it", "a frame already half received", "a text frame", "no ping pending"],
)
def test_anything_else_is_left_untouched_to_autobahns_parser(open_socket, what):
    wire, _peer, _reactor = open_socket
    send_ping(wire)
    pending = wire.autoPingPending
    data = masked(0xA, pending)
    if what == "another payload":
        data = masked(0xA, bytes(12))
    elif what == "a frame behind it":
        data += masked(0x1, b"{}")
    elif what == "a frame already half received":
        wire.data = b"\x81"
    elif what == "a text frame":
        data = masked(0x1, pending)
    elif what == "no ping pending":
        wire.autoPingPending = None
    # when
    assert not take_lone_pong(wire, data)
    # then
    assert not wire.factory._batched_timer.calls[0].cancelled
    assert wire.autoPingPending == (None if what == "no ping pending" else pending)


def test_a_pong_with_a_frame_behind_it_is_still_taken_by_autobahn(open_socket):
    wire, _peer, _reactor = open_socket
    send_ping(wire)
    [timeout] = wire.factory._batched_timer.calls
    # when: what take_lone_pong leaves, autobahn's parser takes as before
    wire.dataReceived(masked(0xA, wire.autoPingPending) + masked(0x1, b"{}"))
    # then
    assert timeout.cancelled and wire.autoPingPending is None


def test_a_socket_that_is_not_open_is_not_pinged(open_socket):
    wire, peer, _reactor = open_socket
    wire.state = 2  # autobahn's STATE_CLOSING
    assert not send_ping(wire)
    assert received(peer) == b"" and wire.autoPingPending is None


def test_reactor_events_without_the_log_context_still_log_a_failure():
    from twisted.python import log as twisted_log

    seen: list[dict] = []
    twisted_log.addObserver(seen.append)
    try:
        selectable = SimpleNamespace(logstr="WebSocketProtocol,7,127.0.0.1")
        # a call goes through with its result
        assert call_logging_failures(selectable, lambda a, b: a + b, 2, 3) == 5

        def fails() -> None:
            raise RuntimeError("in a read")

        # a failure is logged (as callWithLogger logs it), not raised into the event loop
        assert call_logging_failures(selectable, fails) is None
    finally:
        twisted_log.removeObserver(seen.append)
    [failure] = [event for event in seen if event.get("isError")]
    assert failure["system"] == "WebSocketProtocol,7,127.0.0.1"
    assert "in a read" in str(failure["failure"].value)


def test_a_ping_that_cannot_go_at_once_is_left_to_autobahn(open_socket):
    wire, peer, _reactor = open_socket
    wire.send_queue.append((b"queued", False))  # a frame waits: the ping may not jump it
    # when
    assert not send_ping(wire)
    # then: nothing written, nothing pending, no timeout: the caller pings as autobahn does
    assert received(peer) == b""
    assert wire.autoPingPending is None and wire.factory._batched_timer.calls == []
