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

`messenger.serve` runs daphne with this server; everything else is daphne's own.
"""

import math
import random
import time
from typing import Any

from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor as installed_reactor

# Twisted declares its reactor's methods on zope interfaces, which mypy reads without `self`.
reactor: Any = installed_reactor

CHECK_PERIOD_SECONDS = 2.0  # daphne's
CHECK_SLICES = 20


class PacedServer(Server):
    def timeout_checker(self) -> None:
        """Replaces daphne's pass over every connection (run first 2 s after start) with paced slices."""
        self._check_round: list[Any] = []
        self._check_slice_size = 1
        self._check_next_slice()

    def _check_next_slice(self) -> None:
        if not self._check_round:
            self._check_round = list(self.connections)
            self._check_slice_size = max(1, math.ceil(len(self._check_round) / CHECK_SLICES))
        batch = self._check_round[: self._check_slice_size]
        del self._check_round[: self._check_slice_size]
        for protocol in batch:
            if protocol in self.connections:  # it may have been reaped since the round began
                self._check(protocol)
        reactor.callLater(CHECK_PERIOD_SECONDS / CHECK_SLICES, self._check_next_slice)

    def _check(self, protocol: Any) -> None:
        if (
            isinstance(protocol, WebSocketProtocol)
            and protocol.state == WebSocketProtocol.STATE_OPEN
            and not getattr(protocol, "ping_spread", False)
        ):
            protocol.ping_spread = True
            protocol.last_ping = time.time() - random.uniform(0, self.ping_interval)
        protocol.check_timeouts()
