"""The launcher's workers, live: one killed is replaced while the others keep their sockets; SIGTERM
drains (every in-flight request answered, every received send acked, every socket closed with 1001).

These start `python -m messenger.serve --workers 2` as a process of their own, on a free loopback
port, with a SQLite database of their own (migrated once, copied per test) and Redis for the layer
between the workers: they need Redis (REDIS_URL, else redis://127.0.0.1:6379/12) and are skipped
without it. Only processes these tests start are signalled, by pid.
"""

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
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
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"
SHUTDOWN_TIMEOUT = 10


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not _redis_reachable(), reason=f"needs Redis between the workers ({REDIS_URL} is unreachable)"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(data_dir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}},
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": "wtlauncher",
        "SECRET_KEY": "launcher-test-" + "x" * 40,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "THROTTLE_AUTH": "1000/min",
        # One user's sockets send 40 frames each at once: 240, past the per-user rate's burst.
        "WEBSOCKET_SENDS_PER_SECOND_PER_USER": "0",
        "LINK_PREVIEWS": "false",
        "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A migrated SQLite database, made once for the module."""
    data_dir = tmp_path_factory.mktemp("migrated")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=_environment(data_dir),
        check=True,
        timeout=120,
    )
    return data_dir / "messenger.sqlite3"


def _http(method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Launcher:
    def __init__(self, data_dir: Path, workers: int = 2, extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.log = data_dir / "launcher.log"
        command = [sys.executable, "-m", "messenger.serve", "--workers", str(workers), "-v", "0"]
        command += ["-b", "127.0.0.1", "-p", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**_environment(data_dir), **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.http = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"

    def wait_ready(self, workers: int = 2 + 1) -> None:
        """Until it serves, with its workers and its spare."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the launcher exited: {self.output()}")
            try:
                if _http("GET", f"{self.http}/healthz")[0] == 200 and len(self.workers()) == workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the launcher did not become ready: {self.output()}")

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []

    def worker_of(self, client_port: int) -> int | None:
        """The pid of the worker holding the server side of the client's connection."""
        for worker in self.workers():
            try:
                for conn in worker.net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == client_port and conn.laddr.port == self.port:
                        return int(worker.pid)
            except psutil.NoSuchProcess:
                continue
        return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                for worker in self.workers():
                    worker.kill()
                self.process.kill()
                self.process.wait()


@pytest.fixture(params=["internals", "plain-asgi"])
def launcher(request, migrated, tmp_path) -> Iterator[Launcher]:
    """The launcher with 2 workers: with the server libraries' internals (chats.realtime.adapter), and
    without them (SERVER_INTERNALS=false: plain ASGI sends, the stock layers)."""
    shutil.copy(migrated, tmp_path / "messenger.sqlite3")
    server = Launcher(tmp_path, extra_env={"SERVER_INTERNALS": str(request.param == "internals").lower()})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _register(server: Launcher, name: str) -> tuple[int, str]:
    body = {"username": name, "email": f"{name}@example.com", "password": secrets.token_urlsafe(16)}
    status, answer = _http("POST", f"{server.http}/api/auth/register", body=body)
    assert status == 201, answer
    return answer["user"]["id"], answer["access"]


def _direct_chat(server: Launcher) -> tuple[str, int]:
    """Two users and their direct chat: the first user's token and the chat's id."""
    _, token = _register(server, "alice")
    bob, _ = _register(server, "bob")
    status, chat = _http("POST", f"{server.http}/api/chats", token, {"is_group": False, "member_ids": [bob]})
    assert status == 201, chat
    return token, chat["id"]


async def _sockets_on_both_workers(server: Launcher, token: str) -> dict[int, ClientConnection]:
    """One open socket on each worker (connections land where the kernel puts them: open until both have one)."""
    by_worker: dict[int, ClientConnection] = {}
    spare: list[ClientConnection] = []
    for _ in range(40):
        ws = await ws_connect(f"{server.ws}/ws/?token={token}", open_timeout=10)
        pid = server.worker_of(ws.local_address[1])
        if pid is not None and pid not in by_worker:
            by_worker[pid] = ws
        else:
            spare.append(ws)
        if len(by_worker) == 2:
            break
    for ws in spare:
        await ws.close()
    assert len(by_worker) == 2, "every connection landed on one worker"
    return by_worker


async def _pong(ws: ClientConnection) -> bool:
    await ws.send(json.dumps({"type": "ping"}))
    async with asyncio.timeout(5):
        while True:
            if json.loads(await ws.recv())["type"] == "pong":
                return True


async def test_a_killed_worker_is_replaced_within_2_seconds_and_the_other_keeps_its_sockets(launcher):
    # given: a socket on each worker
    token, _ = await asyncio.to_thread(_direct_chat, launcher)
    sockets = await _sockets_on_both_workers(launcher, token)
    victim, survivor = list(sockets)
    # when: one worker is killed outright
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    # then: another worker serves within 2 s: a new connection lands on it
    served_in = None
    extra: list[ClientConnection] = []
    while time.monotonic() - killed_at < 5 and served_in is None:
        try:
            ws = await ws_connect(f"{launcher.ws}/ws/?token={token}", open_timeout=2)
            extra.append(ws)
            if launcher.worker_of(ws.local_address[1]) not in {victim, survivor, None} and await _pong(ws):
                served_in = time.monotonic() - killed_at
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.02)
    print(f"a new worker serving {served_in} s after the kill")
    assert served_in is not None and served_in < 2, launcher.output()
    # and the socket on the other worker stayed open throughout
    assert await _pong(sockets[survivor])
    for ws in [*sockets.values(), *extra]:
        await ws.close()
    assert "exited with code -9" in launcher.output()
    assert "the spare" in launcher.output() and "took over" in launcher.output()


def _slow_post(server: Launcher, token: str, chat_id: int) -> tuple[socket.socket, bytes]:
    """A REST request whose body arrives slowly: the caller sends the rest."""
    body = json.dumps({"content": "slow", "client_id": secrets.token_hex(8)}).encode()
    stream = socket.create_connection(("127.0.0.1", server.port), timeout=SHUTDOWN_TIMEOUT + 5)
    stream.sendall(
        (
            f"POST /api/chats/{chat_id}/messages HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[:5]
    )
    return stream, body[5:]


def _answer_of(stream: socket.socket, rest: bytes) -> tuple[int, bytes]:
    stream.sendall(rest)
    answer = b""
    while True:
        chunk = stream.recv(65536)
        if not chunk:
            break
        answer += chunk
    stream.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer


async def _acks_and_close(ws: ClientConnection) -> tuple[dict[str, float], int | None, float]:
    """Each ack's client_id with the time it came, the close code, the time of the close."""
    acked: dict[str, float] = {}
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT + 5):
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "message.ack":
                    acked[frame["client_id"]] = time.monotonic()
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        return acked, code, time.monotonic()
    return acked, None, time.monotonic()


async def test_sigterm_answers_every_request_acks_every_send_and_closes_every_socket_with_1001(launcher):
    # given: sockets on both workers, each with sends just received, and requests half received
    token, chat_id = await asyncio.to_thread(_direct_chat, launcher)
    sockets = list((await _sockets_on_both_workers(launcher, token)).values())
    sockets += [await ws_connect(f"{launcher.ws}/ws/?token={token}", open_timeout=10) for _ in range(4)]
    slow = [await asyncio.to_thread(_slow_post, launcher, token, chat_id) for _ in range(10)]
    deadline = time.monotonic() + 5
    while not all(launcher.worker_of(stream.getsockname()[1]) for stream, _ in slow):
        assert time.monotonic() < deadline, "the requests were not accepted"
        await asyncio.sleep(0.05)
    sent: dict[int, set[str]] = {}
    for n, ws in enumerate(sockets):
        sent[n] = {f"s{n}-{i}" for i in range(40)}
        for client_id in sorted(sent[n]):
            frame = {"type": "message.send", "chat_id": chat_id, "content": client_id, "client_id": client_id}
            await ws.send(json.dumps(frame))
    listening = [asyncio.create_task(_acks_and_close(ws)) for ws in sockets]
    await asyncio.sleep(0.1)  # the frames reach the workers (loopback), their storing has begun
    # when
    launcher.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    await asyncio.sleep(1)
    answers = await asyncio.gather(*(asyncio.to_thread(_answer_of, stream, rest) for stream, rest in slow))
    outcomes = await asyncio.gather(*listening)
    exit_code = await asyncio.to_thread(launcher.process.wait, SHUTDOWN_TIMEOUT + 5)
    stopped_in = time.monotonic() - signalled
    # then: every request answered
    assert [status for status, _ in answers] == [201] * len(slow), [a[:200] for _, a in answers]
    # and every send acked, then the socket closed with 1001
    for n, (acked, code, _) in enumerate(outcomes):
        assert set(acked) == sent[n], (len(acked), len(sent[n]), launcher.output())
        assert code == 1001, launcher.output()
    # (sends still in flight at the signal: without them the test would prove nothing)
    acked_after = sum(1 for acked, *_ in outcomes for at in acked.values() if at > signalled)
    assert acked_after > 0
    # and the launcher exited cleanly, within the bound
    assert exit_code == 0, launcher.output()
    assert stopped_in < SHUTDOWN_TIMEOUT + 3
    closed_after = [round(at - signalled, 2) for *_, at in outcomes]
    print(f"{acked_after} sends acked after the signal; stopped in {stopped_in:.1f} s; closed after {closed_after} s")


async def test_a_request_that_never_finishes_does_not_hold_the_shutdown_past_its_bound(migrated, tmp_path):
    # given: SHUTDOWN_TIMEOUT=2, a socket, and a request whose body never comes
    shutil.copy(migrated, tmp_path / "messenger.sqlite3")
    server = Launcher(tmp_path, extra_env={"SHUTDOWN_TIMEOUT": "2"})
    try:
        await asyncio.to_thread(server.wait_ready)
        token, chat_id = await asyncio.to_thread(_direct_chat, server)
        ws = await ws_connect(f"{server.ws}/ws/?token={token}", open_timeout=10)
        stalled, _ = await asyncio.to_thread(_slow_post, server, token, chat_id)
        deadline = time.monotonic() + 5
        while not server.worker_of(stalled.getsockname()[1]):
            assert time.monotonic() < deadline, "the request was not accepted"
            await asyncio.sleep(0.05)
        # when
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, code, _ = await _acks_and_close(ws)
        exit_code = await asyncio.to_thread(server.process.wait, 10)
        stopped_in = time.monotonic() - signalled
    finally:
        server.stop()
    # then: the socket still closed with 1001, and every worker gone within the bound (and its grace)
    assert code == 1001
    assert exit_code == 0, server.output()
    assert 2 <= stopped_in < 2 + 3, server.output()
    assert "and 1 connections cut off" in server.output()
    stalled.close()


async def test_the_workers_drain_and_exit_when_the_launcher_is_killed(migrated, tmp_path):
    # given: a socket on a worker
    shutil.copy(migrated, tmp_path / "messenger.sqlite3")
    server = Launcher(tmp_path)
    workers: list[psutil.Process] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        workers = server.workers()
        token, _ = await asyncio.to_thread(_direct_chat, server)
        ws = await ws_connect(f"{server.ws}/ws/?token={token}", open_timeout=10)
        # when: the launcher is killed outright (an OOM kill)
        server.process.kill()
        server.process.wait(5)
        _, code, _ = await _acks_and_close(ws)
        _, alive = await asyncio.to_thread(psutil.wait_procs, workers, SHUTDOWN_TIMEOUT + 3)
    finally:
        server.stop()
        for worker in workers:  # (only if the test failed: they are gone otherwise)
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
    # then: its workers (and the spare) shut down gracefully, none left serving unsupervised
    assert code == 1001
    assert alive == []
