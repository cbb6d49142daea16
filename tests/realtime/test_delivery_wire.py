"""chats.realtime.adapter.write_now: a broadcast frame reaches the socket at once, in order, under daphne's
Twisted transport (a real tcp.Server and autobahn protocol over a socket pair; the reactor is a
recorder, so that nothing is written unless the code under test writes it)."""

import socket
from types import SimpleNamespace
from typing import Any, cast

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import tcp

from chats.realtime.adapter import write_now


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
