"""Serve the messenger with daphne: `python -m messenger.serve [daphne options]`.

The same as `daphne messenger.asgi:application`, with two differences that belong to every
deployment rather than to each command line:
- the access log never records an access token: WebSocket URLs and image URLs carry
  `?token=<JWT>`, and daphne logs the full request URI;
- WebSocket messages are capped at 4x WEBSOCKET_MAX_FRAME_BYTES at the protocol level, so a
  frame a little over the application's limit gets an `error` frame (the socket stays open)
  while a huge one is cut off before it is buffered.

Its server (messenger.paced_server) paces daphne's per-connection checks and keepalive pings, so
sockets that connected together are not all pinged at the same moment every 20 seconds; and it
shuts down gracefully on SIGTERM or SIGINT, within SHUTDOWN_TIMEOUT seconds (default 10): it
stops listening, answers the requests in flight, acks the sends already received, closes every
socket with 1001, and exits.

And one thing daphne lacks: `--workers N` (or WEB_WORKERS) runs N daphne processes on one
listening socket, so a server with N cores uses them (one Python process uses about one). The
socket is bound here and inherited by each worker (daphne's --fd); the kernel spreads the
connections. Workers share Redis and the database: each has its hub, events cross between them
through Redis, so several workers need REDIS_URL (the in-memory layer is per process).
A worker that dies is started again at once on the same socket (the others keep serving), with a
growing back-off when it keeps dying; SIGTERM or SIGINT drains every worker (see Launcher).

Why a launcher of our own rather than supervisor or circus: daphne has no pre-fork mode, and what
several daphnes need is one listening socket shared by all of them, held open while one restarts.
Both can do that (supervisor's fcgi-program passes its socket as fd 0, for `daphne --fd 0`;
circus has `use_sockets`), but each is one more daemon with its own configuration to deploy next
to the server, and supervisor gives up on a program after `startretries` quick exits where this
backs off and keeps trying; neither keeps a spare set up (Spare). The launcher is two hundred
lines of subprocess and signals, started the same way everywhere (make run, Docker, the tests);
the host's own process manager (systemd, Docker's restart policy, Kubernetes) still runs the
launcher and restarts it.
"""

import argparse
import ctypes
import datetime
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

from daphne import cli
from daphne.access import AccessLogGenerator

from messenger.paced_server import STANDBY_FD_VARIABLE, PacedServer, raise_open_file_limit, shutdown_timeout

logger = logging.getLogger("messenger.serve")

# A positional `module:attribute` (not an endpoint such as tcp:port=8000:interface=...).
APPLICATION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
TOKEN_IN_QUERY = re.compile(r"([?&](?:token|access|refresh)=)[^&\s\"]*", re.IGNORECASE)


# The launcher (see Launcher).
POLL_SECONDS = 0.1  # how soon a dead worker is noticed
STABLE_SECONDS = 10.0  # a worker that dies sooner than this after its start counts as crash-looping
RESTART_BACKOFF_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 3.0  # beyond SHUTDOWN_TIMEOUT, for a worker to exit after its drain
CLEAN_EXITS = {0, -signal.SIGTERM, -signal.SIGINT}  # (a signal before a worker's handlers are in)
LAUNCHER_PID_VARIABLE = "MESSENGER_LAUNCHER_PID"  # set for the workers: see stop_with_the_launcher
PR_SET_PDEATHSIG = 1  # Linux's prctl option


def redact(request_line: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1[redacted]", request_line)


class RedactingAccessLog(AccessLogGenerator):
    def write_entry(
        self,
        host: str,
        date: datetime.datetime,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        super().write_entry(host, date, redact(request), status, length, ident, user)


def daphne_arguments(argv: list[str]) -> list[str]:
    args = list(argv)
    if not any(a.startswith("--websocket-max-message-size") for a in args):
        frame_limit = int(os.environ.get("WEBSOCKET_MAX_FRAME_BYTES", 64 * 1024))
        args = ["--websocket-max-message-size", str(4 * frame_limit), *args]
    if not any(APPLICATION.match(a) for a in args):
        args.append("messenger.asgi:application")
    return args


def worker_count(argv: list[str]) -> tuple[int, list[str]]:
    """The --workers N option (default WEB_WORKERS, else 1) and the other arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
    known, rest = parser.parse_known_args(argv)
    if known.workers < 1:
        raise SystemExit("--workers must be at least 1")
    return known.workers, rest


def serve_workers(argv: list[str], workers: int) -> int:
    """Bind -b/-p once and keep `workers` daphne processes serving on the socket (see Launcher)."""
    if not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_SENTINELS")):
        raise SystemExit(
            "Several workers share events through Redis: set REDIS_URL (or REDIS_SENTINELS), or run one worker."
        )
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    known, rest = parser.parse_known_args(argv)
    if any(a in {"-e", "--endpoint", "-u", "--unix-socket", "--fd"} or a.startswith("--fd=") for a in rest):
        raise SystemExit("With --workers, give the address as -b HOST -p PORT.")
    family = socket.AF_INET6 if ":" in known.bind else socket.AF_INET
    listener = socket.create_server((known.bind, known.port), family=family, backlog=4096)
    listener.set_inheritable(True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(levelname)s %(message)s")
    os.environ[LAUNCHER_PID_VARIABLE] = str(os.getpid())
    try:
        return Launcher(listener, rest, workers, shutdown_timeout()).run()
    finally:
        listener.close()


class Launcher:
    """N daphne workers on one inherited listening socket: restarted when one dies, stopped together.

    - A worker that exits (a crash, an OOM kill, kill -9) is replaced at once on the same socket,
      which the launcher keeps open, so the kernel goes on queueing connections for the others
      meanwhile; the others are not touched. The replacement is a spare worker started ahead
      (Django and the application set up, not serving yet: see Spare): in tests/test_shutdown.py
      a new connection is served by it 0.4-0.5 s after a kill -9, where a cold start took 1.4-3.5 s
      on a loaded 2-core machine (1.1-1.3 s idle). A new spare is then started; without a spare
      ready, a worker is started cold.
    - One that keeps dying soon after its start is restarted after a back-off that doubles
      (RESTART_BACKOFF_SECONDS up to RESTART_BACKOFF_MAX_SECONDS); each restart is logged.
    - SIGTERM or SIGINT is passed on to every worker, which shuts down gracefully
      (messenger.paced_server); a worker still running `timeout` + SHUTDOWN_GRACE_SECONDS later is
      killed. A second signal kills them at once. Exit code 0 when every worker exited cleanly.
    """

    def __init__(
        self,
        listener: socket.socket,
        argv: list[str],
        workers: int,
        timeout: float,
        command: list[str] | None = None,
        spare: bool = True,
    ) -> None:
        self.listener = listener
        fd = listener.fileno()
        self.command = command or [sys.executable, "-m", "messenger.serve", "--workers", "1", "--fd", str(fd), *argv]
        self.timeout = timeout
        self.children: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.started_at = [0.0] * workers
        self.quick_exits = [0] * workers
        self.restart_at: list[float | None] = [0.0] * workers  # when each empty slot is started
        self.keep_spare = spare
        self.spare: Spare | None = None
        self.spare_at = 0.0
        self.spare_quick_exits = 0
        self.signals: list[int] = []

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        while not self.signals:
            self._reap_and_restart()
            time.sleep(POLL_SECONDS)
        return self._shut_down()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)
        if len(self.signals) > 1:  # a second Ctrl-C: no more waiting
            self._send(signal.SIGKILL)

    def _processes(self) -> list[subprocess.Popen[bytes]]:
        spare = [self.spare.process] if self.spare is not None else []
        return [child for child in self.children if child is not None] + spare

    def _send(self, signum: int) -> None:
        for child in self._processes():
            if child.poll() is None:
                child.send_signal(signum)

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        self._keep_a_spare(now)
        for slot, child in enumerate(self.children):
            if child is not None and child.poll() is not None:
                lived = now - self.started_at[slot]
                self.quick_exits[slot] = self.quick_exits[slot] + 1 if lived < STABLE_SECONDS else 0
                delay = restart_delay(self.quick_exits[slot])
                logger.warning(
                    "worker %d (pid %d) exited with code %s after %.1f s; restarting it%s",
                    slot,
                    child.pid,
                    child.returncode,
                    lived,
                    f" in {delay:.0f} s (it keeps dying: {self.quick_exits[slot]} quick exits)" if delay else "",
                )
                self.children[slot] = None
                self.restart_at[slot] = now + delay
            due = self.restart_at[slot]
            if self.children[slot] is None and due is not None and now >= due and not self.signals:
                if self.spare is not None and self.spare.is_ready():
                    started = self.spare.promote()
                    self.spare = None
                    logger.info("worker %d: the spare (pid %d) took over", slot, started.pid)
                else:
                    started = subprocess.Popen(self.command, pass_fds=(self.listener.fileno(),))
                self.children[slot] = started
                self.started_at[slot] = now
                self.restart_at[slot] = None

    def _keep_a_spare(self, now: float) -> None:
        if not self.keep_spare or self.signals:
            return
        if self.spare is not None and self.spare.process.poll() is not None:
            lived = now - self.spare.started_at
            self.spare_quick_exits = self.spare_quick_exits + 1 if lived < STABLE_SECONDS else 0
            delay = restart_delay(self.spare_quick_exits)
            logger.warning(
                "the spare worker (pid %d) exited with code %s; starting another in %.0f s",
                self.spare.process.pid,
                self.spare.process.returncode,
                delay,
            )
            self.spare.close()
            self.spare = None
            self.spare_at = now + delay
        if self.spare is None and now >= self.spare_at:
            self.spare = Spare(self.command, self.listener.fileno())

    def _shut_down(self) -> int:
        logger.info("signal %s: stopping the workers (up to %.0f s)", self.signals[0], self.timeout)
        self._send(self.signals[0])
        # Once every worker has stopped listening, new connections are refused rather than queued
        # for nobody (the launcher's copy of the socket would keep it open).
        self.listener.close()
        deadline = time.monotonic() + self.timeout + SHUTDOWN_GRACE_SECONDS
        clean = True
        for child in self._processes():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker pid %d still running after %.0f s: killed", child.pid, self.timeout)
                child.kill()
                child.wait()
            clean = clean and child.returncode in CLEAN_EXITS
        if self.spare is not None:
            self.spare.close()
        if len(self.signals) > 1:
            clean = False
        logger.info("stopped%s", "" if clean else " (not cleanly)")
        return 0 if clean else 1


class Spare:
    """A worker started ahead: set up (Django, the application, the server) but not serving.

    It is told the write end of a pipe (STANDBY_FD_VARIABLE); once set up it blocks SIGUSR1,
    writes "ready" to the pipe and waits (messenger.paced_server.wait_to_be_promoted). SIGUSR1
    (`promote`) starts its server on the shared socket; SIGTERM or SIGINT ends it.
    """

    def __init__(self, command: list[str], listener_fd: int) -> None:
        read, write = os.pipe()
        env = {**os.environ, STANDBY_FD_VARIABLE: str(write)}
        self.process = subprocess.Popen(command, pass_fds=(listener_fd, write), env=env)
        os.close(write)
        self.ready_pipe: int | None = read
        self.started_at = time.monotonic()
        self.ready = False

    def is_ready(self) -> bool:
        if not self.ready and self.ready_pipe is not None and self.process.poll() is None:
            readable, _, _ = select.select([self.ready_pipe], [], [], 0)
            self.ready = bool(readable) and os.read(self.ready_pipe, 16) == b"ready"
        return self.ready and self.process.poll() is None

    def promote(self) -> subprocess.Popen[bytes]:
        self.close()
        self.process.send_signal(signal.SIGUSR1)
        return self.process

    def close(self) -> None:
        if self.ready_pipe is not None:
            os.close(self.ready_pipe)
            self.ready_pipe = None


def restart_delay(quick_exits: int) -> float:
    """No wait for a worker's first quick exit; then RESTART_BACKOFF_SECONDS, doubling, capped."""
    if quick_exits <= 1:
        return 0.0
    return float(min(RESTART_BACKOFF_MAX_SECONDS, RESTART_BACKOFF_SECONDS * 2 ** (quick_exits - 2)))


def main(argv: list[str] | None = None) -> None:
    workers, args = worker_count(sys.argv[1:] if argv is None else argv)
    raise_open_file_limit()  # each socket is a file; the workers inherit it
    if workers > 1:
        sys.exit(serve_workers(args, workers))
    stop_with_the_launcher()
    cli.AccessLogGenerator = RedactingAccessLog
    interface = cli.CommandLineInterface()
    interface.server_class = PacedServer
    interface.run(daphne_arguments(args))


def stop_with_the_launcher() -> None:
    """A worker of the launcher gets SIGTERM (and drains) when the launcher dies, even by SIGKILL.

    Otherwise it would go on serving on the socket, unsupervised, and keep the port from a new
    launcher. Linux's parent-death signal; elsewhere nothing.
    """
    launcher = os.environ.pop(LAUNCHER_PID_VARIABLE, None)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(launcher):  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


def exit_now() -> None:
    """Exit at once once the server has stopped (after its graceful shutdown, or its bound).

    Not through the interpreter's exit, which joins every worker thread: a thread still waiting
    on the stopped event loop (a REST thread's hop to publish an event) or on a lock would keep
    the process alive past any bound.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
    exit_now()
