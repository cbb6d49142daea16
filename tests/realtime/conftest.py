"""Sockets for the real-time tests: WebsocketCommunicator on the full ASGI application.

Each test gets its own event loop (pytest-asyncio) and so its own hub; `connect` stops the
hub and disconnects every socket the test opened at the end, so nothing leaks between tests.
"""

import asyncio
import contextlib
import json
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from chats.realtime.hub import stop_hub
from messenger.asgi import application

TIMEOUT = 3
# How long the end of a test may take to disconnect its sockets and stop its hub.
TEARDOWN_SECONDS = 30


async def bounded(step: str, work: Awaitable[Any]) -> None:
    """Run a teardown step for at most TEARDOWN_SECONDS, never waiting on it past that.

    Twice, on a CI machine under heavy load, the end of a test in test_resync.py never returned
    (the hub's probes stopped coming back and something in the disconnect or the hub's stop
    waited forever: 90 minutes, then 5 under pytest-timeout). asyncio.wait_for would wait for the
    cancelled step to end too; asyncio.wait does not. The tasks still pending are printed, so
    the next time says where it hung. (The cause: Python 3.11's asyncio.wait_for lost the stop's
    cancel of the layer watch when it came as the watch was woken or a probe came back; the watch
    went on probing a router that was gone. tests/realtime/test_hub_stop.py forces it.)"""
    task = asyncio.ensure_future(work)
    _, pending = await asyncio.wait({task}, timeout=TEARDOWN_SECONDS)
    if not pending:
        # A step may fail, also with CancelledError (a communicator whose application was cancelled
        # by a receive timeout re-raises it): a BaseException out of a fixture's end would skip the
        # finalizers after it (the database flush, settings restored) and fail every later test.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            task.result()
        return
    task.cancel()
    print(f"teardown: {step} did not end within {TEARDOWN_SECONDS} s; tasks pending:", file=sys.stderr)
    for other in asyncio.all_tasks():
        other.print_stack(limit=8, file=sys.stderr)
    warnings.warn(f"teardown: {step} did not end within {TEARDOWN_SECONDS} s", stacklevel=1)


def access_token(user: User, *, expired: bool = False) -> str:
    token = AccessToken.for_user(user)
    if expired:
        token.set_exp(lifetime=-timedelta(minutes=1))
    return str(token)


class Socket:
    """A client socket: JSON frames in and out, with the close code when the server closes."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.accepted = False
        self.close_code: int | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_type(self, frame_type: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of this type, skipping others (presence, chat.read...)."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == frame_type:
                return frame

    async def received_types(self) -> list[str]:
        """The types of every frame already on its way, without waiting for more."""
        types = []
        while not await self.communicator.receive_nothing(timeout=0.1):
            output = await self.communicator.receive_output(timeout=TIMEOUT)
            if output["type"] == "websocket.send":
                types.append(json.loads(output["text"])["type"])
            elif output["type"] == "websocket.close":
                types.append("<closed>")
        return types

    async def closed_with(self) -> int | None:
        """Wait for the server to close the socket (skipping frames); its close code."""
        while True:
            output = await self.communicator.receive_output(timeout=TIMEOUT)
            if output["type"] == "websocket.close":
                return output.get("code")

    async def is_open(self) -> bool:
        await self.send({"type": "ping"})
        return (await self.receive_type("pong")) == {"type": "pong"}


Connect = Callable[..., Awaitable[Socket]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """connect(user, path="/ws/", token=..., origin=...) -> Socket (accepted or not)."""
    sockets: list[Socket] = []

    async def open_socket(
        user: User | None = None,
        path: str = "/ws/",
        *,
        token: str | None = None,
        origin: str | None = None,
    ) -> Socket:
        if token is None and user is not None:
            token = access_token(user)
        url = path if token is None else f"{path}?token={token}"
        headers = [(b"origin", origin.encode())] if origin is not None else []
        communicator = WebsocketCommunicator(application, url, headers=headers)
        socket = Socket(communicator)
        sockets.append(socket)
        accepted, code = await communicator.connect(timeout=TIMEOUT)
        socket.accepted = accepted
        if not accepted:
            socket.close_code = code
        return socket

    yield open_socket
    for socket in sockets:
        await bounded("a socket's disconnect", socket.communicator.disconnect(timeout=TIMEOUT))
    await bounded("the hub's stop", stop_hub())


@pytest.fixture
def rest(make_client):
    """rest(user, method, path, data=None) from async tests: the REST API through its own thread."""

    def call_sync(user: User, method: str, path: str, data: dict[str, Any] | None) -> Any:
        return getattr(make_client(user), method)(path, data, format="json")

    async def call(user: User, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        return await sync_to_async(call_sync)(user, method, path, data)

    return call
