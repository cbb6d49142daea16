"""messenger.paced_server: daphne's connection checks and keepalive pings, spread over time.

Driven on a simulated clock: daphne's own WebSocketProtocol.check_timeouts decides when a socket
is pinged, the server decides when each socket is checked.
"""

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import pytest
from daphne import cli
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from messenger import paced_server, serve
from messenger.paced_server import PacedServer


class Clock:
    """time.time() and reactor.callLater on one simulated timeline."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.calls: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def callLater(self, delay: float, function: Callable[[], None]) -> None:
        self.calls.append((self.now + delay, function))

    def run_until(self, end: float) -> None:
        while self.calls:
            self.calls.sort(key=lambda call: call[0])
            due, function = self.calls[0]
            if due > end:
                break
            self.calls.pop(0)
            self.now = due
            function()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock.time)
    monkeypatch.setattr(paced_server, "reactor", clock)
    return clock


def open_sockets(server: Server, clock: Clock, count: int, pings: list[tuple[float, int]]) -> None:
    """`count` WebSockets that all opened at this moment (a restart, a reconnect storm), idle since.

    Each ping sent is recorded in `pings` as (time, socket number).
    """
    for number in range(count):
        protocol = WebSocketProtocol.__new__(WebSocketProtocol)
        protocol.server = server
        protocol.state = WebSocketProtocol.STATE_OPEN
        protocol.socket_opened = clock.now
        protocol.last_ping = clock.now
        protocol._sendAutoPing = lambda number=number: pings.append((clock.now, number))
        server.connections[protocol] = {"connected": clock.now}


def start(server_class: type[Server], clock: Clock, monkeypatch) -> Server:
    monkeypatch.setattr("daphne.server.reactor", clock)
    # the paced server's own ping (chats.realtime.adapter.send_ping, which writes to a real
    # transport; tested in tests/realtime/test_delivery_wire.py) recorded as daphne's
    monkeypatch.setattr(paced_server, "send_ping", lambda protocol: protocol._sendAutoPing() or True)
    server = server_class(application=None, endpoints=["tcp:port=0"])
    server.connections = {}
    clock.callLater(2, server.timeout_checker)  # as daphne's Server.run does
    return server


def busiest_second(pings: list[tuple[float, int]]) -> int:
    return max(collections.Counter(int(at) for at, _ in pings).values())


def test_daphne_alone_pings_sockets_that_opened_together_all_in_one_pass(clock, monkeypatch):
    # given: what the paced server is for (daphne's own checker on the same timeline)
    server = start(Server, clock, monkeypatch)
    pings: list[tuple[float, int]] = []
    open_sockets(server, clock, 2000, pings)
    # when
    clock.run_until(clock.now + 60)
    # then
    assert busiest_second(pings) == 2000


def test_sockets_that_opened_together_are_pinged_spread_over_the_interval_and_each_kept_alive(clock, monkeypatch):
    # given
    server = start(PacedServer, clock, monkeypatch)
    pings: list[tuple[float, int]] = []
    open_sockets(server, clock, 2000, pings)
    opened = clock.now
    # when
    clock.run_until(opened + 60)
    # then: about 100 a second (2,000 over 20 s), never a burst
    assert busiest_second(pings) <= 250, busiest_second(pings)
    # and each socket is still kept alive: its first ping within an interval of the check that first
    # sees it open (at most two check periods after it opened), each later one within an interval
    # of the one before (plus the period between two checks of it)
    period = paced_server.CHECK_PERIOD_SECONDS
    times: dict[int, list[float]] = collections.defaultdict(list)
    for at, number in pings:
        times[number].append(at)
    assert len(times) == 2000
    for first, *later in times.values():
        assert first - opened <= server.ping_interval + 2 * period + 0.01
        gaps = [after - before for before, after in zip([first, *later], [*later, opened + 60], strict=True)]
        assert max(gaps) <= server.ping_interval + period + 0.01, gaps


def test_each_connection_is_checked_once_a_period_a_slice_at_a_time(clock, monkeypatch):
    # given
    server = start(PacedServer, clock, monkeypatch)
    checks: list[tuple[float, Any]] = []
    for _ in range(1000):
        protocol = type("Http", (), {"check_timeouts": lambda self: checks.append((clock.now, self))})()
        server.connections[protocol] = {}
    # when: one full period after the first check
    clock.run_until(clock.now + 2 + paced_server.CHECK_PERIOD_SECONDS - 0.01)
    # then
    assert len(checks) == 1000
    assert len({id(protocol) for _, protocol in checks}) == 1000
    per_slice = collections.Counter(at for at, _ in checks)
    assert len(per_slice) == paced_server.CHECK_SLICES
    assert max(per_slice.values()) == 1000 // paced_server.CHECK_SLICES


def test_a_connection_gone_before_its_slice_is_not_checked(clock, monkeypatch):
    # given: a round has begun with two connections
    server = start(PacedServer, clock, monkeypatch)
    checked: list[str] = []
    first = type("Http", (), {"check_timeouts": lambda self: checked.append("first")})()
    second = type("Http", (), {"check_timeouts": lambda self: checked.append("second")})()
    server.connections = {first: {}, second: {}}
    clock.run_until(clock.now + 2)
    # when: the second is reaped before its slice comes
    del server.connections[second]
    clock.run_until(clock.now + paced_server.CHECK_PERIOD_SECONDS / paced_server.CHECK_SLICES)
    # then
    assert checked == ["first"]


def test_the_launcher_runs_daphne_with_the_paced_server(monkeypatch):
    # given
    used: list[type] = []
    monkeypatch.setattr(cli.CommandLineInterface, "run", lambda self, args: used.append(self.server_class))
    # when
    serve.main(["-b", "127.0.0.1", "-p", "0"])
    # then
    assert used == [PacedServer]


def test_many_connections_are_checked_in_slices_of_at_most_max_slice(clock, monkeypatch):
    # given: 20,000 connections (a worker of the bench's crowd)
    server = start(PacedServer, clock, monkeypatch)
    checks: list[float] = []
    for _ in range(20_000):
        protocol = type("Http", (), {"check_timeouts": lambda self: checks.append(clock.now)})()
        server.connections[protocol] = {}
    # when: one full period
    clock.run_until(clock.now + 2 + paced_server.CHECK_PERIOD_SECONDS - 0.001)
    # then: every one checked, never more than MAX_SLICE in one go
    assert len(checks) == 20_000
    assert max(collections.Counter(checks).values()) <= paced_server.MAX_SLICE


class App:
    """An application instance (a future) as daphne keeps it per connection."""

    def __init__(self, done: bool = False, exception: BaseException | None = None) -> None:
        self._done = done
        self._exception = exception
        self.cancelled = False

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        return self._exception

    def cancel(self) -> None:
        self.cancelled = True


def reaping_server(clock: Clock, monkeypatch) -> PacedServer:
    monkeypatch.setattr("daphne.server.reactor", clock)
    server = PacedServer(application=None, endpoints=["tcp:port=0"])
    server.connections = {}
    clock.callLater(1, server.application_checker)  # as daphne's Server.run does
    return server


def test_the_reaping_pass_visits_only_marked_connections_in_slices_and_does_what_daphne_s_does(clock, monkeypatch):
    # given: 5,000 live connections with running applications, and four that need reaping: marked
    # when they closed (daphne's protocol_disconnected) or their application finished
    server = reaping_server(clock, monkeypatch)
    live = {object(): {"connected": clock.now, "application_instance": App()} for _ in range(5000)}
    closed_done, closed_hung, open_done = object(), object(), object()
    handled: list[BaseException] = []
    failing = type("Protocol", (), {"handle_exception": lambda self, exc: handled.append(exc)})()
    hung = App()
    failure = ValueError("boom")
    server.connections.update(live)
    server.connections[closed_done] = {"application_instance": App(done=True)}
    server.connections[closed_hung] = {"application_instance": hung}
    server.connections[failing] = {"application_instance": App(done=True, exception=failure)}
    server.connections[open_done] = {"application_instance": App(done=True)}
    server.protocol_disconnected(closed_done)
    server.protocol_disconnected(closed_hung)
    server.connections[closed_hung]["disconnected"] = clock.now - 3600
    server.to_reap.update([failing, open_done])  # as their applications' done callbacks do
    visited: list[tuple[float, Any]] = []
    reap = server._reap

    def counted(protocol: Any) -> None:
        visited.append((clock.now, protocol))
        reap(protocol)

    monkeypatch.setattr(server, "_reap", counted)
    # when: one second
    clock.run_until(clock.now + 1 + paced_server.REAP_PERIOD_SECONDS - 0.001)
    # then: the four marked ones visited, none of the live ones
    assert {protocol for _, protocol in visited} == {closed_done, closed_hung, failing, open_done}
    # a closed connection whose application finished is forgotten; a closed one whose application
    # outlived application_close_timeout has it cancelled (and stays marked until it ends); a failed
    # application's exception goes to its open connection, which stays; the live ones stay untouched
    assert closed_done not in server.connections
    assert hung.cancelled and server.to_reap == {closed_hung}
    assert handled == [failure]
    assert failing in server.connections and "application_instance" not in server.connections[failing]
    assert open_done in server.connections and "application_instance" not in server.connections[open_done]
    assert all(protocol in server.connections for protocol in live)


def test_a_mass_close_is_reaped_in_slices_of_at_most_max_slice(clock, monkeypatch):
    # given: 10,000 connections that all closed at once, their applications finished
    server = reaping_server(clock, monkeypatch)
    protocols = [object() for _ in range(10_000)]
    for protocol in protocols:
        server.connections[protocol] = {"application_instance": App(done=True)}
        server.protocol_disconnected(protocol)
    visited: list[float] = []
    reap = server._reap

    def counted(protocol: Any) -> None:
        visited.append(clock.now)
        reap(protocol)

    monkeypatch.setattr(server, "_reap", counted)
    # when
    clock.run_until(clock.now + 1 + paced_server.REAP_PERIOD_SECONDS - 0.001)
    # then: all forgotten within the second, never more than MAX_SLICE in one go
    assert not server.connections and not server.to_reap
    assert max(collections.Counter(visited).values()) <= paced_server.MAX_SLICE


async def test_an_application_that_finishes_marks_its_connection_for_reaping():
    # given
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    server = PacedServer(application=application, endpoints=["tcp:port=0"])
    protocol = object()
    server.connections = {protocol: {"connected": 0.0}}
    # when
    server.create_application(protocol, {"type": "websocket"})
    assert protocol not in server.to_reap
    await server.connections[protocol]["application_instance"]
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    # then
    assert protocol in server.to_reap


class Port:
    def __init__(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


def test_a_worker_stops_accepting_at_its_connection_cap_and_starts_again_below_it(clock, monkeypatch):
    # given: a cap of 100 connections (MAX_CONNECTIONS_PER_PROCESS), one listening port
    monkeypatch.setenv("MAX_CONNECTIONS_PER_PROCESS", "100")
    server = reaping_server(clock, monkeypatch)
    port = Port()
    server.ports = [port]
    protocols = [object() for _ in range(100)]
    # when: 99 connect
    for protocol in protocols[:99]:
        server.protocol_connected(protocol)
    # then: still accepting
    assert port.reading
    # when: the 100th connects
    server.protocol_connected(protocols[99])
    # then: the port is no longer read (the kernel gives new connections to the other workers)
    assert not port.reading
    # when: a few close and are reaped, still above 95 % of the cap
    for protocol in protocols[:3]:
        server.protocol_disconnected(protocol)
    clock.run_until(clock.now + 3)
    # then
    assert len(server.connections) == 97 and not port.reading
    # when: more close, below 95 %
    for protocol in protocols[3:6]:
        server.protocol_disconnected(protocol)
    clock.run_until(clock.now + 2)
    # then: accepting again
    assert len(server.connections) == 94 and port.reading


def test_the_cap_is_the_open_file_limit_less_a_reserve_unless_configured(monkeypatch):
    monkeypatch.delenv("MAX_CONNECTIONS_PER_PROCESS", raising=False)
    monkeypatch.setattr(paced_server.resource, "getrlimit", lambda _: (20_000, 20_000))
    assert paced_server.connection_cap() == 20_000 - paced_server.FD_RESERVE
    monkeypatch.setattr(paced_server.resource, "getrlimit", lambda _: (1024, 4096))
    assert paced_server.connection_cap() == 1024 - 256  # a quarter of a small limit is kept
    monkeypatch.setenv("MAX_CONNECTIONS_PER_PROCESS", "5000")
    assert paced_server.connection_cap() == 5000


def test_an_idle_socket_is_checked_about_once_a_ping_interval_not_every_period(clock, monkeypatch):
    # given: 1,000 idle sockets, and daphne's check counted
    server = start(PacedServer, clock, monkeypatch)
    pings: list[tuple[float, int]] = []
    open_sockets(server, clock, 1000, pings)
    checks = collections.Counter[int]()
    daphne_check = WebSocketProtocol.check_timeouts
    monkeypatch.setattr(
        WebSocketProtocol, "check_timeouts", lambda self: (checks.update([id(self)]), daphne_check(self))
    )
    # when: a minute (three ping intervals)
    clock.run_until(clock.now + 60)
    # then: each pinged about three times, checked about as often (daphne: 30 checks a minute each)
    assert len(pings) >= 2 * 1000
    assert max(checks.values()) <= 60 / server.ping_interval + 2


def test_a_socket_past_websocket_timeout_is_closed_though_no_ping_is_due(clock, monkeypatch):
    # given: sockets live at most 5 s (daphne's --websocket_timeout), pings every 20 s
    server = start(PacedServer, clock, monkeypatch)
    server.websocket_timeout = 5
    pings: list[tuple[float, int]] = []
    open_sockets(server, clock, 10, pings)
    closed: list[float] = []
    for protocol in server.connections:
        protocol.serverClose = lambda: closed.append(clock.now)
    opened = clock.now
    # when
    clock.run_until(opened + 12)
    # then: each closed within a check period of its limit
    assert len(closed) >= 10
    assert min(closed) - opened >= 5
    assert max(closed[:10]) - opened <= 5 + paced_server.CHECK_PERIOD_SECONDS + 0.01
