"""Serve the messenger with daphne: `python -m messenger.serve [daphne options]`.

The same as `daphne messenger.asgi:application`, with two differences that belong to every
deployment rather than to each command line:
- the access log never records an access token: WebSocket URLs and image URLs carry
  `?token=<JWT>`, and daphne logs the full request URI;
- WebSocket messages are capped at 4x WEBSOCKET_MAX_FRAME_BYTES at the protocol level, so a
  frame a little over the application's limit gets an `error` frame (the socket stays open)
  while a huge one is cut off before it is buffered.

Its server paces daphne's per-connection checks and keepalive pings (messenger.paced_server):
sockets that connected together are not all pinged at the same moment every 20 seconds.

And one thing daphne lacks: `--workers N` (or WEB_WORKERS) runs N daphne processes on one
listening socket, so a server with N cores uses them (one Python process uses about one). The
socket is bound here and inherited by each worker (daphne's --fd); the kernel spreads the
connections. Workers share Redis and the database: each has its hub, events cross between them
through Redis, so several workers need REDIS_URL (the in-memory layer is per process).
"""

import argparse
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time

from daphne import cli
from daphne.access import AccessLogGenerator

from messenger.paced_server import PacedServer

# A positional `module:attribute` (not an endpoint such as tcp:port=8000:interface=...).
APPLICATION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
TOKEN_IN_QUERY = re.compile(r"([?&](?:token|access|refresh)=)[^&\s\"]*", re.IGNORECASE)


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
    """Bind -b/-p once, start `workers` daphne processes on the socket, and stop them together.

    SIGTERM or SIGINT is passed on to every worker; when one worker exits, the others are
    stopped and its exit code is returned (a supervisor or the container restarts the lot).
    """
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("Several workers share events through Redis: set REDIS_URL, or run one worker.")
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    known, rest = parser.parse_known_args(argv)
    if any(a in {"-e", "--endpoint", "-u", "--unix-socket", "--fd"} or a.startswith("--fd=") for a in rest):
        raise SystemExit("With --workers, give the address as -b HOST -p PORT.")
    family = socket.AF_INET6 if ":" in known.bind else socket.AF_INET
    listener = socket.create_server((known.bind, known.port), family=family, backlog=4096)
    listener.set_inheritable(True)
    fd = listener.fileno()
    command = [sys.executable, "-m", "messenger.serve", "--workers", "1", "--fd", str(fd), *rest]
    children = [subprocess.Popen(command, pass_fds=(fd,)) for _ in range(workers)]
    listener.close()  # the workers hold it now

    def pass_on(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    code = next(child.returncode for child in children if child.returncode is not None)
    pass_on(signal.SIGTERM, None)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code


def main(argv: list[str] | None = None) -> None:
    workers, args = worker_count(sys.argv[1:] if argv is None else argv)
    if workers > 1:
        sys.exit(serve_workers(args, workers))
    cli.AccessLogGenerator = RedactingAccessLog
    interface = cli.CommandLineInterface()
    interface.server_class = PacedServer
    interface.run(daphne_arguments(args))


if __name__ == "__main__":
    main()
