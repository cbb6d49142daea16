"""Two live daphne processes on a Redis of their own that is killed for a few seconds and started again.

Redis PubSub keeps nothing: what is published while the layer is down is lost to every socket.
The sockets stay open, a REST write is still stored (201), a socket that connects meanwhile is
accepted, and once Redis is back every socket is told `resync` and catches up with ?since=.
The Redis here is the test's own (a redis-server on a free loopback port, killed by its pid),
never the shared one.
"""

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.own_redis import REDIS_SERVER, OwnRedis
from tests.realtime.conftest import access_token
from tests.realtime.test_live_daphne import Daphne, _http

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL"),
        reason="needs DATABASE_URL (a database daphne shares with the test; the SQLite test database is in "
        "this process's memory)",
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to start a Redis of the test's own"),
]


@pytest.fixture(params=["internals", "plain-asgi"])
def outage(request, tmp_path) -> Iterator[tuple[OwnRedis, Daphne, Daphne]]:
    """Two daphne processes on a Redis of the test's own."""
    own = OwnRedis(tmp_path)
    own.start()
    internals = "true" if request.param == "internals" else "false"
    env = {"REDIS_URL": own.url, "CHANNEL_LAYER_PREFIX": "outage", "SERVER_INTERNALS": internals}
    servers = [Daphne(tmp_path / f"d{i}", extra_env=env) for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        yield own, servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()
        own.kill()


async def _frames_until(ws: Any, frame_type: str, timeout: float) -> tuple[dict[str, Any], list[str]]:
    """The first frame of this type, and the types of those before it."""
    before: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == frame_type:
                return frame, before
            before.append(frame["type"])


async def _full_resync(ws: Any, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Frames until a resync of everything: the resyncs met (a chat's may come first, from the
    process whose publish failed), and the types of the other frames before it."""
    resyncs: list[dict[str, Any]] = []
    others: list[str] = []
    async with asyncio.timeout(timeout):
        while not resyncs or "chat_ids" in resyncs[-1]:
            frame, before = await _frames_until(ws, "resync", timeout)
            resyncs.append(frame)
            others += before
    return resyncs, others


async def test_sockets_open_across_a_redis_outage_are_told_to_resync_and_catch_up_what_it_lost(
    outage, user, other_user, chat
):
    own, a, b = outage
    # given: a socket of each member, on two processes; the chat at version 0
    async with (
        ws_connect(f"{a.ws}/ws/?token={access_token(user)}") as everything,
        ws_connect(f"{b.ws}/ws/chat/{chat.id}/?token={access_token(other_user)}") as one_chat,
    ):
        await everything.send(json.dumps({"type": "ping"}))
        await _frames_until(everything, "pong", 5)
        # when: Redis dies, and a message is posted meanwhile (through process B)
        own.kill()
        status, body = await asyncio.to_thread(
            _http, "POST", f"{b.http}/api/chats/{chat.id}/messages", access_token(other_user), {"content": "lost"}
        )
        assert status == 201, body
        # and a socket connects to process A during the outage
        async with ws_connect(f"{a.ws}/ws/?token={access_token(other_user)}") as late:
            await late.send(json.dumps({"type": "ping"}))
            await _frames_until(late, "pong", 5)
            await asyncio.sleep(2)
            # when Redis is back
            own.start()
            back = time.monotonic()
            # then: every socket is told to resync within a few seconds, none was closed
            resyncs, before = await _full_resync(everything, 15)
            took = time.monotonic() - back
            assert resyncs[-1] == {"type": "resync"}
            assert all(resync == {"type": "resync", "chat_ids": [chat.id]} for resync in resyncs[:-1])
            assert "message.created" not in before  # it was lost: the resync is what says so
            assert (await _frames_until(one_chat, "resync", 5))[0] == {"type": "resync", "chat_ids": [chat.id]}
            assert (await _full_resync(late, 5))[0][-1] == {"type": "resync"}
            assert took < 10, took
            # and catching up returns the message
            status, page = await asyncio.to_thread(
                _http, "GET", f"{a.http}/api/chats/{chat.id}/messages?since=0", access_token(user)
            )
            assert status == 200, page
            assert [m["content"] for m in page["results"]] == ["lost"]
            # and the sockets are live again: the next message, posted through B, reaches A's socket
            status, body = await asyncio.to_thread(
                _http,
                "POST",
                f"{b.http}/api/chats/{chat.id}/messages",
                access_token(other_user),
                {"content": "live"},
            )
            assert status == 201, body
            event, _ = await _frames_until(everything, "message.created", 5)
            assert event["message"]["content"] == "live"
            print(f"resync {took:.2f} s after Redis was back")
