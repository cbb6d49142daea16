"""messenger.http_threads: REST requests under ASGI run on long-lived threads that keep their connection."""

import asyncio
import gc
import threading
from collections import Counter

import pytest
from django.core.signals import request_started
from django.db import connection, connections
from rest_framework_simplejwt.tokens import AccessToken

from messenger.http_threads import Exchange, ExecutorPool, PooledThreadsASGIHandler
from tests.factories import UserFactory, group_with, message_in

pytestmark = pytest.mark.django_db(transaction=True)


async def get(handler: PooledThreadsASGIHandler, path: str, *, token: str = "") -> int:
    path, _, query = path.partition("?")
    headers = [(b"host", b"testserver")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    # As daphne does: the body arrives at once, and a disconnect as soon as the response is complete.
    incoming: asyncio.Queue[dict] = asyncio.Queue()
    incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive() -> dict:
        return await incoming.get()

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            incoming.put_nowait({"type": "http.disconnect"})

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


@pytest.fixture
def reader_in_chats(db):
    reader = UserFactory.create()
    friends = UserFactory.create_batch(3)
    for index in range(6):
        chat = group_with(reader, *friends, owner=reader, title=f"chat {index}")
        for number in range(3):
            message_in(chat, friends[number], f"hello {number}")
    return reader, chat


@pytest.mark.parametrize("page", ["/api/chats", "/api/chats/{chat}/messages?limit=20"])
async def test_a_served_page_is_freed_at_once_not_left_to_the_cyclic_collector(reader_in_chats, page):
    # given: DRF's view, request and response refer to each other; what hangs off them (the rows,
    # the response data) would wait for the collector's pauses unless the handler unties them
    reader, chat = reader_in_chats
    path = page.format(chat=chat.pk)
    token = str(AccessToken.for_user(reader))
    handler = PooledThreadsASGIHandler(threads=1)
    assert await get(handler, path, token=token) == 200  # warm (imports, caches)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        # when
        statuses = [await get(handler, path, token=token) for _ in range(5)]
        gc.collect()
        left = Counter(type(garbage).__name__ for garbage in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # then: no row and no rendered data reached the collector; the few objects that do are
    # Django's own small cycles (the ORM's compiler builds a recursive closure)
    assert statuses == [200] * 5
    assert not {"Chat", "Message", "User", "ChatUser", "Member", "Response", "Request"} & set(left), left
    assert sum(left.values()) <= 5 * 80, left


async def test_a_disconnect_before_the_response_is_complete_reaches_django_and_one_after_does_not():
    # given
    incoming: asyncio.Queue[dict] = asyncio.Queue()
    exchange = Exchange(incoming.get, lambda message: asyncio.sleep(0))
    # when the client leaves while the response is on its way: Django hears it
    incoming.put_nowait({"type": "http.disconnect"})
    assert (await exchange.receive())["type"] == "http.disconnect"
    # when it leaves after the response's last chunk: nothing was aborted, the listener waits on
    await exchange.send({"type": "http.response.start", "status": 200, "headers": []})
    await exchange.send({"type": "http.response.body", "body": b"part", "more_body": True})
    assert not exchange.responded
    await exchange.send({"type": "http.response.body", "body": b"end"})
    incoming.put_nowait({"type": "http.disconnect"})
    listener = asyncio.ensure_future(exchange.receive())
    await asyncio.sleep(0.05)
    assert exchange.responded and not listener.done()
    listener.cancel()
