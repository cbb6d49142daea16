"""daphne's Server with its per-connection checks and keepalive pings spread out over time.

daphne checks every connection's timeouts in one pass every 2 seconds, and that pass also pings
each WebSocket that has been quiet for `ping_interval` (20 s). Sockets that connected together (a
restart, or a network blip that reconnects everyone) are therefore pinged together for as long as
they live: with 2,500 idle sockets a worker, a burst of 2,500 pings and then their pongs held the
event loop for a good part of a second every 20 s, and every message delivered meanwhile waited.
The bench's soak saw it as 10-second windows of message p99 alternating ~40 and ~250 ms; with
pings off, every window ~40 ms.

Pings stay (they find peers that vanished without closing, and keep idle connections through
NATs and proxies); here they are spread:
- the pass is cut into CHECK_SLICES slices, one every CHECK_PERIOD_SECONDS / CHECK_SLICES, so each
  connection is still checked every CHECK_PERIOD_SECONDS but the loop is never held for all of them;
- a WebSocket's first ping comes at a random point of its first interval instead of exactly
  `ping_interval` after it opened, so the pings of sockets that connected together spread evenly
  over the interval and stay spread (each later ping is an interval after the one before, or after
  the socket's last frame).

And it shuts down gracefully. daphne, on SIGTERM or SIGINT, stops the reactor: every application
is cancelled at once and every connection dropped (in-flight requests unanswered, sends stored but
never acked, sockets cut without a close frame: 1006). Here a signal starts `drain`, in order:
1. stop listening (the other workers of `messenger.serve --workers` keep the shared socket);
2. let in-flight HTTP requests finish and be answered (their connections closed after the answer);
3. tell each open WebSocket's application that the server is going (a SERVER_SHUTDOWN message in
   its receive queue, behind the frames already received): the consumer answers those frames --
   sends stored and acked -- then closes with 1001; a socket still open near the end is closed
   with 1001 by the server itself;
4. wait for the closing handshakes; then daphne's own shutdown cancels what is left.
All of it within SHUTDOWN_TIMEOUT seconds (environment, default 10). A second signal changes
nothing; the signal handlers are installed before the reactor starts, so a signal that arrives
early is not lost either.

Why a worker used to ignore SIGTERM for 15 s (until the launcher killed it): daphne's own trigger
raises KeyError at the first request not yet handed to the application (one whose body is still
arriving has no "application_instance"), so the applications after it were never cancelled; the
reactor stopped with REST threads still running, one waiting for the stopped loop, and the
interpreter's exit joined it forever (seen with faulthandler: the main thread in
threading._shutdown). Here `_cancel_the_rest` skips such requests, and the worker leaves with
os._exit once the reactor has stopped (messenger.serve.exit_now), with a watchdog behind both.

Two more things a worker holding tens of thousands of sockets needs (found by the bench's crowd,
bench/crowd.py: 100,000 idle sockets on 2 cores):
- daphne's reaping pass (`application_checker`: finished applications, closed connections) also
  ran over every connection at once, every second: ~50 ms of the loop at 19,000 sockets, and ~0.2
  of a core at 100,000 spent finding nothing to do. Here a connection is marked when it closes or
  its application finishes, and the pass (once a second, in slices like the timeout check) visits
  the marked ones only, until each is forgotten or has nothing left to reap.
- A process has a fixed number of file descriptors (its open-file limit). Sockets that took them all
  left none for the database and Redis: sends failed with "Can't create TCP/IP socket (24)" while
  the socket that sent them stayed open. Now a worker stops accepting at MAX_CONNECTIONS_PER_PROCESS
  connections (default: the open-file limit less a reserve, `connection_cap`) and starts again below
  RESUME_SHARE of it; meanwhile the kernel hands new connections to the other workers on the shared
  socket (or keeps them in the listen backlog when every worker is full). `messenger.serve` raises
  the soft open-file limit to the hard one first.

`messenger.serve` runs daphne with this server; everything else is daphne's own.
"""

import asyncio
import logging
import math
import os
import random
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from typing import Any

from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer
from twisted.internet import reactor as installed_reactor

from chats.realtime.adapter import lean_reactor_events, send_ping, take_lone_pong
from messenger import loop_watch

# Twisted declares its reactor's methods on zope interfaces, which mypy reads without `self`.
reactor: Any = installed_reactor

CHECK_PERIOD_SECONDS = 2.0  # daphne's
REAP_PERIOD_SECONDS = 1.0  # daphne's application_checker
CHECK_SLICES = 20  # at least this many slices a round
MAX_SLICE = 250  # connections visited at most in one go (more slices when there are more connections)
# Descriptors kept for everything but client connections (database, Redis pool, files, logs), at most a
# quarter of the open-file limit.
FD_RESERVE = 1500
RESUME_SHARE = 0.95  # a worker that stopped accepting starts again below this share of its cap

logger = logging.getLogger(__name__)

# Shutdown: the server closes a socket its application has not closed this long before the end.
SERVER_CLOSE_BEFORE_END_SECONDS = 1.5
DRAIN_POLL_SECONDS = 0.05
CLOSE_GOING_AWAY = 1001
# What daphne's cancelled applications get to finish, after the drain.
CANCEL_WAIT_SECONDS = 2.0
# The message put in each open socket's receive queue (chats.realtime.adapter.SERVER_SHUTDOWN).
SERVER_SHUTDOWN = "server.shutdown"
# Set by messenger.serve's launcher for a spare worker: the pipe to write "ready" to.
STANDBY_FD_VARIABLE = "MESSENGER_STANDBY_FD"


def shutdown_timeout() -> float:
    """SHUTDOWN_TIMEOUT: seconds a worker takes at most to shut down gracefully (default 10)."""
    return float(os.environ.get("SHUTDOWN_TIMEOUT", "10"))


def connection_cap() -> int:
    """MAX_CONNECTIONS_PER_PROCESS, or (0, the default) the open-file limit less FD_RESERVE (at most a
    quarter of the limit): the connections (sockets and HTTP) a worker accepts before it pauses."""
    configured = int(os.environ.get("MAX_CONNECTIONS_PER_PROCESS", "0"))
    if configured > 0:
        return configured
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return 1_000_000
    return max(1, limit - min(FD_RESERVE, limit // 4))


def raise_open_file_limit() -> int:
    """The soft open-file limit raised to the hard one (as nginx's worker_rlimit_nofile): each socket is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


class PacedPass:
    """Visit each of `items()` once a `period`, a slice at a time on the reactor's clock: at least
    CHECK_SLICES slices a round and at most MAX_SLICE items a slice, so the loop is never held for all.
    An item whose `quiet_until` attribute (a `time.time()`) is still ahead is passed over without a call
    (most sockets, most rounds: a call each was ~2 µs, 17,000 a round a worker)."""

    def __init__(
        self,
        period: float,
        items: Callable[[], Iterable[Any]],
        visit: Callable[[Any], None],
        quiet_until: str | None = None,
    ) -> None:
        self.period = period
        self.items = items
        self.visit = visit
        self.quiet_until = quiet_until
        self.round: list[Any] = []
        self.size = 1
        self.interval = period / CHECK_SLICES

    def next_slice(self) -> None:
        if not self.round:
            self.round = list(self.items())
            slices = max(CHECK_SLICES, math.ceil(len(self.round) / MAX_SLICE))
            self.size = max(1, math.ceil(len(self.round) / slices))
            self.interval = self.period / slices
        batch = self.round[: self.size]
        del self.round[: self.size]
        if self.quiet_until is not None:
            now, attribute = time.time(), self.quiet_until
            batch = [item for item in batch if getattr(item, attribute, 0.0) <= now]
        for item in batch:
            self.visit(item)
        reactor.callLater(self.interval, self.next_slice)


class KeepaliveWebSocketProtocol(WebSocketProtocol):
    """daphne's, with a lone pong to the server's keepalive ping (most of what an idle socket
    receives) handled without autobahn's frame parser: chats.realtime.adapter.take_lone_pong."""

    def dataReceived(self, data: bytes) -> None:
        if not take_lone_pong(self, data):
            super().dataReceived(data)


class PacedServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ports: list[Any] = []
        self.shutting_down = False
        self.cap = connection_cap()
        self.accepting = True
        self.draining = False
        # Connections with something for the reaping pass: closed, or their application finished.
        self.to_reap: set[Any] = set()
        # Ours replace Twisted's (which stop the reactor at once, and only once it runs).
        self.own_signal_handlers: bool = bool(kwargs.get("signal_handlers", True))
        self.signal_handlers = False

    def run(self) -> None:
        if self.own_signal_handlers:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        standby = os.environ.pop(STANDBY_FD_VARIABLE, None)
        if standby is not None and not wait_to_be_promoted(int(standby)):
            return
        lean_reactor_events()
        reactor.callWhenRunning(loop_watch.start)
        reactor.callWhenRunning(self._use_keepalive_protocol)
        super().run()

    def _use_keepalive_protocol(self) -> None:
        """daphne's WebSocket protocol with the keepalive pongs taken aside (before any connection)."""
        self.ws_factory.protocol = KeepaliveWebSocketProtocol

    def _on_signal(self, signum: int, frame: object) -> None:
        reactor.callFromThread(self.shut_down)

    def shut_down(self) -> None:
        """Stop the reactor, once: the 'before shutdown' trigger (kill_all_applications) drains first."""
        if self.shutting_down:
            return
        self.shutting_down = True
        # Should anything hang beyond the bound, the process still ends.
        watchdog = threading.Timer(shutdown_timeout() + CANCEL_WAIT_SECONDS + 3, _exit_now)
        watchdog.daemon = True
        watchdog.start()
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """daphne's ASGI `send`, which also closes a socket with 1001 (going away) when asked.

        autobahn's sendClose lets an application close with 1000 or 3000-4999 only; 1001 is what a
        server going away sends, written here with autobahn's sendCloseFrame as daphne does for 1011.
        """
        if (
            message.get("type") == "websocket.close"
            and message.get("code") == CLOSE_GOING_AWAY
            and isinstance(protocol, WebSocketProtocol)
            and protocol.state == WebSocketProtocol.STATE_OPEN
        ):
            protocol.sendCloseFrame(code=CLOSE_GOING_AWAY)
            return
        await super().handle_reply(protocol, message)

    def listen_success(self, port: Any) -> None:
        self.ports.append(port)
        super().listen_success(port)

    def kill_all_applications(self) -> Any:
        """daphne's 'before shutdown' trigger: drain (bounded), then cancel whatever is left."""
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(self.drain(shutdown_timeout())))
        drained.addErrback(lambda failure: logger.error("shutdown: drain failed: %s", failure.getTraceback()))
        drained.addBoth(lambda _: self._cancel_the_rest())
        return drained

    async def drain(self, timeout: float) -> None:
        started = time.monotonic()
        end = started + timeout
        self.draining = True
        for port in self.ports:
            await defer.maybeDeferred(port.stopListening).asFuture(asyncio.get_running_loop())
        asked: set[Any] = set()
        closed_by_server = 0
        while time.monotonic() < end:
            requests = [p for p in self._live() if isinstance(p, WebRequest)]
            sockets = [p for p in self._live() if isinstance(p, WebSocketProtocol)]
            if not requests and not sockets:
                break
            for request in requests:
                _close_after_answer(request)
            late = time.monotonic() > end - SERVER_CLOSE_BEFORE_END_SECONDS
            for protocol in sockets:
                if protocol not in asked and _ask_to_close(protocol):
                    asked.add(protocol)
                elif late and protocol.state == WebSocketProtocol.STATE_OPEN:
                    closed_by_server += 1
                    protocol.sendCloseFrame(code=CLOSE_GOING_AWAY)
                elif late and protocol.state == WebSocketProtocol.STATE_CONNECTING:
                    closed_by_server += 1
                    protocol.serverReject()
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        left = list(self._live())
        logger.log(
            logging.WARNING if left or closed_by_server else logging.INFO,
            "shutdown: drained in %.1f s (sockets closed: %d by the application, %d by the server)"
            " and %d connections cut off",
            time.monotonic() - started,
            len(asked) - closed_by_server,
            closed_by_server,
            len(left),
        )

    def _live(self) -> list[Any]:
        return [protocol for protocol, details in list(self.connections.items()) if "disconnected" not in details]

    def _cancel_the_rest(self) -> Any:
        waiting = []
        for details in self.connections.values():
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                instance.cancel()
                waiting.append(instance)
        if not waiting:
            return None
        done = asyncio.ensure_future(asyncio.wait(waiting, timeout=CANCEL_WAIT_SECONDS))
        return defer.Deferred.fromFuture(done).addErrback(lambda _: None)

    def timeout_checker(self) -> None:
        """Replaces daphne's pass over every connection (run first 2 s after start) with paced slices.

        An open socket is passed over until its next ping (or its websocket_timeout) is due, its
        `quiet_until` (set by `_check`): daphne's check of each socket every 2 s found nothing to do
        nine times in ten, ~0.4 of a core at 100,000 sockets. `quiet_until` is never later than what
        check_timeouts would act on: last_ping only moves forward (a frame received, a ping sent)."""
        PacedPass(CHECK_PERIOD_SECONDS, lambda: self.connections, self._check, quiet_until="quiet_until").next_slice()

    def _check(self, protocol: Any) -> None:
        if protocol not in self.connections:  # reaped since the round began
            return
        is_socket = isinstance(protocol, WebSocketProtocol)
        if is_socket and protocol.state == WebSocketProtocol.STATE_OPEN and not getattr(protocol, "ping_spread", False):
            protocol.ping_spread = True
            protocol.last_ping = time.time() - random.uniform(0, self.ping_interval)
        if (
            is_socket
            and protocol.state == WebSocketProtocol.STATE_OPEN
            and time.time() - protocol.last_ping > self.ping_interval
            and send_ping(protocol)
        ):
            protocol.last_ping = time.time()  # so check_timeouts does not ping it again
        protocol.check_timeouts()
        if is_socket and protocol.state == WebSocketProtocol.STATE_OPEN:
            due = protocol.last_ping + self.ping_interval
            if self.websocket_timeout >= 0:
                due = min(due, protocol.socket_opened + self.websocket_timeout)
            protocol.quiet_until = due

    def application_checker(self) -> None:
        """Replaces daphne's reaping pass over every connection (first run 1 s after start): paced
        slices over the connections marked for it; and, as often, accepting again below the cap."""
        PacedPass(REAP_PERIOD_SECONDS, lambda: self.to_reap, self._reap_marked).next_slice()
        self._resume_check()

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.to_reap.add(protocol)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        queue = super().create_application(protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda _: self.to_reap.add(protocol))
        return queue

    def _reap_marked(self, protocol: Any) -> None:
        self._reap(protocol)
        details = self.connections.get(protocol)
        # Done with it when forgotten, or open with its application reaped (marked again when it closes).
        if details is None or ("disconnected" not in details and "application_instance" not in details):
            self.to_reap.discard(protocol)

    def _resume_check(self) -> None:
        if not self.accepting and not self.draining and len(self.connections) < self.cap * RESUME_SHARE:
            self.accepting = True
            for port in self.ports:
                port.startReading()
            logger.warning("accepting again: %d connections (cap %d)", len(self.connections), self.cap)
        reactor.callLater(REAP_PERIOD_SECONDS / CHECK_SLICES, self._resume_check)

    def _reap(self, protocol: Any) -> None:
        """daphne 4.2's application_checker, for one connection: cancel the application of a connection
        closed longer than application_close_timeout ago, reap a finished application (logging its
        exception, answering it on a connection still open), forget a closed connection with no application."""
        details = self.connections.get(protocol)
        if details is None:
            return
        disconnected = details.get("disconnected", None)
        application_instance = details.get("application_instance", None)
        overdue = disconnected and time.time() - disconnected > self.application_close_timeout
        if overdue and application_instance and not application_instance.done():
            logger.warning(
                "Application instance %r for connection %s took too long to shut down and was killed.",
                application_instance,
                repr(protocol),
            )
            application_instance.cancel()
        if application_instance and application_instance.done():
            try:
                exception = application_instance.exception()
            except (CancelledError, asyncio.CancelledError):
                pass
            else:
                if exception:
                    if isinstance(exception, KeyboardInterrupt):
                        self.stop()
                    else:
                        logger.error("Exception inside application: %s", exception, exc_info=exception)
                        if not disconnected:
                            protocol.handle_exception(exception)
            del details["application_instance"]
            application_instance = None
        if not application_instance and disconnected:
            del self.connections[protocol]

    def protocol_connected(self, protocol: Any) -> None:
        super().protocol_connected(protocol)
        if self.accepting and len(self.connections) >= self.cap:
            self.accepting = False
            for port in self.ports:
                port.stopReading()
            logger.warning(
                "not accepting: %d connections, this process's cap (MAX_CONNECTIONS_PER_PROCESS, or the "
                "open-file limit less a reserve); the other workers take new connections meanwhile",
                len(self.connections),
            )


def wait_to_be_promoted(ready_fd: int) -> bool:
    """A spare worker (messenger.serve.Spare), set up: say so, then wait. True on SIGUSR1 (serve now),
    False on SIGTERM or SIGINT (exit). The signals are blocked before "ready" is written, so none
    that the launcher sends after reading it is lost or takes its default action."""
    signals = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        os.write(ready_fd, b"ready")
        os.close(ready_fd)
        return signal.sigwait(signals) == signal.SIGUSR1
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def _close_after_answer(request: Any) -> None:
    """Have an in-flight request's connection closed once it is answered (no keep-alive)."""
    channel = getattr(request, "channel", None)
    if channel is not None:
        channel.persistent = False
    if not request.startedWriting:
        request.responseHeaders.setRawHeaders(b"connection", [b"close"])


def _ask_to_close(protocol: Any) -> bool:
    """Queue SERVER_SHUTDOWN behind the socket's received frames; False when it has no application yet."""
    queue = getattr(protocol, "application_queue", None)
    if queue is None or protocol.state not in (WebSocketProtocol.STATE_CONNECTING, WebSocketProtocol.STATE_OPEN):
        return False
    queue.put_nowait({"type": SERVER_SHUTDOWN, "code": CLOSE_GOING_AWAY})
    return True


def _exit_now(code: int = 1) -> None:
    logger.error("shutdown: still running past SHUTDOWN_TIMEOUT; exiting")
    logging.shutdown()
    os._exit(code)
