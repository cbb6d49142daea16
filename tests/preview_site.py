"""A web site of a test's own on 127.0.0.1, for link previews: each path answers as the test says,
and every request is counted. Nothing here reaches beyond loopback."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


class Site:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.port = server.server_address[1]
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()  # ends a slow answer that is still going

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(self, path: str, html: str | bytes, content_type: str = "text/html; charset=utf-8") -> str:
        """Serve `html` at `path`; returns its URL."""

        def answer(handler: BaseHTTPRequestHandler) -> None:
            body = html if isinstance(html, bytes) else html.encode()
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = answer
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = answer
        return self.url(path)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            # The fetcher stops reading and closes (what its caps are for): no traceback for that.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().handle()

        def do_GET(self) -> None:
            site.hits[self.path] += 1
            route = site.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            route(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_site(tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    """The site, served over TLS with `tls` (a server context holding its certificate) when given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    site = Site(server)
    server.RequestHandlerClass = _handler(site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def drip(site: Site, path: str, *, seconds: float, finished: threading.Event) -> str:
    """A page that sends its head at once and then a byte every 0.1 s for `seconds` (bounded)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(b"<html><head><title>Slow</title>")
        handler.wfile.flush()
        ends = time.monotonic() + seconds
        while time.monotonic() < ends and not site.stop.is_set():
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.1)
        finished.set()

    site.routes[path] = answer
    return site.url(path)
