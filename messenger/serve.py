"""Serve the messenger with daphne: `python -m messenger.serve [daphne options]`.

The same as `daphne messenger.asgi:application`, with two differences that belong to every
deployment rather than to each command line:
- the access log never records an access token: WebSocket URLs and image URLs carry
  `?token=<JWT>`, and daphne logs the full request URI;
- WebSocket messages are capped at 4x WEBSOCKET_MAX_FRAME_BYTES at the protocol level, so a
  frame a little over the application's limit gets an `error` frame (the socket stays open)
  while a huge one is cut off before it is buffered.
"""

import datetime
import os
import re
import sys

from daphne import cli
from daphne.access import AccessLogGenerator

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
    if not any(":" in a and not a.startswith("-") for a in args):
        args.append("messenger.asgi:application")
    return args


def main(argv: list[str] | None = None) -> None:
    cli.AccessLogGenerator = RedactingAccessLog
    cli.CommandLineInterface().run(daphne_arguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
