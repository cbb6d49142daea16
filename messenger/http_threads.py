"""Django's ASGI handler, serving each request in one hop to a long-lived thread.

Django's ASGIHandler runs each request's sync code (every DRF view) on a thread of its own,
started for that request and stopped after it. Database connections belong to threads, so every
request opened a new MariaDB connection (connect, authenticate, session setup): under daphne the
10-chat list took 23 ms against 3 ms in-process. Django's docs say persistent connections do not
survive this under ASGI (https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections).

Here each request borrows one of `HTTP_THREADS` long-lived single-thread executors through
asgiref's ThreadSensitiveContext(executor=...), so the thread — and its connection, kept for
CONN_MAX_AGE with health checks — serves request after request. When all are busy (slow uploads,
long downloads), a request gets a thread of its own as before, and its connection is closed
when it ends rather than left to the garbage collector.

And the middleware chain runs as under WSGI, all of it in that thread: the stock ASGI handler
runs each of Django's sync middlewares through its own sync_to_async hop (SessionMiddleware,
CsrfViewMiddleware, ... one or two hops each), which py-spy showed costing the event loop more
than the view's queries. The body is still read and the response still sent asynchronously.

And what a request built is freed by reference counting as soon as its response is out, not left
in reference cycles for the collector (`release_view`, `Exchange`): with ~800 cyclic objects a
chat-list request, gen-0 passes of 5-8 ms every ~20 requests were the chat list's p99.
"""

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.http import HttpRequest, HttpResponseBase


class ExecutorPool:
    """Single-thread executors lent to one request at a time (created lazily, up to `size`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[ThreadPoolExecutor] = []
        self._created = 0

    def borrow(self) -> ThreadPoolExecutor | None:
        if self._idle:
            return self._idle.pop()
        if self._created < self.size:
            self._created += 1
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-{self._created}")
        return None

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        self._idle.append(executor)


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        self.executors = ExecutorPool(threads)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.respond, thread_sensitive=True)(request)
        return response

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
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
        executor = self.executors.borrow()
        if executor is None:
            async with ThreadSensitiveContext():
                try:
                    await self.handle(scope, exchange.receive, exchange.send)
                finally:
                    await sync_to_async(connections.close_all)()
            return
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, exchange.receive, exchange.send)
        finally:
            self.executors.give_back(executor)


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


def get_asgi_application(threads: int) -> PooledThreadsASGIHandler:
    import django

    django.setup(set_prefix=False)
    return PooledThreadsASGIHandler(threads)


__all__ = ["PooledThreadsASGIHandler", "get_asgi_application", "release_view"]
