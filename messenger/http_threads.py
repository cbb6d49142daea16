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
"""

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
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.executors.borrow()
        if executor is None:
            async with ThreadSensitiveContext():
                try:
                    await self.handle(scope, receive, send)
                finally:
                    await sync_to_async(connections.close_all)()
            return
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.executors.give_back(executor)


def get_asgi_application(threads: int) -> PooledThreadsASGIHandler:
    import django

    django.setup(set_prefix=False)
    return PooledThreadsASGIHandler(threads)


__all__ = ["PooledThreadsASGIHandler", "get_asgi_application"]
