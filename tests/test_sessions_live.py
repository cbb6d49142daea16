"""Ending a user's sessions closes every socket of the user on every worker, live.

`python -m messenger.serve --workers 2` on a free loopback port (tests.test_shutdown's Launcher: a
SQLite database of its own, Redis between the workers; skipped without Redis). Sockets of the user
are opened until both workers hold some; a password change through REST closes each with 4401
within 2 s of its answer. Only the launcher this test starts is signalled, by pid.
"""

import asyncio
import os
import secrets
import shutil
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.test_shutdown import Launcher, _http, _pong, _redis_reachable, migrated  # noqa: F401  (a fixture)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not _redis_reachable(), reason="needs Redis between the workers (REDIS_URL unreachable)"),
]

SOCKETS_PER_WORKER = 3
CLOSE_WITHIN_SECONDS = 2


@pytest.fixture(params=["internals", "plain-asgi"])
def launcher(request, migrated, tmp_path) -> Iterator[Launcher]:  # noqa: F811
    shutil.copy(migrated, tmp_path / "messenger.sqlite3")
    extra = {
        "SERVER_INTERNALS": str(request.param == "internals").lower(),
        # A prefix of its own: no other test's groups (user.1, ...) on the shared Redis.
        "CHANNEL_LAYER_PREFIX": f"wtsessions{os.getpid()}",
    }
    server = Launcher(tmp_path, extra_env=extra)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


async def _sockets_on_both_workers(server: Launcher, token: str) -> dict[int, list[ClientConnection]]:
    by_worker: dict[int, list[ClientConnection]] = {}
    for _ in range(60):
        ws = await ws_connect(f"{server.ws}/ws/?token={token}", open_timeout=10)
        pid = server.worker_of(ws.local_address[1])
        held = by_worker.setdefault(pid or 0, [])
        if pid is not None and len(held) < SOCKETS_PER_WORKER:
            held.append(ws)
        else:
            await ws.close()
        if sum(1 for pid, held in by_worker.items() if pid and len(held) == SOCKETS_PER_WORKER) == 2:
            break
    by_worker.pop(0, None)
    assert len(by_worker) == 2 and all(len(held) == SOCKETS_PER_WORKER for held in by_worker.values()), by_worker
    return by_worker


async def _close_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_a_password_change_closes_every_socket_on_every_worker_with_4401_within_2_s(launcher):
    # given: alice's sockets, some on each worker, and bob's
    password = secrets.token_urlsafe(16)
    status, alice = _http(
        "POST",
        f"{launcher.http}/api/auth/register",
        body={"username": "alice", "email": "alice@example.com", "password": password},
    )
    assert status == 201, alice
    status, bob = _http(
        "POST",
        f"{launcher.http}/api/auth/register",
        body={"username": "bob", "email": "bob@example.com", "password": secrets.token_urlsafe(16)},
    )
    assert status == 201, bob
    by_worker = await _sockets_on_both_workers(launcher, alice["access"])
    sockets = [ws for held in by_worker.values() for ws in held]
    bystander = await ws_connect(f"{launcher.ws}/ws/?token={bob['access']}", open_timeout=10)
    for ws in sockets:
        assert await _pong(ws)
    # when
    sent = time.monotonic()
    status, answer = await asyncio.to_thread(
        _http,
        "POST",
        f"{launcher.http}/api/auth/password",
        alice["access"],
        {"old_password": password, "new_password": secrets.token_urlsafe(16)},
    )
    answered = time.monotonic()
    # then
    assert status == 200, answer
    async with asyncio.timeout(CLOSE_WITHIN_SECONDS):
        codes = await asyncio.gather(*(_close_code(ws) for ws in sockets))
    now = time.monotonic()
    print(
        f"{len(sockets)} sockets on {len(by_worker)} workers: all closed {now - sent:.3f} s after the request "
        f"was sent, {now - answered:.3f} s after its answer ({answered - sent:.3f} s)"
    )
    assert codes == [4401] * len(sockets), launcher.output()
    assert await _pong(bystander)
    # and the new session connects
    async with ws_connect(f"{launcher.ws}/ws/?token={answer['access']}", open_timeout=10) as fresh:
        assert await _pong(fresh)
    await bystander.close()
