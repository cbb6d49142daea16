"""messenger.http_threads: REST requests under ASGI run on long-lived threads that keep their connection."""

import asyncio
import gc
import json
import threading
from collections import Counter

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_started
from django.db import connection
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


async def request(handler: PooledThreadsASGIHandler, path: str) -> tuple[int, dict[bytes, bytes], object]:
    """Status, headers and JSON body of a GET."""
    sent: list[dict] = []
    incoming: asyncio.Queue[dict] = asyncio.Queue()
    incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def send(message: dict) -> None:
        sent.append(message)

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
    await handler(scope, incoming.get, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(sent[0]["status"]), dict(sent[0]["headers"]), json.loads(body)


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


async def test_the_pool_lends_each_thread_to_one_request_at_a_time():
    pool = ExecutorPool(2)
    first, second = await pool.borrow(0.01), await pool.borrow(0.01)
    assert first is not None and second is not None and first is not second
    assert await pool.borrow(0.01) is None  # no third thread: the request waited, and none came
    pool.give_back(first)
    assert await pool.borrow(0.01) is first


async def test_a_thread_given_back_goes_to_the_oldest_waiting_request():
    # given: both threads lent, two requests waiting in turn
    pool = ExecutorPool(2)
    first, second = await pool.borrow(0.01), await pool.borrow(0.01)
    assert first is not None and second is not None
    earlier = asyncio.ensure_future(pool.borrow(5))
    await asyncio.sleep(0.01)
    later = asyncio.ensure_future(pool.borrow(5))
    await asyncio.sleep(0.01)
    assert pool.waiting == 2
    # when
    pool.give_back(second)
    pool.give_back(first)
    # then
    assert await earlier is second
    assert await later is first


async def test_a_waiter_cancelled_after_it_was_handed_a_thread_gives_it_back():
    pool = ExecutorPool(1)
    only = await pool.borrow(0.01)
    assert only is not None
    waiter = asyncio.ensure_future(pool.borrow(5))
    await asyncio.sleep(0.01)
    # when: the thread is handed over and the request is cancelled (its client left) before it runs
    pool.give_back(only)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # then
    assert await pool.borrow(0.01) is only


async def test_a_request_that_finds_no_thread_within_the_wait_gets_503_json_with_retry_after():
    # given: the only pooled thread is held by a request that has not finished
    handler = PooledThreadsASGIHandler(threads=1, queue_seconds=0.2)
    held = await handler.executors.borrow(0.01)
    assert held is not None
    started_threads = threading.active_count()
    # when
    status, headers, body = await request(handler, "/api/auth/me")
    # then: answered without a thread (or a connection) of its own
    assert status == 503
    assert headers[b"retry-after"] == b"5"
    assert headers[b"content-type"] == b"application/json"
    assert body == {"detail": "The server is busy right now; try again shortly."}
    assert threading.active_count() == started_threads
    handler.executors.give_back(held)


async def test_a_request_waits_for_a_thread_rather_than_taking_one_of_its_own():
    # given
    view_threads: list[str] = []

    def note(**kwargs):
        view_threads.append(threading.current_thread().name)

    request_started.connect(note, dispatch_uid="test-note-queue")
    handler = PooledThreadsASGIHandler(threads=2, queue_seconds=5)
    try:
        # when: ten at once on two threads
        statuses = await asyncio.gather(*(get(handler, "/api/auth/me") for _ in range(10)))
    finally:
        request_started.disconnect(dispatch_uid="test-note-queue")
    # then
    assert statuses == [401] * 10
    assert {name.split("_")[0] for name in view_threads} <= {"http-1", "http-2"}


async def test_a_request_that_failed_on_the_database_closes_its_connection(monkeypatch):
    # given: a view whose query fails as a stalled server's does (a read timeout)
    from django.db import OperationalError

    from accounts import views

    seen: list[object] = []

    def failing_get(self, request):
        connection.ensure_connection()
        seen.append(connection.connection)
        connection.errors_occurred = True  # what Django's error wrapper sets
        raise OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr(views.MeView, "get", failing_get)
    handler = PooledThreadsASGIHandler(threads=1)
    token = str(AccessToken.for_user(await sync_to_async(UserFactory.create)()))
    # when
    status = await get(handler, "/api/auth/me", token=token)
    # then
    assert status == 503
    executor = handler.executors.borrow_now()
    assert executor is not None
    assert executor.submit(lambda: connection.connection).result() is None


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


async def test_healthz_is_served_beside_a_pool_whose_every_thread_is_busy():
    # given: every pooled thread held (as by requests waiting on a hung database)
    handler = PooledThreadsASGIHandler(threads=1, queue_seconds=5)
    held = await handler.executors.borrow(0.01)
    assert held is not None
    # when
    started = asyncio.get_running_loop().time()
    status, _, body = await request(handler, "/healthz")
    # then: answered on its own thread, not after the queue's wait
    assert status == 200, body
    assert asyncio.get_running_loop().time() - started < 2
    handler.executors.give_back(held)
