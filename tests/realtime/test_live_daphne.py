"""Live daphne processes on real Redis and a shared database: fan-out across processes, connect storms.

These start `daphne messenger.asgi:application` as separate processes. Both must see the test's
rows, so they need a database server (DATABASE_URL: pytest-django's SQLite test database lives in
this process's memory) as well as Redis (REDIS_URL) for the channel layer between processes.
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.factories import UserFactory, group_with
from tests.realtime.conftest import access_token


def _redis_reachable() -> bool:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(
        not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")),
        reason="needs REDIS_URL (the layer between processes) and DATABASE_URL (a database the daphne "
        "processes share with the test; the SQLite test database is in this process's memory)",
    ),
    pytest.mark.skipif(
        bool(os.environ.get("REDIS_URL")) and not _redis_reachable(), reason="REDIS_URL is set but unreachable"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = str(Path(sys.executable).with_name("daphne"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"mysql://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"


def _http(
    method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Daphne:
    def __init__(
        self, tmp_path: Path, workers: int = 1, options: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CHANNEL_LAYER_PREFIX": os.environ.get("CHANNEL_LAYER_PREFIX", "messenger"),
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATA_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        command = [DAPHNE, "-v", "0", "-b", "127.0.0.1", "-p", str(self.port), "messenger.asgi:application"]
        if workers > 1 or options:
            command = [sys.executable, "-m", "messenger.serve", "--workers", str(workers), "-v", "0"]
            command += ["-b", "127.0.0.1", "-p", str(self.port), *options]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.http = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                status, _ = _http("GET", f"{self.http}/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("daphne did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(params=["internals", "plain-asgi"])
def daphnes(request, tmp_path) -> Iterator[list[Daphne]]:
    """Two daphne processes of the messenger, started and stopped by the test: with the server
    libraries' internals (chats.realtime.adapter), and without them (plain ASGI, stock layers)."""
    internals = "true" if request.param == "internals" else "false"
    servers = [Daphne(tmp_path / f"d{i}", extra_env={"SERVER_INTERNALS": internals}) for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


async def _next_of_type(ws: Any, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == frame_type:
                return frame


async def test_a_socket_on_process_b_receives_a_message_posted_through_process_a(daphnes, user, other_user, chat):
    # given
    a, b = daphnes
    async with ws_connect(f"{b.ws}/ws/chat/{chat.id}/?token={access_token(other_user)}") as listener:
        # when
        status, body = await asyncio.to_thread(
            _http, "POST", f"{a.http}/api/chats/{chat.id}/messages", access_token(user), {"content": "from A"}
        )
        # then
        assert status == 201, body
        event = await _next_of_type(listener, "message.created")
        assert event["message"]["id"] == body["id"]
        assert event["message"]["content"] == "from A"


async def test_a_message_sent_over_a_socket_on_process_a_reaches_a_socket_on_process_b(daphnes, user, other_user, chat):
    # given
    a, b = daphnes
    async with (
        ws_connect(f"{a.ws}/ws/?token={access_token(user)}") as sender,
        ws_connect(f"{b.ws}/ws/?token={access_token(other_user)}") as listener,
    ):
        # when
        await sender.send(json.dumps({"type": "message.send", "chat_id": chat.id, "content": "hop", "client_id": "x1"}))
        ack = await _next_of_type(sender, "message.ack")
        # then
        event = await _next_of_type(listener, "message.created")
        assert event["message"]["id"] == ack["message"]["id"]


async def test_concurrent_sends_to_one_chat_reach_sockets_on_both_processes_in_version_order(
    daphnes, user, other_user, chat
):
    # given: a listener on each process; senders over REST on both and over a socket on each
    a, b = daphnes
    count = 40
    # (max_queue=None: frames left unread must not stop a client from reading the server's close)
    async with (
        ws_connect(f"{a.ws}/ws/?token={access_token(other_user)}", max_queue=None) as on_a,
        ws_connect(f"{b.ws}/ws/chat/{chat.id}/?token={access_token(other_user)}", max_queue=None) as on_b,
        ws_connect(f"{a.ws}/ws/?token={access_token(user)}", max_queue=None) as socket_a,
        ws_connect(f"{b.ws}/ws/?token={access_token(user)}", max_queue=None) as socket_b,
    ):

        def post(n: int) -> None:
            server = (a, b)[n % 2]
            status, body = _http(
                "POST", f"{server.http}/api/chats/{chat.id}/messages", access_token(user), {"content": f"r{n}"}
            )
            assert status == 201, body

        async def socket_sends(ws: Any, prefix: str) -> None:
            for n in range(count // 4):
                frame = {
                    "type": "message.send",
                    "chat_id": chat.id,
                    "content": f"{prefix}{n}",
                    "client_id": f"{prefix}{n}",
                }
                await ws.send(json.dumps(frame))

        async def versions(ws: Any) -> list[int]:
            seen: list[int] = []
            async with asyncio.timeout(30):
                while len(seen) < count:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "message.created":
                        seen.append(frame["version"])
            return seen

        # when
        listening = [asyncio.create_task(versions(ws)) for ws in (on_a, on_b)]
        rest_posts = [asyncio.to_thread(post, n) for n in range(count // 2)]
        await asyncio.gather(*rest_posts, socket_sends(socket_a, "sa"), socket_sends(socket_b, "sb"))
        seen_a, seen_b = await asyncio.gather(*listening)
    # then: every change, each once, in version order on both processes
    assert seen_a == list(range(1, count + 1))
    assert seen_b == list(range(1, count + 1))


async def test_a_socket_past_the_user_s_limit_on_process_b_closes_their_oldest_on_process_a_with_4429(tmp_path, user):
    # given two processes, a limit of 2 sockets, the user's oldest on A
    servers = [Daphne(tmp_path / f"d{i}", extra_env={"WEBSOCKET_MAX_PER_USER": "2"}) for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        a, b = servers
        url = f"/ws/?token={access_token(user)}"
        async with ws_connect(f"{a.ws}{url}") as oldest, ws_connect(f"{b.ws}{url}") as second:
            await oldest.send(json.dumps({"type": "ping"}))
            await _next_of_type(oldest, "pong")
            # when
            async with ws_connect(f"{b.ws}{url}") as third:
                # then
                async with asyncio.timeout(5):
                    while True:
                        try:
                            await oldest.recv()
                        except ConnectionClosed as closed:
                            assert closed.rcvd is not None and closed.rcvd.code == 4429
                            break
                for socket_ in (second, third):
                    await socket_.send(json.dumps({"type": "ping"}))
                    assert (await _next_of_type(socket_, "pong"))["type"] == "pong"
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def crowd(user) -> tuple[Any, list[Any]]:
    members = UserFactory.create_batch(300)
    return group_with(user, *members, owner=user, title="Crowd"), members


async def _everyone_gets_the_next_message(server: Daphne, chat: Any, sender: Any, members: list[Any]) -> None:
    """Open a socket for each member at once, post a message over REST, and check every socket gets it."""
    urls = [f"{server.ws}/ws/?token={access_token(member)}" for member in members]
    sockets = await asyncio.gather(*(ws_connect(url, open_timeout=30) for url in urls))
    try:
        # The answer may wait behind the connects' presence fan-out (300 users coming online in one chat,
        # each told to every member): on a loaded 2-core machine that took over 10 s. Not a timing test.
        status, body = await asyncio.to_thread(
            _http, "POST", f"{server.http}/api/chats/{chat.id}/messages", access_token(sender), {"content": "all"}, 30
        )
        assert status == 201, body
        events = await asyncio.gather(*(_next_of_type(ws, "message.created", timeout=20) for ws in sockets))
        assert {event["message"]["id"] for event in events} == {body["id"]}
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def test_a_burst_of_300_concurrent_connects_all_succeed_and_all_receive_the_next_message(daphnes, user, crowd):
    # given
    chat, members = crowd
    # when: every socket connects at once (each subscribes its own user group: 301 groups)
    # then: each of them gets the next message
    await _everyone_gets_the_next_message(daphnes[0], chat, user, members)


async def test_the_launchers_workers_share_one_port_and_every_socket_gets_the_message(tmp_path, user, crowd):
    # given: messenger.serve --workers 2, one listening socket for both
    server = Daphne(tmp_path / "workers", workers=2)
    try:
        await asyncio.to_thread(server.wait_ready)
        workers = psutil.Process(server.process.pid).children()
        assert len(workers) == 2 + 1  # and the spare that replaces one that dies (messenger.serve.Spare)
        chat, members = crowd
        # when / then: sockets on either worker get it (the other worker's hub hears it through Redis)
        await _everyone_gets_the_next_message(server, chat, user, members[:60])
    finally:
        await asyncio.to_thread(server.stop)
    # and stopping the launcher stops its workers
    assert not [worker for worker in workers if worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE]


def _read_frame(stream: socket.socket) -> tuple[int, bytes]:
    """One WebSocket frame from the server (unmasked): (opcode, payload); (-1, b"") when it hung up."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = stream.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    try:
        first, second = exactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(exactly(8), "big")
        return first & 0x0F, exactly(length)
    except (EOFError, ConnectionResetError):
        return -1, b""


def _raw_socket(server: Any, user: Any) -> socket.socket:
    """A WebSocket opened by hand (handshake done), for reading and writing frames byte by byte."""
    stream = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    stream.sendall(
        (
            f"GET /ws/?token={access_token(user)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Origin: http://127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += stream.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return stream


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (FIN, masked), payload under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_peer_that_stops_answering_is_pinged_then_closed_by_the_launchers_server(tmp_path, user):
    # given: the launcher's server (pings paced by messenger.paced_server) pinging after 1 s of quiet,
    # and a client that completes the handshake and then never answers a ping (a vanished laptop)
    server = Daphne(tmp_path / "pings", options=("--ping-interval", "1", "--ping-timeout", "2"))
    try:
        server.wait_ready()
        stream = _raw_socket(server, user)
        # when: we read what the server sends, answering nothing
        opcodes = []
        started = time.monotonic()
        while time.monotonic() - started < 15:
            opcode, _ = _read_frame(stream)
            opcodes.append(opcode)
            if opcode in (0x8, -1):  # a close frame, or the connection dropped
                break
        stream.close()
    finally:
        server.stop()
    # then: pinged (opcode 9) within the interval, and closed once the ping went unanswered
    assert 0x9 in opcodes, opcodes
    assert opcodes[-1] in (0x8, -1), opcodes
    assert time.monotonic() - started < 15


def test_a_peer_that_answers_each_ping_stays_open_and_can_still_send(tmp_path, user):
    # given: the same server (ping after 1 s of quiet, closed 2 s after an unanswered one), and a client
    # that answers each ping with its pong -- alone (the server's short way) or in one write with a
    # frame behind it (autobahn's parser)
    server = Daphne(tmp_path / "pongs", options=("--ping-interval", "1", "--ping-timeout", "2"))
    try:
        server.wait_ready()
        stream = _raw_socket(server, user)
        # when: 7 s pass (over three ping timeouts), every ping answered
        pings = 0
        texts = []
        started = time.monotonic()
        while time.monotonic() - started < 7:
            opcode, payload = _read_frame(stream)
            assert opcode not in (0x8, -1), "closed while answering its pings"
            if opcode == 0x9:
                pings += 1
                pong = _masked(0xA, payload)
                frame = json.dumps({"type": "ping"}).encode() if pings % 2 == 0 else b""
                stream.sendall(pong + (_masked(0x1, frame) if frame else b""))
            elif opcode == 0x1:
                texts.append(json.loads(payload))
        stream.sendall(_masked(0x1, json.dumps({"type": "ping"}).encode()))
        while [t["type"] for t in texts].count("pong") < pings // 2 + 1:
            opcode, payload = _read_frame(stream)
            assert opcode not in (0x8, -1)
            if opcode == 0x1:
                texts.append(json.loads(payload))
        stream.close()
    finally:
        server.stop()
    # then: pinged several times, never closed, and every app-level ping of the client answered
    assert pings >= 3, pings
    assert [t["type"] for t in texts].count("pong") == pings // 2 + 1, texts


async def test_a_worker_at_its_connection_cap_holds_the_next_socket_until_one_closes(tmp_path, user):
    # given: one worker that takes 3 connections at most (MAX_CONNECTIONS_PER_PROCESS), left alone
    # long enough that the readiness check's connection is reaped
    server = Daphne(tmp_path / "cap", options=("--ping-interval", "20"), extra_env={"MAX_CONNECTIONS_PER_PROCESS": "3"})
    sockets: list[Any] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        await asyncio.sleep(2.5)
        url = f"{server.ws}/ws/?token={access_token(user)}"
        origin = {"origin": server.http}
        for _ in range(3):
            sockets.append(await ws_connect(url, additional_headers=origin, open_timeout=5))
        # when: a fourth connects
        fourth = asyncio.ensure_future(ws_connect(url, additional_headers=origin, open_timeout=20))
        await asyncio.sleep(2.0)
        # then: its handshake waits (the connection sits in the listen backlog, no descriptor taken)
        assert not fourth.done()
        # when: one of the three closes
        await sockets.pop(0).close()
        # then: the fourth is accepted and served
        sockets.append(await fourth)
        await sockets[-1].send(json.dumps({"type": "ping"}))
        assert (await _next_of_type(sockets[-1], "pong"))["type"] == "pong"
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.to_thread(server.stop)
