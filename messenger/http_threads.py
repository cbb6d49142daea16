"""Django's ASGI handler, serving each request in one hop to a long-lived thread.

Django's ASGIHandler runs each request's sync code (every DRF view) on a thread of its own,
started for that request and stopped after it. Database connections belong to threads, so every
request opened a new MariaDB connection (connect, authenticate, session setup): under daphne the
10-chat list took 23 ms against 3 ms in-process. Django's docs say persistent connections do not
survive this under ASGI (https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections).

Here each request borrows one of `HTTP_THREADS` long-lived single-thread executors through
asgiref's ThreadSensitiveContext(executor=...), so the thread — and its connection, kept for
CONN_MAX_AGE with health checks — serves request after request. And only those threads: a
process never holds more than HTTP_THREADS connections for REST, whatever the burst. (When
requests beyond the pool got a thread and a connection of their own, 250 concurrent GETs
exhausted MariaDB's connections: 37 answered 500; a 30 s database stall piled up 688 threads.)
When all are busy, a request waits for one in arrival order, at most HTTP_QUEUE_SECONDS, then
is answered 503 JSON with Retry-After without reaching Django. A thread whose request failed on
the database (a 5xx with a connection error) closes that connection, so that a stalled or
restarted server leaves none behind; the next request connects afresh.

`/healthz` has one thread of its own, beside the pool: it must answer within 2 s when every
pooled thread waits on a hung database (its checks run with their own timeouts, messenger/health.py).

And the middleware chain runs as under WSGI, all of it in that thread: the stock ASGI handler
runs each of Django's sync middlewares through its own sync_to_async hop (SessionMiddleware,
CsrfViewMiddleware, ... one or two hops each), which py-spy showed costing the event loop more
than the view's queries. The body is still read and the response still sent asynchronously.

And what a request built is freed by reference counting as soon as its response is out, not left
in reference cycles for the collector (`release_view`, `Exchange`): with ~800 cyclic objects a
chat-list request, gen-0 passes of 5-8 ms every ~20 requests were the chat list's p99.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.http import HttpRequest, HttpResponseBase

from messenger.exceptions import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
SATURATED_DETAIL = "The server is busy right now; try again shortly."


class ExecutorPool:
    """Single-thread executors lent to one request at a time (created lazily, up to `size`).

    A request that finds none free waits in a first-come queue (`borrow`'s timeout); an executor
    given back goes straight to the oldest waiter. Used from one event loop.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0
        self._waiters: deque[asyncio.Future[ThreadPoolExecutor]] = deque()

    def borrow_now(self) -> ThreadPoolExecutor | None:
        if self._idle:
            return self._idle.pop()
        if self._created < self.size:
            self._created += 1
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-{self._created}")
        return None

    async def borrow(self, timeout: float) -> ThreadPoolExecutor | None:
        """An executor, waiting at most `timeout` seconds for one; None when none came."""
        executor = self.borrow_now()
        if executor is not None or self.size == 0:
            return executor
        waiter: asyncio.Future[ThreadPoolExecutor] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        except BaseException:  # cancelled while waiting: an executor handed over meanwhile goes back
            if waiter.done() and not waiter.cancelled():
                self.give_back(waiter.result())
            waiter.cancel()
            raise
        if waiter.done():
            return waiter.result()
        waiter.cancel()  # skipped by give_back
        return None

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(executor)
                return
        self._idle.append(executor)

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int, queue_seconds: float = 5.0) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        self.executors = ExecutorPool(threads)
        self.queue_seconds = queue_seconds
        self.health_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-health")

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.respond, thread_sensitive=True)(request)
        return response

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code >= 500:
            close_failed_connections()
        release_view(response)
        # Django's own per-request cycles: the messages storage and request.auser refer back to
        # the request (MessageMiddleware has already stored what it had; nothing calls auser now).
        request.__dict__.pop("_messages", None)
        request.__dict__.pop("auser", None)
        return response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        exchange = Exchange(receive, send)
        if scope.get("path") == HEALTH_PATH:
            async with ThreadSensitiveContext(executor=self.health_executor):
                await self.handle(scope, exchange.receive, exchange.send)
            return
        executor = await self.executors.borrow(self.queue_seconds)
        if executor is None:
            logger.warning(
                "no HTTP thread free within %ss (%s in use, %s waiting): 503 for %s %s",
                self.queue_seconds,
                self.executors.size,
                self.executors.waiting,
                scope.get("method"),
                scope.get("path"),
            )
            await send_saturated(send)
            return
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, exchange.receive, exchange.send)
        finally:
            self.executors.give_back(executor)


async def send_saturated(send: Any) -> None:
    """503 JSON with Retry-After, as messenger.exceptions answers a database failure."""
    body = json.dumps({"detail": SATURATED_DETAIL}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def close_failed_connections() -> None:
    """Close this thread's database connections that saw an error during a failed request.

    Django would ping them at request_finished (close_if_unusable_or_obsolete), which against
    a stalled server waits out the read timeout once more; a fresh connection costs one connect.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            logger.info("closing database connection %r after a failed request", conn.alias)
            conn.close()


class Exchange:
    """One request's receive and send, where a disconnect after the whole response is no abort.

    daphne reports `http.disconnect` as soon as the last body message is sent. Django's handler
    listens for disconnects in a task beside the view's; when that task ends with RequestAborted
    it keeps the exception, whose traceback holds the handler's frame, which holds the task: a
    cycle keeping the request and its response (~290 objects) for the cyclic collector. A
    disconnect after the complete response aborts nothing, so it is not passed on: the listening
    task is cancelled by the handler instead, as it is when the view finishes first.
    """

    def __init__(self, receive: Any, send: Any) -> None:
        self._receive = receive
        self._send = send
        self.responded = False

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = await self._receive()
        if self.responded and message["type"] == "http.disconnect":
            await asyncio.Future()  # until the handler cancels its listening task
        return message

    async def send(self, message: Mapping[str, Any]) -> None:
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.responded = True


def release_view(response: HttpResponseBase) -> None:
    """Let reference counting free what a DRF view built, as soon as its response is rendered.

    DRF ties a request's objects in reference cycles: the view holds the response (view.response),
    the response's renderer_context holds the view, the request and the response itself, the
    request's parser_context holds the view and the request, a viewset holds its own bound actions.
    Whatever hangs off them (the page of rows, the response data) then waits for the cyclic
    collector: ~800 objects a chat-list request, and a gen-0 pass of 5-8 ms every ~20 requests
    (p99 15.6 ms against p50 8.5 ms in bench/). Once the response is rendered none of them is read
    again; a response that is not rendered yet (or not DRF's) is left alone.
    """
    context = getattr(response, "renderer_context", None)
    if not context or not getattr(response, "is_rendered", False):
        return
    view = context.get("view")
    drf_request = context.get("request")
    context.clear()
    if view is not None:
        view.__dict__.clear()
    parser_context = getattr(drf_request, "parser_context", None)
    if isinstance(parser_context, dict):
        parser_context.clear()


def get_asgi_application(threads: int, queue_seconds: float = 5.0) -> PooledThreadsASGIHandler:
    import django

    django.setup(set_prefix=False)
    return PooledThreadsASGIHandler(threads, queue_seconds)


__all__ = ["PooledThreadsASGIHandler", "get_asgi_application", "release_view"]
