"""The injections: each breaks one part mid-load, waits, puts it back and returns once it is back.

The load keeps running on the same event loop meanwhile (blocking steps go to a thread). What an
injection finds out beyond the message accounting goes into the row's `checks` (targets) and
`notes` (facts).
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

import psutil

from faults.accounting import Row, Sent
from faults.infra import TinyDisk, kill_pids
from faults.load import Load, Suite, healthy_again, healthz, log
from faults.traffic import Answer, http_request

OUTAGE = 10.0  # seconds Redis stays dead, the database paused
BURST = 250


# The injections ------------------------------------------------------------------------------


async def redis_killed(suite: Suite, load: Load, row: Row) -> None:
    assert suite.redis is not None
    load.traffic.fault_started()
    log(f"  SIGKILL redis-server (pid {suite.redis.server.pid if suite.redis.server else '?'})")
    suite.redis.kill()
    await asyncio.sleep(2)
    before = time.monotonic()
    answer = await healthz(suite, timeout=5)
    took = time.monotonic() - before
    row.checks["/healthz 503 within 2 s while Redis is down"] = answer.status == 503 and took <= 2.0
    row.notes.append(
        f"/healthz while Redis was down: {answer.status or answer.error} in {took:.1f} s {answer.body[:100]!r}"
    )
    await asyncio.sleep(max(0.0, OUTAGE - 2 - took))
    await asyncio.to_thread(suite.redis.start)
    log("  redis-server started again on the same port")
    load.traffic.fault_ended()
    row.checks["healthy again within 20 s"] = await healthy_again(suite)


async def worker_killed(suite: Suite, load: Load, row: Row) -> None:
    workers = suite.server.workers_now()
    if not workers:
        raise RuntimeError("the launcher has no worker processes")
    # The worker holding most of the load's sockets: their reconnect and catch-up are what is measured.
    held = Counter(pid for pid in load.placement().values() if pid in workers)
    victim = held.most_common(1)[0][0] if held else workers[0]
    load.traffic.fault_started()
    log(f"  SIGKILL worker {victim} of launcher {suite.server.pid} ({held.get(victim, 0)} of the load's sockets)")
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(OUTAGE)
    back = len(suite.server.workers_now())
    row.checks["the dead worker replaced within 10 s"] = suite.server.launcher_alive() and back >= len(workers)
    serving = suite.server.launcher_alive() and await healthy_again(suite) and suite.server.launcher_alive()
    row.checks["the launcher keeps serving (/healthz 200 within 30 s of the kill)"] = serving
    if not serving:
        code = await asyncio.to_thread(suite.server.wait_exit, 1)
        state = f"exited (code {code})" if code is not None else f"still running with {back} workers, not healthy"
        row.notes.append(f"the launcher {state} after one worker died; the suite restarted it")
        await asyncio.to_thread(suite.server.restart)
    load.traffic.fault_ended()


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
        await asyncio.to_thread(kill_pids, left)
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


def multipart_png(data: bytes, name: str, boundary: str = "faultsuiteboundary") -> tuple[bytes, str]:
    """A POST /api/attachments body of one PNG `file`, and its Content-Type."""
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def upload(load: Load, token: str, data: bytes, name: str) -> Answer:
    body, content_type = multipart_png(data, name)
    return await load.traffic.raw("POST", "/api/attachments", token, body, content_type)


async def disk_full(suite: Suite, load: Load, row: Row) -> None:
    disk = TinyDisk(suite.uploads)
    token = next(iter(load.members.values())).token
    stamp = int(time.time())
    stored_bytes, new_bytes, later_bytes = png(stamp), png(stamp + 1), png(stamp + 2)
    await asyncio.to_thread(disk.mount)
    try:
        # An image stored while there is room (a server that wants more free space than the tiny
        # disk has may refuse it: then that is a missed check, and the rest still runs).
        first = await upload(load, token, stored_bytes, "stored.png")
        row.checks["an upload while there is room works"] = first.status == 201
        if first.status != 201:
            row.notes.append(
                f"upload on the empty {TinyDisk.SIZE} disk: {first.status or first.error} {first.body[:160]!r}"
            )
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
