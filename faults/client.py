"""The suite's clients: members holding a socket each, and senders, behaving as the shipped client does.

client/renderer/js/socket.js is the model:
- one socket to /ws/ per user; on close, reconnect with exponential back-off and jitter, and on
  every (re)connect catch up each chat whose version (in GET /api/chats) moved past the known one;
- an event whose version skips ahead of the known one (a gap) triggers GET ?since=<version>;
- a `resync` frame {chat_ids?} (API v1.1) triggers the same catch-up for those chats (all without);
- a WebSocket send without a message.ack within 8 s, an `error` frame for it, or a send while the
  socket is closed goes over REST with the same client_id; a REST send answered 5xx, 429 or not at
  all is retried with the same client_id (the contract makes a repeat answer 200 and create nothing).

Differences, to keep every loop bounded: back-off is capped at 4 s (the client's 30 s would
outlast an experiment), retries stop at a deadline, and a failed catch-up is retried a few times
(the client retries its connect-time sync while connected, a gap's catch-up not at all).

Sockets are bench.load's lean client (bench.load.open_socket); HTTP goes through faults.traffic.
"""

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.load import Socket, open_socket
from bench.procs import LOOPBACK
from faults.accounting import LIVE, Sent
from faults.traffic import TLS_PORTS, Traffic

ACK_TIMEOUT = 8.0  # the shipped client's ACK_TIMEOUT_MS
BACKOFF_BASE = 0.5
BACKOFF_MAX = 4.0
CATCH_UP_ATTEMPTS = 6
CATCH_UP_PAGES = 100
RECONNECTS_MAX = 200


def backoff(attempt: int) -> float:
    """The shipped client's backoffDelay: exponential, capped, jitter of up to half."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)
    return ceiling / 2 + random.random() * ceiling / 2


class Member:
    """One user's client: a socket to /ws/, what reached it and how, and its sends' pending acks."""

    def __init__(self, traffic: Traffic, user_id: int, token: str, chat_ids: list[int], marker_prefix: str) -> None:
        self.traffic = traffic
        self.user_id = user_id
        self.token = token
        self.chat_ids = chat_ids
        self.prefix = marker_prefix
        self.known: dict[int, int] = {}
        self.receipts: dict[str, str] = {}  # marker → LIVE, or the reason of the catch-up that brought it
        self.catch_ups: dict[int, asyncio.Task[None]] = {}
        self.again: set[int] = set()
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.socket: Socket | None = None
        self.close_codes: Counter[int | None] = Counter()
        self.resyncs = 0
        self.gaps = 0
        self.reconnects = 0
        self.connect_failures = 0
        self.stopping = False
        self.opened = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.runner: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "wss" if self.traffic.port in TLS_PORTS else "ws"
        return f"{scheme}://{LOOPBACK}:{self.traffic.port}/ws/?token={self.token}"

    @property
    def origin(self) -> str:
        scheme = "https" if self.traffic.port in TLS_PORTS else "http"
        return f"{scheme}://{LOOPBACK}:{self.traffic.port}"

    def start(self) -> None:
        self.runner = asyncio.ensure_future(self.run())

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run(self) -> None:
        attempt = 0
        first = True
        for _ in range(RECONNECTS_MAX):
            if self.stopping:
                return
            try:
                tls = TLS_PORTS.get(self.traffic.port)
                sock = await open_socket(self.url, self.origin, self.on_text, timeout=5, tls=tls)
            except (TimeoutError, OSError, Exception):
                self.connect_failures += 1
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            self.socket = sock
            attempt = 0
            if not first:
                self.reconnects += 1
            self.spawn(self.sync_all(baseline=first))
            first = False
            code = await sock.closed
            self.socket = None
            self.close_codes[code] += 1
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"socket closed ({code})"))
            if self.stopping:
                return
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    # Incoming frames -----------------------------------------------------------------------

    def on_text(self, data: bytes) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            return
        kind = frame.get("type")
        if kind in ("message.created", "message.updated"):
            message = frame.get("message") or {}
            self.receive(message.get("content") or "", LIVE)
            self.apply_version(frame.get("chat_id") or message.get("chat_id"), frame.get("version"))
        elif kind == "message.deleted":
            self.apply_version(frame.get("chat_id"), frame.get("version"))
        elif kind == "message.ack":
            future = self.pending.get(frame.get("client_id") or "")
            message = frame.get("message")
            if message:
                self.apply_version(message.get("chat_id"), message.get("version"))
            if future is not None and not future.done():
                future.set_result(frame)
        elif kind == "error":
            future = self.pending.get(frame.get("client_id") or "")
            if future is not None and not future.done():
                future.set_result(frame)
        elif kind == "resync":
            self.resyncs += 1
            chat_ids = frame.get("chat_ids") or self.chat_ids
            for chat_id in chat_ids:
                if chat_id in self.known:
                    self.catch_up(int(chat_id), "resync")

    def receive(self, content: str, how: str) -> None:
        marker = content.split(" ", 1)[0]
        if marker.startswith(self.prefix) and marker not in self.receipts:
            self.receipts[marker] = how

    def apply_version(self, chat_id: Any, version: Any) -> None:
        """The shipped client's applyVersioned: the next version advances, one further ahead is a gap."""
        if not isinstance(chat_id, int) or not isinstance(version, int) or chat_id not in self.known:
            return
        known = self.known[chat_id]
        if version <= known:
            return
        if version == known + 1 and chat_id not in self.catch_ups:
            self.known[chat_id] = version
        else:
            if chat_id not in self.catch_ups:
                self.gaps += 1
            self.catch_up(chat_id, "gap")

    # Catch-up ------------------------------------------------------------------------------

    def catch_up(self, chat_id: int, reason: str) -> None:
        if chat_id in self.catch_ups:
            self.again.add(chat_id)
            return
        self.catch_ups[chat_id] = self.spawn(self._catch_up(chat_id, reason))

    async def _catch_up(self, chat_id: int, reason: str) -> None:
        try:
            for attempt in range(CATCH_UP_ATTEMPTS):
                if await self._fetch_since(chat_id, reason):
                    if chat_id in self.again:
                        self.again.discard(chat_id)
                        continue
                    return
                await asyncio.sleep(backoff(attempt + 2))
        finally:
            self.catch_ups.pop(chat_id, None)

    async def _fetch_since(self, chat_id: int, reason: str) -> bool:
        for _ in range(CATCH_UP_PAGES):
            since = self.known.get(chat_id, 0)
            answer = await self.traffic.request(
                "GET", f"/api/chats/{chat_id}/messages?since={since}&limit=100", self.token
            )
            page = answer.json() if answer.status == 200 else None
            if not isinstance(page, dict):
                return False
            results = page.get("results") or []
            for message in results:
                self.receive(message.get("content") or "", reason)
                version = message.get("version")
                if isinstance(version, int) and version > self.known.get(chat_id, 0):
                    self.known[chat_id] = version
            if not (page.get("has_more") and results):
                return True
        return True

    async def sync_all(self, *, baseline: bool) -> None:
        """After a connect: the chat list; chats whose version moved past ours are caught up."""
        for attempt in range(CATCH_UP_ATTEMPTS):
            answer = await self.traffic.request("GET", "/api/chats", self.token)
            page = answer.json() if answer.status == 200 else None
            if isinstance(page, dict):
                for chat in page.get("results") or []:
                    chat_id, version = chat.get("id"), chat.get("version") or 0
                    if baseline or chat_id not in self.known:
                        self.known[chat_id] = version
                    elif version > self.known[chat_id]:
                        self.catch_up(chat_id, "reconnect")
                if baseline:
                    self.opened.set()
                return
            if self.socket is None:
                return
            await asyncio.sleep(backoff(attempt + 2))

    def local_port(self) -> int | None:
        """The client side's port of the open socket (to tell which server worker holds it)."""
        if self.socket is None or self.socket.transport is None:
            return None
        name = self.socket.transport.get_extra_info("sockname")
        return int(name[1]) if name else None

    def busy(self) -> bool:
        return bool(self.catch_ups)

    async def stop(self) -> None:
        self.stopping = True
        if self.socket is not None:
            self.socket.close()
        if self.runner is not None:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self.runner, 5)
        for task in list(self.tasks):
            task.cancel()


class Senders:
    """Sends over REST and over the sender's socket, each with a unique marker that is its client_id."""

    def __init__(self, traffic: Traffic, members: dict[int, Member], marker_prefix: str) -> None:
        self.traffic = traffic
        self.members = members
        self.prefix = marker_prefix
        self.sent: dict[str, Sent] = {}
        self.ws_errors: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.retry_deadline = float("inf")
        self.seq = 0

    def marker(self) -> str:
        self.seq += 1
        return f"{self.prefix}{self.seq}"

    def content(self, marker: str) -> str:
        return f"{marker} fault-suite message"

    def send(self, sender_id: int, chat_id: int, transport: str) -> None:
        task = asyncio.ensure_future(self._send(sender_id, chat_id, transport))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, sender_id: int, chat_id: int, transport: str) -> None:
        marker = self.marker()
        record = self.sent[marker] = Sent(chat_id=chat_id, sender_id=sender_id, transport=transport)
        member = self.members[sender_id]
        if transport == "ws" and member.socket is not None and member.socket.is_open:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            member.pending[marker] = future
            frame = {"type": "message.send", "chat_id": chat_id, "content": self.content(marker), "client_id": marker}
            try:
                member.socket.send_text(json.dumps(frame))
                answer = await asyncio.wait_for(future, ACK_TIMEOUT)
                if answer.get("type") == "message.ack" and answer.get("message"):
                    record.acked, record.acked_via = True, "ws"
                    return
                self.ws_errors[str(answer.get("code"))] += 1
                if answer.get("code") not in (None, "unavailable", "rate_limited"):
                    record.failed = f"ws error {answer.get('code')}"
                    return
            except Exception as exc:  # no ack in time, the socket closed, or it was closing (InvalidState)
                self.ws_errors[type(exc).__name__] += 1
            finally:
                member.pending.pop(marker, None)
        await self._post(record, marker, member)

    async def _post(self, record: Sent, marker: str, member: Member) -> None:
        body = {"content": self.content(marker), "client_id": marker}
        for attempt in range(60):
            answer = await self.traffic.request("POST", f"/api/chats/{record.chat_id}/messages", member.token, body)
            if answer.status in (200, 201):
                record.acked, record.acked_via = True, "rest"
                message = answer.json() or {}
                member.apply_version(message.get("chat_id"), message.get("version"))
                return
            if answer.status is not None and 400 <= answer.status < 500 and answer.status not in (401, 429):
                record.failed = f"REST {answer.status}"
                return
            if time.monotonic() > self.retry_deadline:
                return
            await asyncio.sleep(backoff(attempt))

    def busy(self) -> bool:
        return bool(self.tasks)


async def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(step)
    return condition()
