"""The experiments: a fresh load window each, a fault injected mid-load, recovery, drain, verification.

Each injection is a coroutine that breaks one part, waits, puts it back and returns once it is
back; the load keeps running on the same event loop meanwhile (blocking steps go to a thread).
What an injection finds out beyond the message accounting goes into the row's `checks` (targets)
and `notes` (facts).
"""

import asyncio
import contextlib
import io
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from faults.accounting import Row, Sent, account
from faults.client import Answer, Member, Senders, Traffic, http_request, wait_until
from faults.infra import Messenger, OwnMariaDB, OwnRedis, TinyDisk, kill_pids

RATE = 20.0  # messages/s, over REST and WebSocket, from every member of every chat in turn
FAULT_AT = 0.2  # the fault starts this far into the load window
OUTAGE = 10.0  # seconds Redis stays dead, the database paused
HEALTHY_WITHIN = 20.0  # seconds after recovery by which /healthz must answer 200 again
DRAIN_SECONDS = 25.0  # after the window: retries finish, catch-ups settle
BURST = 250


@dataclass
class Suite:
    redis: OwnRedis
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


async def healthy_again(suite: Suite, traffic: Traffic | None = None) -> bool:
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
    if suite.redis.server is None:
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
        self.specs = [
            (user_id, chat_id, transport)
            for chat_id, members in self.chat_members.items()
            for user_id in members
            for transport in ("rest", "ws")
        ]
        random.Random(7).shuffle(self.specs)
        # One direct chat goes quiet once the fault is over: what it missed meanwhile reaches its
        # members only if the server says so (a `resync`, or closing the socket), never by a later
        # event's version gap. Without it, the next message in every chat would hide every miss.
        self.quiet_chat = suite.seed["chats"][-1]["id"]
        self.after_fault = [spec for spec in self.specs if spec[1] != self.quiet_chat]

    async def open(self) -> bool:
        for member in self.members.values():
            member.start()
        return await wait_until(lambda: all(m.opened.is_set() for m in self.members.values()), 30)

    async def send_for(self, duration: float) -> None:
        count = int(RATE * duration)
        start = time.monotonic()
        for k in range(count):
            delay = start + k / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            specs = self.after_fault if self.traffic.fault_over() else self.specs
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
        stored: dict[str, int] = {}
        for _ in range(5):
            try:
                stored = await asyncio.to_thread(suite.database.stored_markers, load.prefix)
                break
            except Exception as exc:
                row.notes.append(f"database query failed: {exc}")
                await asyncio.sleep(2)
        receipts = {user_id: member.receipts for user_id, member in load.members.items()}
        account(row, load.senders.sent, load.chat_members, stored, receipts)
        row.http = load.traffic.tally
        codes = load.close_codes()
        if codes:
            row.notes.append("socket close codes: " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items(), key=str)))
        resyncs = sum(m.resyncs for m in load.members.values())
        gaps = sum(m.gaps for m in load.members.values())
        reconnects = sum(m.reconnects for m in load.members.values())
        row.notes.append(f"resync frames {resyncs}, version gaps {gaps}, reconnects {reconnects}")
        ways = Counter(how for member in load.members.values() for how in member.receipts.values())
        row.notes.append("receipts by way: " + ", ".join(f"{how} {n}" for how, n in sorted(ways.items())))
        quiet = [m for m, sent in load.senders.sent.items() if sent.chat_id == load.quiet_chat and sent.acked]
        row.notes.append(f"acked in the chat that falls quiet after the fault: {len(quiet)}")
        if load.senders.ws_errors:
            row.notes.append(f"WebSocket sends that fell back to REST: {dict(load.senders.ws_errors)}")
        failed = Counter(s.failed for s in load.senders.sent.values() if s.failed)
        if failed:
            row.notes.append(f"sends refused: {dict(failed)}")
        unacked = row.sent - row.acked
        if unacked:
            row.notes.append(f"{unacked} sends never acked (retried with their client_id until the deadline)")
        if row.http.no_answer:
            row.notes.append(f"{row.http.no_answer} HTTP requests got no answer (refused, reset or timed out)")
        if row.http.unavailable_without_retry_after:
            row.notes.append(f"{row.http.unavailable_without_retry_after} 503s without Retry-After")
        if row.http.unavailable:
            row.notes.append(f"503s: {row.http.unavailable} ({row.http.unavailable_outside} outside the fault window)")
        statuses = {s: n for s, n in row.http.statuses.items() if s >= 400}
        if statuses:
            row.notes.append(f"error statuses: {dict(sorted(statuses.items()))}")
    finally:
        await load.stop()
    log(f"{name}: {'pass' if row.passed else 'FAIL'} in {time.monotonic() - started:.0f} s")
    return row


# The injections ------------------------------------------------------------------------------


async def redis_killed(suite: Suite, load: Load, row: Row) -> None:
    load.traffic.fault_started()
    log(f"  SIGKILL redis-server (pid {suite.redis.server.pid if suite.redis.server else '?'})")
    suite.redis.kill()
    await asyncio.sleep(2)
    answer = await healthz(suite)
    row.checks["/healthz 503 within 2 s while Redis is down"] = answer.status == 503
    row.notes.append(f"/healthz while Redis was down: {answer.status} {answer.body[:120]!r}")
    await asyncio.sleep(OUTAGE - 2)
    await asyncio.to_thread(suite.redis.start)
    log("  redis-server started again on the same port")
    load.traffic.fault_ended()
    row.checks["healthy again within 20 s"] = await healthy_again(suite)


async def worker_killed(suite: Suite, load: Load, row: Row) -> None:
    workers = suite.server.children()
    if not workers:
        raise RuntimeError("the launcher has no worker processes")
    victim = workers[0]
    load.traffic.fault_started()
    log(f"  SIGKILL worker {victim} of launcher {suite.server.pid}")
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(OUTAGE)
    alive = suite.server.launcher_alive()
    row.checks["the launcher keeps serving"] = alive
    back = len(suite.server.children()) if alive else 0
    row.checks["the dead worker replaced within 10 s"] = back >= len(workers)
    if not alive:
        code = suite.server.wait_exit(1)
        row.notes.append(f"the launcher exited (code {code}) when one worker died; the suite restarted it")
        await asyncio.to_thread(suite.server.restart)
    load.traffic.fault_ended()
    row.checks["healthy again within 20 s"] = await healthy_again(suite)


async def database_paused(suite: Suite, load: Load, row: Row) -> None:
    load.traffic.fault_started()
    log(f"  SIGSTOP mariadbd (pid {suite.database.pid})")
    suite.database.pause()
    try:
        await asyncio.sleep(2)
        before = time.monotonic()
        answer = await healthz(suite, timeout=5)
        took = time.monotonic() - before
        row.checks["/healthz 503 within 2 s while the database hangs"] = answer.status == 503 and took <= 2.0
        row.notes.append(f"/healthz while the database hung: {answer.status or answer.error} in {took:.1f} s")
        await asyncio.sleep(max(0.0, OUTAGE - 2 - took))
    finally:
        suite.database.resume()
    log("  SIGCONT mariadbd")
    load.traffic.fault_ended()
    row.checks["healthy again within 20 s"] = await healthy_again(suite)


async def launcher_terminated(suite: Suite, load: Load, row: Row) -> None:
    member = next(iter(load.members.values()))
    chat_id = member.chat_ids[0]
    # A few requests in flight at the signal: history pages and chat lists, all at once.
    extra = [
        asyncio.ensure_future(
            load.traffic.request(
                "GET", f"/api/chats/{chat_id}/messages?limit=50" if i % 2 else "/api/chats", member.token
            )
        )
        for i in range(20)
    ]
    for sender in load.members.values():  # and a socket send from every user
        load.senders.send(sender.user_id, sender.chat_ids[0], "ws")
    await asyncio.sleep(0.05)  # written to the server, and still being answered (a page takes longer)
    in_flight = load.traffic.in_flight_ids()
    awaiting_ack = [marker for member in load.members.values() for marker in member.pending]
    launcher = suite.server.pid
    pids = suite.server.children()
    load.traffic.fault_started()
    log(f"  SIGTERM launcher {launcher} ({len(in_flight)} requests in flight)")
    os.kill(launcher, signal.SIGTERM)
    sent_at = time.monotonic()
    code = await asyncio.to_thread(suite.server.wait_exit, 20)
    took = time.monotonic() - sent_at
    row.checks["the launcher exits within 20 s"] = code is not None
    row.notes.append(f"launcher exit code {code} after {took:.1f} s")
    await asyncio.gather(*extra, return_exceptions=True)
    answered = [i for i in in_flight if (a := load.traffic.answered.get(i)) is not None and a.status is not None]
    row.checks["requests in flight at SIGTERM answered"] = len(answered) == len(in_flight)
    row.notes.append(f"requests in flight at SIGTERM: {len(in_flight)}, answered {len(answered)}")
    acked_on_socket = [m for m in awaiting_ack if load.senders.sent[m].acked_via == "ws"]
    row.checks["socket sends in flight at SIGTERM acked on their socket"] = len(acked_on_socket) == len(awaiting_ack)
    row.notes.append(f"socket sends awaiting their ack at SIGTERM: {len(awaiting_ack)}, acked {len(acked_on_socket)}")
    codes = load.close_codes()
    row.checks["sockets closed with 1001"] = bool(codes) and set(codes) == {1001}
    left = [pid for pid in pids if psutil.pid_exists(pid)]
    if left:
        row.notes.append(f"{len(left)} workers still running after the launcher: stopped by pid")
        kill_pids(left)
    await asyncio.to_thread(suite.server.restart)
    log("  messenger started again")
    load.traffic.fault_ended()


def png(seed: int, side: int = 200) -> bytes:
    """A PNG of random pixels (does not compress: about 3 bytes a pixel)."""
    from PIL import Image

    noise = random.Random(seed).randbytes(side * side * 3)
    image = Image.frombytes("RGB", (side, side), noise)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def upload(load: Load, token: str, data: bytes, name: str) -> Answer:
    boundary = "faultsuiteboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return await load.traffic.raw("POST", "/api/attachments", token, body, f"multipart/form-data; boundary={boundary}")


async def disk_full(suite: Suite, load: Load, row: Row) -> None:
    disk = TinyDisk(suite.uploads)
    token = next(iter(load.members.values())).token
    stamp = int(time.time())
    stored_bytes, new_bytes, later_bytes = png(stamp), png(stamp + 1), png(stamp + 2)
    await asyncio.to_thread(disk.mount)
    try:
        first = await upload(load, token, stored_bytes, "stored.png")
        if first.status != 201:
            raise RuntimeError(f"the first upload on the tiny disk answered {first.status}: {first.body[:200]!r}")
        load.traffic.fault_started()
        written = await asyncio.to_thread(disk.fill)
        log(f"  upload disk full ({written} filler bytes on a {TinyDisk.SIZE} tmpfs)")
        refused = await upload(load, token, new_bytes, "new.png")
        detail = refused.json()
        clear = (
            refused.status is not None
            and 400 <= refused.status < 600
            and refused.status != 500
            and isinstance(detail, dict)
        )
        row.checks["a new upload on a full disk: a clear JSON error"] = clear
        row.notes.append(f"new upload on the full disk: {refused.status or refused.error} {refused.body[:160]!r}")
        again = await upload(load, token, stored_bytes, "stored-again.png")
        row.checks["re-upload of stored bytes works"] = again.status in (200, 201)
        row.notes.append(f"re-upload of stored bytes: {again.status or again.error}")
        health = await healthz(suite)
        report = health.json()
        reported = health.status == 503 or (isinstance(report, dict) and any(v != "ok" for v in report.values()))
        row.checks["/healthz reports the full disk"] = reported
        row.notes.append(f"/healthz on a full disk: {health.status} {health.body[:160]!r}")
        await asyncio.to_thread(disk.free)
        load.traffic.fault_ended()
        later = await upload(load, token, later_bytes, "later.png")
        row.checks["uploads work again once space is freed"] = later.status == 201
    finally:
        await asyncio.to_thread(disk.free)
        await asyncio.to_thread(disk.unmount)


async def burst(suite: Suite, load: Load, row: Row) -> None:
    """250 requests at once (chat lists, history pages, a few sends) against a healthy server."""
    members = list(load.members.values())
    barrier = threading.Barrier(BURST, timeout=30)
    jobs: list[tuple[str, str, str, bytes | None, str]] = []
    for i in range(BURST):
        member = members[i % len(members)]
        chat_id = member.chat_ids[i % len(member.chat_ids)]
        if i % 5 == 4:
            marker = load.senders.marker()
            load.senders.sent[marker] = Sent(chat_id=chat_id, sender_id=member.user_id, transport="rest")
            body = json.dumps({"content": load.senders.content(marker), "client_id": marker}).encode()
            jobs.append(("POST", f"/api/chats/{chat_id}/messages", member.token, body, marker))
        elif i % 2:
            jobs.append(("GET", f"/api/chats/{chat_id}/messages?limit=50", member.token, None, ""))
        else:
            jobs.append(("GET", "/api/chats", member.token, None, ""))

    def one(job: tuple[str, str, str, bytes | None, str]) -> Answer:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        method, path, token, body, _ = job
        return http_request(suite.server.port, method, path, token, body)

    load.traffic.fault_started()
    log(f"  {BURST} concurrent requests")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        answers = await asyncio.get_running_loop().run_in_executor(None, lambda: list(pool.map(one, jobs)))
    took = time.monotonic() - started
    load.traffic.fault_ended()
    for job, answer in zip(jobs, answers, strict=True):
        load.traffic.record(answer)
        if job[4] and answer.status in (200, 201):
            load.senders.sent[job[4]].acked = True
            load.senders.sent[job[4]].acked_via = "rest"
    statuses = Counter(a.status or a.error for a in answers)
    latencies = sorted(a.finished - a.started for a in answers)
    row.notes.append(
        f"burst: {dict(statuses)} in {took:.1f} s; p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    row.checks["burst: every request answered"] = all(a.status is not None for a in answers)
    row.checks["burst: no 500"] = not any(a.status is not None and a.status >= 500 and a.status != 503 for a in answers)


EXPERIMENTS: dict[str, tuple[str, Callable[[Suite, Load, Row], Awaitable[None]]]] = {
    "redis": ("Redis killed 10 s", redis_killed),
    "worker": ("a worker SIGKILLed", worker_killed),
    "database": ("database paused 10 s", database_paused),
    "sigterm": ("SIGTERM to the launcher", launcher_terminated),
    "disk": ("upload disk full", disk_full),
    "burst": (f"{BURST} concurrent requests", burst),
}
