"""The crowd (off by default, `--crowd`): 100,000 idle authenticated sockets, and 200 senders among them.

Issue 16's figure: how many sockets this 2-core machine holds, what each costs, how fast they
connect, and whether messages still arrive in time while they are all open.

- **Server**: `python -m messenger.serve --workers W` (daphne processes on one shared listening
  socket, Redis between them). A process can hold no more descriptors than its open-file limit
  (`ulimit -Hn`; 20,000 on the machine this was written on, and raising it needs CAP_SYS_RESOURCE),
  so W is at least sockets ÷ (limit - 2,000): 2 workers hold about 36,000 sockets there, 100,000
  need 6. The workers share the same 2 cores either way; what W changes is the per-process baseline
  memory, which is subtracted (see below).
- **Clients**: receiver processes (`bench/load.py` Worker, the lean sans-I/O client), each holding
  at most 16,000 sockets and connecting from a loopback address of its own (127.0.0.11, .12, ...):
  one source address has ~28,000 ephemeral ports towards one server port. 100 handshakes in flight
  a process. Users are paired in direct chats (`bench/seed.py` `seed_idle`), so a connect's presence
  event reaches one peer.
- **Messages**: the multi-chat layout's 100 chats of 10 members (their receivers on 2 processes of
  their own) and 200 senders (two in each chat, as in the soak), each posting `--crowd-rate`
  messages/s; send → last member's receipt is timed (`measure_step`), first before the crowd
  connects (the floor), then in `--crowd-seconds` of 10-second windows with every idle socket open.
  The windows run past daphne's 20-second keepalive ping, so every idle socket is pinged (and
  answers) at least once meanwhile.

Reported: sockets open per worker, resident memory per socket = (the workers' RSS with the crowd
open, 5 s after the last connect - their RSS with only the senders' sockets open) ÷ crowd sockets
still open; Redis's `used_memory` the same way (the channel layer's and presence's share); connects/s
and errors (failed handshakes and sockets closed by the end); server CPU while the crowd idles;
message p50/p99/max and lost per window.
"""

import asyncio
import math
import resource
import time
from typing import Any

import psutil

from bench.load import Sender, StepResult, Worker, ask_all, measure_step, open_senders, split, summed
from bench.scenarios import Context, Messenger, log, multichat_layout

WINDOW_SECONDS = 10.0
SOCKETS_PER_CLIENT = 16_000
SOURCE_BASE = "127.0.0."
FIRST_SOURCE = 11  # 127.0.0.11, .12, ...: not 127.0.0.1, where the senders and everything else connect from
HANDSHAKES_IN_FLIGHT = 100  # a client process's


def workers_needed(sockets: int, fd_limit: int) -> int:
    """Server processes enough for `sockets` under the per-process open-file limit (at least 2)."""
    per_worker = max(1, fd_limit - 2000)  # the server keeps a reserve (messenger.paced_server.connection_cap)
    return max(2, math.ceil(sockets / per_worker))


def _redis_used_memory(redis_url: str) -> int | None:
    if not redis_url:
        return None
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _sockets_per_worker(target: Messenger) -> list[int]:
    """Open TCP connections of each worker process (the crowd's, the senders', Redis's and the database's)."""
    counts = []
    for process in target._processes()[1:] or target._processes():
        try:
            counts.append(len(process.net_connections(kind="tcp")))
        except psutil.Error:
            counts.append(-1)
    return counts


def _window(step: StepResult) -> dict[str, Any]:
    return {
        "sent": step.sent,
        "lost": step.lost,
        "p50_ms": step.p50_ms,
        "p99_ms": step.p99_ms,
        "max_ms": step.max_ms,
        "server_cpu": step.server_cpu,
        "client_cpu": step.client_cpu,
        "foreign_cpu": step.foreign_cpu,
        "out_of_order": step.out_of_order,
        "sender_answers": step.sender_answers,
    }


async def run_crowd(
    context: Context,
    seed: dict[str, Any],
    *,
    seconds: float,
    rate_per_sender: float,
    server_workers: int | None,
    crowd_nice: int = 0,
) -> dict[str, Any]:
    tokens: list[str] = seed["crowd"]["tokens"]
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    workers_count = server_workers or workers_needed(len(tokens), fd_limit)
    log(
        f"crowd: {len(tokens)} idle sockets on {workers_count} daphne processes (open-file limit {fd_limit}), "
        f"200 senders at {rate_per_sender:g} messages/s each"
    )
    target = Messenger(context, workers=workers_count)
    layout = multichat_layout(seed)
    receivers: list[Worker] = []
    crowd: list[Worker] = []
    senders: list[Sender] = []
    seq = 1

    async def window() -> StepResult:
        nonlocal seq
        step = await measure_step(
            senders=senders,
            workers=receivers,
            server_cpu=target.cpu_seconds,
            server_pid=target.pid,
            rate=len(senders) * rate_per_sender,
            duration=WINDOW_SECONDS,
            receivers_per_message=layout.receivers_per_message,
            first_seq=seq,
            also_ours=[w.pid for w in crowd],
        )
        seq += step.sent + 1000
        return step

    target.start()
    try:
        urls = [target.url(chat_id, token) for chat_id, tokens_ in layout.rooms for token in tokens_]
        receivers = [Worker(part, target.origin).start() for part in split(urls, 2)]
        await ask_all(receivers, "connect", timeout=300)
        pairs = layout.senders + [(chat_id, tokens_[0]) for chat_id, tokens_ in layout.rooms]
        senders = await open_senders([(target.url(c, t), target.frame(c)) for c, t in pairs], target.origin)
        await window()  # warm-up: the first sends of each chat fill caches
        before = await window()
        log(f"  without the crowd: p50 {before.p50_ms:.1f} ms, p99 {before.p99_ms:.1f} ms, lost {before.lost}")
        await asyncio.sleep(2.0)
        rss_before = target.rss()
        redis_before = _redis_used_memory(context.redis_url)

        clients = max(1, math.ceil(len(tokens) / SOCKETS_PER_CLIENT))
        crowd_urls = [target.url(index // 2, token) for index, token in enumerate(tokens)]
        crowd = [
            Worker(
                part,
                target.origin,
                concurrency=HANDSHAKES_IN_FLIGHT,
                source=f"{SOURCE_BASE}{FIRST_SOURCE + i}",
                nice=crowd_nice,
            )
            for i, part in enumerate(split(crowd_urls, clients))
        ]
        for worker in crowd:
            worker.start()
        cpu_before_connect = target.cpu_seconds()
        connected = await ask_all(crowd, "connect", timeout=1800)
        connect_cpu = target.cpu_seconds() - cpu_before_connect
        opened = sum(c[1] for c in connected)
        errors = summed(c[2] for c in connected)
        connect_seconds = (max(c[4] for c in connected) - min(c[3] for c in connected)) / 1e9
        log(
            f"  {opened}/{len(tokens)} connected in {connect_seconds:.1f} s "
            f"({opened / max(connect_seconds, 1e-3):.0f}/s), errors {errors or 0}"
        )
        await asyncio.sleep(5.0)  # presence events and lazy allocations settle
        rss_after = target.rss()
        redis_after = _redis_used_memory(context.redis_url)
        open_now = sum(s[0] for s in await ask_all(crowd, "status"))
        per_worker = _sockets_per_worker(target)
        log(
            f"  {open_now} open; {(rss_after - rss_before) / max(open_now, 1) / 1024:.1f} KiB a socket "
            f"(server RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB); TCP per worker {per_worker}"
        )

        windows: list[dict[str, Any]] = []
        idle_cpu_start = target.cpu_seconds()
        crowd_cpu_start = sum(s[2] for s in await ask_all(crowd, "status"))
        idle_wall_start = time.monotonic()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            step = await window()
            windows.append(_window(step))
            log(
                f"  window {len(windows)}: p50 {step.p50_ms:.1f} ms, p99 {step.p99_ms:.1f} ms, "
                f"max {step.max_ms:.1f} ms, lost {step.lost}/{step.sent}, server CPU {step.server_cpu:.2f} cores, "
                f"other jobs {step.foreign_cpu:.2f} cores, answers {step.sender_answers}"
            )
        idle_wall = max(time.monotonic() - idle_wall_start, 1e-3)
        idle_cores = (target.cpu_seconds() - idle_cpu_start) / idle_wall
        statuses = await ask_all(crowd, "status")
        crowd_cores = (sum(s[2] for s in statuses) - crowd_cpu_start) / idle_wall
        still_open = sum(s[0] for s in statuses)
        close_codes = summed(s[1] for s in statuses)
        all_p99 = max((w["p99_ms"] for w in windows), default=float("nan"))
        return {
            "sockets": len(tokens),
            "server_workers": workers_count,
            "open_file_limit": fd_limit,
            "client_processes": clients,
            "crowd_nice": crowd_nice,
            "sources": [w.source for w in crowd],
            "opened": opened,
            "open_after_connect": open_now,
            "still_open_at_end": still_open,
            "errors": sum(errors.values()) + (opened - still_open),
            "error_kinds": errors,
            "close_codes": close_codes,
            "connect_seconds": connect_seconds,
            "connects_per_s": opened / connect_seconds if connect_seconds > 0 else 0.0,
            "connect_server_cpu_ms_each": connect_cpu / max(opened, 1) * 1000,
            "tcp_per_worker": per_worker,
            "rss_before_mib": rss_before / 2**20,
            "rss_after_mib": rss_after / 2**20,
            "kib_per_socket": (rss_after - rss_before) / max(open_now, 1) / 1024,
            "redis_bytes_per_socket": (
                (redis_after - redis_before) / max(open_now, 1)
                if redis_after is not None and redis_before is not None
                else None
            ),
            "idle_server_cores": idle_cores,
            "crowd_client_cores": crowd_cores,
            "senders": len(senders),
            "messages_per_second": len(senders) * rate_per_sender,
            "without_crowd": _window(before),
            "windows": windows,
            "lost": sum(w["lost"] for w in windows),
            "worst_window_p99_ms": all_p99,
        }
    finally:
        for sender in senders:
            sender.socket.close()
        for worker in crowd + receivers:
            worker.stop()
        target.stop()
