"""ASGI entry point: HTTP goes to Django; WebSockets pass the origin check and the JWT check.

    http       -> Django
    websocket  -> OriginCheckMiddleware (ALLOWED_HOSTS + WEBSOCKET_ALLOWED_ORIGINS)
               -> JWTAuthMiddleware (?token=, SimpleJWT's AccessToken; sets scope["user"])
               -> /ws/ and /ws/chat/<id>/ (chats.routing)

Serve it with `python -m messenger.serve`: daphne with a protocol-level message cap above
settings.WEBSOCKET_MAX_FRAME_BYTES, so huge frames are refused before they are buffered while
frames a little over the setting get a `too_large` error frame; and a token-redacting access log.
"""

import gc
import logging
import os
import sys
import time
from typing import Any

from django.conf import settings

from messenger.http_threads import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
# Django sets up its apps here, before anything below imports a model.
django_asgi_app = get_asgi_application(threads=settings.HTTP_THREADS, queue_seconds=settings.HTTP_QUEUE_SECONDS)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.ws_auth import JWTAuthMiddleware, OriginCheckMiddleware  # noqa: E402
from chats.routing import websocket_urlpatterns  # noqa: E402


def skip_autobahn_debug_formatting() -> None:
    """Stop autobahn from pretty-printing a debug line nobody reads on every WebSocket connect.

    autobahn's `_connectionMade` calls `self.log.debug("...", attrs=pformat(<its ~40 options>))`,
    formatting eagerly even with debug logging off: measured at 0.6 ms of CPU per connect under
    daphne, about half of what daphne itself spends on one. The text is built only when txaio's
    log level is debug or trace.
    """
    try:
        from autobahn.websocket import protocol
    except ImportError:  # not under daphne
        return
    original = protocol.pformat
    if getattr(original, "skips_when_not_debugging", False):
        return

    def pformat_when_debugging(value: Any, *args: Any, **kwargs: Any) -> str:
        import txaio

        try:
            level = txaio.get_global_log_level()  # type: ignore[attr-defined]
        except RuntimeError:  # no framework chosen yet
            level = "debug"
        if level in ("debug", "trace"):
            return str(original(value, *args, **kwargs))
        return "(not formatted: debug logging is off)"

    pformat_when_debugging.skips_when_not_debugging = True  # type: ignore[attr-defined]
    protocol.pformat = pformat_when_debugging  # type: ignore[assignment]


skip_autobahn_debug_formatting()


def leave_request_bodies_to_django() -> None:
    """Stop Twisted from parsing a POST's multipart body before daphne hands it to Django.

    twisted.web's Request parses multipart/form-data bodies into `request.args` (which daphne never
    reads) and answers one it cannot parse with a bare 400, no body, and a closed connection: a
    client would get no JSON, and Django (MultiPartParser, with its limits) would never see it.
    Twisted's own switch for it is the request's `_parsePOSTFormSubmission`.
    """
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # not under daphne
        return
    original = WebRequest.__init__
    if getattr(original, "leaves_bodies_to_django", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    init.leaves_bodies_to_django = True  # type: ignore[attr-defined]
    WebRequest.__init__ = init


leave_request_bodies_to_django()


logger = logging.getLogger(__name__)


def calm_the_garbage_collector() -> None:
    """Move what startup built (Django, URLconf, models) out of the collector's way and collect less often.

    A server process allocates many short-lived objects per event; with the default thresholds
    the collector's full passes over every long-lived object showed up as latency spikes. In
    bench/ (multi-chat, 1,000 deliveries/s) this took p99 from 120 ms to 11 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    gc.callbacks.append(_log_slow_collections)


SLOW_COLLECTION_SECONDS = 0.1
_collection_started = [0.0, 0.0]  # wall clock, this thread's CPU clock


def _log_slow_collections(phase: str, info: dict[str, int]) -> None:
    """A collection that held the process for SLOW_COLLECTION_SECONDS or more is logged (WARNING):
    a full pass over tens of thousands of open sockets' objects takes that long, and every message
    of the process waits meanwhile."""
    if phase == "start":
        _collection_started[:] = [time.perf_counter(), time.thread_time()]
        return
    took = time.perf_counter() - _collection_started[0]
    if took >= SLOW_COLLECTION_SECONDS and not sys.is_finalizing():  # the log's streams may be closed by then
        logger.warning(
            "garbage collection of generation %d took %.0f ms (%.0f ms of CPU; %d objects collected)",
            info.get("generation", -1),
            took * 1000,
            (time.thread_time() - _collection_started[1]) * 1000,
            info.get("collected", 0),
        )


calm_the_garbage_collector()

websocket_app = OriginCheckMiddleware(JWTAuthMiddleware(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
