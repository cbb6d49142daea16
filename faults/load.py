"""An experiment's frame: the suite's parts, the load (members and senders), one window, its row.

run_experiment opens a socket per user, sends for the window, calls the injection a fifth of the
way in (faults/experiments.py), drains, and accounts (faults/accounting.py).
"""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.load import Socket
from faults.accounting import Row, account
from faults.client import Member, Senders, wait_until
from faults.infra import Messenger, OwnMariaDB, OwnRedis
from faults.traffic import Answer, Traffic, http_request

RATE = 20.0  # messages/s, over REST and WebSocket, from every member of every chat in turn
FAULT_AT = 0.2  # the fault starts this far into the load window
HEALTHY_WITHIN = 20.0  # seconds after recovery by which /healthz must answer 200 again
DRAIN_SECONDS = 25.0  # after the window: retries finish, catch-ups settle
QUIET_AFTER = 5.0  # seconds into a fault after which the one-way group falls quiet


@dataclass
class Suite:
    redis: OwnRedis | None  # None: the cluster test's Redis, behind sentinels (cluster/run.py)
    database: OwnMariaDB
    server: Messenger
    seed: dict[str, Any]
    uploads: Path
    duration: float
    run_id: str


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def healthz(suite: Suite, timeout: float = 2.5) -> Answer:
    return await asyncio.to_thread(http_request, suite.server.port, "GET", "/healthz", None, None, "", timeout)


async def healthy_again(suite: Suite) -> bool:
    deadline = time.monotonic() + HEALTHY_WITHIN
    while time.monotonic() < deadline:
        answer = await healthz(suite)
        if answer.status == 200:
            return True
        await asyncio.sleep(0.5)
    return False


async def ensure_server(suite: Suite) -> str:
    """Start what a previous experiment left down (Redis, the database, the messenger); '' or why not."""
    suite.database.resume()
    if suite.redis is not None and suite.redis.server is None:
        log("  redis-server is not running: starting it")
        try:
            await asyncio.to_thread(suite.redis.start)
        except Exception as exc:
            return f"redis-server did not start: {exc}"
    if suite.server.launcher_alive() and (await healthz(suite, 5)).status == 200:
        return ""
    log("  the messenger is not healthy: restarting it")
    try:
        await asyncio.to_thread(suite.server.restart)
    except Exception as exc:
        return f"messenger did not start: {exc}"
    return ""


# The load ------------------------------------------------------------------------------------


class Load:
    def __init__(self, suite: Suite, key: str) -> None:
        self.suite = suite
        self.prefix = f"F{suite.run_id}{key}-"  # no space: a marker is the first word of the content
        self.traffic = Traffic(suite.server.port)
        chats_of: dict[int, list[int]] = {}
        for chat in suite.seed["chats"]:
            for user_id in chat["members"]:
                chats_of.setdefault(user_id, []).append(chat["id"])
        self.members = {
            user["id"]: Member(self.traffic, user["id"], user["token"], chats_of.get(user["id"], []), self.prefix)
            for user in suite.seed["users"]
        }
        self.chat_members = {chat["id"]: list(chat["members"]) for chat in suite.seed["chats"]}
        self.senders = Senders(self.traffic, self.members, self.prefix)
        # One group is one-way (its owner posts, the other three only read) and falls quiet
        # QUIET_AFTER seconds into the fault: what its readers missed reaches them only if the
        # server says so (a `resync`, or closing their socket), never by the version gap of a later
        # event or of their own send's ack. Without it, the next message in every chat would hide
        # every miss (also the events of the outage's last seconds, published late, would).
        self.quiet_chat = suite.seed["chats"][1]["id"]
        self.specs = [
            (user_id, chat_id, transport)
            for chat_id, members in self.chat_members.items()
            for user_id in (members[:1] if chat_id == self.quiet_chat else members)
            for transport in ("rest", "ws")
        ]
        random.Random(7).shuffle(self.specs)
        self.after_fault = [spec for spec in self.specs if spec[1] != self.quiet_chat]
        self.where: dict[int, int | None] = {}

    async def open(self) -> bool:
        for member in self.members.values():
            member.start()
        if not await wait_until(lambda: all(m.opened.is_set() for m in self.members.values()), 30):
            return False
        await self.spread()
        return True

    def placement(self) -> dict[int, int | None]:
        """user id → the pid of the worker holding their socket."""
        return {
            user_id: self.suite.server.worker_of(port) if (port := member.local_port()) else None
            for user_id, member in self.members.items()
        }

    async def spread(self) -> None:
        """Make sure a reader of the one-way group sits on another worker than its owner.

        The kernel hands connections to whichever worker accepts first, often the same one; events
        between sockets of one worker may never need Redis, and a fault in the layer between
        workers would go unseen. A reader is reconnected (bounded) until it lands elsewhere; the
        closes and reconnects this takes are forgotten before the load starts.
        """
        if len(self.suite.server.workers_now()) < 2:
            return
        owner, *readers = self.chat_members[self.quiet_chat]
        for attempt in range(20):
            where = self.placement()
            if any(where[reader] != where[owner] for reader in readers):
                break
            reader = self.members[readers[attempt % len(readers)]]
            if reader.socket is not None:
                old = reader.socket
                old.close()
                await wait_until(partial(reopened, reader, old), 10, 0.05)
        await wait_until(lambda: not any(m.busy() for m in self.members.values()), 10)
        for member in self.members.values():
            member.close_codes.clear()
            member.reconnects = 0
        self.where = self.placement()

    async def send_for(self, duration: float) -> None:
        count = int(RATE * duration)
        start = time.monotonic()
        for k in range(count):
            delay = start + k / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            windows = self.traffic.fault_windows
            quiet = bool(windows) and time.monotonic() > windows[0][0] + QUIET_AFTER
            specs = self.after_fault if quiet else self.specs
            user_id, chat_id, transport = specs[k % len(specs)]
            self.senders.send(user_id, chat_id, transport)

    async def drain(self) -> None:
        self.senders.retry_deadline = time.monotonic() + DRAIN_SECONDS / 2
        await wait_until(lambda: not self.senders.busy(), DRAIN_SECONDS)
        # Deliveries still on their way, and catch-ups the last events started.
        await asyncio.sleep(2)
        await wait_until(lambda: not any(m.busy() for m in self.members.values()), DRAIN_SECONDS / 2)

    def close_codes(self) -> Counter[int | None]:
        total: Counter[int | None] = Counter()
        for member in self.members.values():
            total.update(member.close_codes)
        return total

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.members.values()))
        for task in list(self.senders.tasks):
            task.cancel()
        self.traffic.close()


def reopened(member: Member, old: Socket) -> bool:
    return member.socket is not None and member.socket is not old


async def run_experiment(
    suite: Suite, key: str, name: str, inject: Callable[[Suite, Load, Row], Awaitable[None]]
) -> Row:
    row = Row(name)
    started = time.monotonic()
    log(f"{name}: starting")
    problem = await ensure_server(suite)
    if problem:
        row.error = problem
        return row
    load = Load(suite, key)
    try:
        if not await load.open():
            row.error = "not every member's socket opened within 30 s"
            return row
        sending = asyncio.ensure_future(load.send_for(suite.duration))
        await asyncio.sleep(suite.duration * FAULT_AT)
        try:
            await inject(suite, load, row)
        except Exception as exc:
            row.error = f"injection failed: {type(exc).__name__}: {exc}"
            log(f"  {row.error}")
        await sending
        await load.drain()
        stored = await stored_markers(suite, load.prefix, row)
        receipts = {user_id: member.receipts for user_id, member in load.members.items()}
        account(row, load.senders.sent, load.chat_members, stored, receipts)
        row.http = load.traffic.tally
        describe(row, load)
    finally:
        await load.stop()
    log(f"{name}: {'pass' if row.passed else 'FAIL'} in {time.monotonic() - started:.0f} s")
    return row


async def stored_markers(suite: Suite, prefix: str, row: Row) -> dict[str, int]:
    """The experiment's markers in the database (a few tries: the database was just broken on purpose)."""
    problem = ""
    for _ in range(5):
        try:
            return await asyncio.to_thread(suite.database.stored_markers, prefix)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(2)
    row.error = f"could not read the stored messages: {problem}"
    return {}


def describe(row: Row, load: Load) -> None:
    """The facts under the row: how sockets closed and caught up, what senders and HTTP saw."""
    members = load.members.values()
    by_worker = Counter(str(pid) for pid in load.where.values())
    if by_worker:  # (none behind the cluster test's proxy)
        row.notes.append(
            "sockets by worker at the start: " + ", ".join(f"{pid} x{n}" for pid, n in sorted(by_worker.items()))
        )
    codes = load.close_codes()
    if codes:
        row.notes.append("socket close codes: " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items(), key=str)))
    resyncs, gaps = sum(m.resyncs for m in members), sum(m.gaps for m in members)
    row.notes.append(f"resync frames {resyncs}, version gaps {gaps}, reconnects {sum(m.reconnects for m in members)}")
    ways = Counter(how for member in members for how in member.receipts.values())
    row.notes.append("receipts by way: " + ", ".join(f"{how} {n}" for how, n in sorted(ways.items())))
    quiet = [m for m, sent in load.senders.sent.items() if sent.chat_id == load.quiet_chat and sent.acked]
    row.notes.append(f"acked in the one-way group (quiet 5 s into the fault): {len(quiet)}")
    if load.senders.ws_errors:
        row.notes.append(f"WebSocket sends that fell back to REST: {dict(load.senders.ws_errors)}")
    failed = Counter(s.failed for s in load.senders.sent.values() if s.failed)
    if failed:
        row.notes.append(f"sends refused: {dict(failed)}")
    if row.sent > row.acked:
        row.notes.append(f"{row.sent - row.acked} sends never acked (retried with their client_id until the deadline)")
    tally = row.http
    if tally.no_answer:
        row.notes.append(f"{tally.no_answer} HTTP requests got no answer (refused, reset or timed out)")
    if tally.unavailable:
        row.checks["every 503 carries Retry-After"] = tally.unavailable_without_retry_after == 0
        row.notes.append(f"503s: {tally.unavailable} ({tally.unavailable_outside} outside the fault window)")
    statuses = {s: n for s, n in tally.statuses.items() if s >= 400}
    if statuses:
        row.notes.append(f"error statuses: {dict(sorted(statuses.items()))}")
