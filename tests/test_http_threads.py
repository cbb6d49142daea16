"""messenger.http_threads: REST requests under ASGI run on long-lived threads that keep their connection."""

import asyncio
import threading

import pytest
from django.core.signals import request_started
from django.db import connection, connections

from messenger.http_threads import ExecutorPool, PooledThreadsASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def get(handler: PooledThreadsASGIHandler, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await handler(scope, receive, send)
    return int(sent[0]["status"])


async def test_requests_one_after_another_share_a_thread_and_its_connection():
    # given
    seen: list[tuple[str, int]] = []

    def note(**kwargs):
        # The view's thread and its database connection (touched, so that it exists).
        connection.ensure_connection()
        seen.append((threading.current_thread().name, id(connection.connection)))

    request_started.connect(note, dispatch_uid="test-note")
    handler = PooledThreadsASGIHandler(threads=2)
    try:
        # when
        statuses = [await get(handler, "/api/auth/me") for _ in range(3)]
    finally:
        request_started.disconnect(dispatch_uid="test-note")
    # then
    assert statuses == [401, 401, 401]
    assert len(set(seen)) == 1
    assert seen[0][0].startswith("http-1")


def test_the_pool_lends_each_thread_to_one_request_at_a_time():
    pool = ExecutorPool(2)
    first, second = pool.borrow(), pool.borrow()
    assert first is not None and second is not None and first is not second
    assert pool.borrow() is None  # the third request gets a thread of its own
    pool.give_back(first)
    assert pool.borrow() is first


async def test_a_request_beyond_the_pool_gets_its_own_thread_and_closes_its_connection(monkeypatch):
    # given: no pooled thread free (a pool of none)
    view_threads: list[str] = []
    closed_in: list[str] = []
    real_close_all = connections.close_all

    def note(**kwargs):
        view_threads.append(threading.current_thread().name)

    def close_all() -> None:
        closed_in.append(threading.current_thread().name)
        real_close_all()

    monkeypatch.setattr(connections, "close_all", close_all)
    request_started.connect(note, dispatch_uid="test-note-overflow")
    handler = PooledThreadsASGIHandler(threads=0)
    try:
        # when
        status = await get(handler, "/api/auth/me")
    finally:
        request_started.disconnect(dispatch_uid="test-note-overflow")
    # then: served on a thread of its own, whose connection is closed there rather than left behind
    assert status == 401
    assert len(view_threads) == 1 and not view_threads[0].startswith("http-")
    assert closed_in == view_threads
