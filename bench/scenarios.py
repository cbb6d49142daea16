"""The servers under test and the WebSocket scenarios: fan-out, multi-chat and idle sockets."""

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.load import (
    Sender,
    StepResult,
    Worker,
    ask_all,
    content_for,
    measure_step,
    open_senders,
    open_socket,
    split,
    summed,
)
from bench.procs import LOOPBACK, PYTHON, Server, daphne_command, free_port

# Offered deliveries per second, climbed until p99 crosses 100 ms or the server saturates. The
# low rungs find a reference's capacity on a slow machine (the stock relay's p99 passed 100 ms
# at 500/s on a day when this machine ran at half its usual speed).
LADDER = [
    100,
    250,
    500,
    1000,
    2000,
    3000,
    4000,
    5000,
    6000,
    8000,
    10_000,
    12_500,
    15_000,
    17_500,
    20_000,
    25_000,
    30_000,
]
LADDER += [35_000, 40_000, 50_000, 60_000, 80_000, 100_000]
P99_LIMIT_MS = 100.0
LIGHT_LOAD_DELIVERIES = 2000  # 20 messages/s to 100 members
# CPU taken by processes outside the measurement above which a failed step is measured again.
NOISE_CORES = 0.25


@dataclass
class Context:
    env: dict[str, str]  # the messenger's environment (settings, database, Redis)
    redis_url: str
    layer_prefix: str
    log_dir: Path
    duration: float
    client_processes: int
    endpoint: str  # "all" (/ws/, what the shipped client opens) or "chat" (/ws/chat/<id>/)
    quick: bool
    rates: list[float] | None = None  # fixed offered deliveries/s instead of the sweep (profiling)


class Target:
    """A server under test: how to start it, where its sockets connect and what its sender posts."""

    name = ""
    label = ""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.port = 0
        self.server: Server | None = None

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Server:
        raise NotImplementedError

    def url(self, chat_id: int, token: str) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws/chat/room{chat_id}/"

    def frame(self, chat_id: int) -> Callable[[int, int], str]:
        def build(seq: int, sent_ns: int) -> str:
            return json.dumps({"type": "message.send", "content": content_for(seq, sent_ns)})

        return build

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _processes(self) -> list[psutil.Process]:
        """The server process and its workers (messenger.serve --workers)."""
        assert self.server is not None
        main = psutil.Process(self.server.pid)
        return [main, *main.children(recursive=True)]

    def cpu_seconds(self) -> float:
        try:
            return float(sum(t.user + t.system for t in (p.cpu_times() for p in self._processes())))
        except psutil.Error:
            return 0.0

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def rss(self) -> int:
        return int(sum(p.memory_info().rss for p in self._processes()))


class Messenger(Target):
    name = "messenger"
    label = "messenger"

    def __init__(self, context: Context, *, workers: int = 1) -> None:
        super().__init__(context)
        self.workers = workers
        # client_ids unique to this server's run: the scenarios share one database, and a repeated
        # client_id from the same sender is answered with the first message (and not broadcast).
        self.client_prefix = secrets.token_hex(4)

    def start(self) -> Server:
        self.port = free_port()
        command = daphne_command("messenger.asgi:application", self.port)
        if self.workers > 1:
            # messenger.serve binds the port and starts the workers on it (its own listen backlog is 4,096).
            command = [PYTHON, "-m", "messenger.serve", "--workers", str(self.workers), "-v", "0"]
            command += ["-b", LOOPBACK, "-p", str(self.port)]
        self.server = Server("messenger", command, port=self.port, env=self.context.env, log_dir=self.context.log_dir)
        return self.server.start(ready_path="/healthz")

    def url(self, chat_id: int, token: str) -> str:
        if self.context.endpoint == "chat":
            return f"ws://{LOOPBACK}:{self.port}/ws/chat/{chat_id}/?token={token}"
        return f"ws://{LOOPBACK}:{self.port}/ws/?token={token}"

    def frame(self, chat_id: int) -> Callable[[int, int], str]:
        def build(seq: int, sent_ns: int) -> str:
            frame = {"type": "message.send", "chat_id": chat_id, "content": content_for(seq, sent_ns)}
            frame["client_id"] = f"bench-{self.client_prefix}-{seq}"
            return json.dumps(frame)

        return build


class StockRelay(Target):
    name = "stock"
    label = "stock Channels relay"
    layer = "core"  # channels_redis.core.RedisChannelLayer

    def start(self) -> Server:
        self.port = free_port()
        env = dict(self.context.env)
        env["BENCH_REDIS_URL"] = self.context.redis_url
        env["BENCH_LAYER"] = self.layer
        env["BENCH_LAYER_PREFIX"] = f"{self.context.layer_prefix}{self.name}"
        command = daphne_command("bench.stock_relay:application", self.port)
        log_name = "stock_relay" if self.layer == "core" else f"stock_relay_{self.layer}"
        self.server = Server(log_name, command, port=self.port, env=env, log_dir=self.context.log_dir)
        return self.server.start()

    def frame(self, chat_id: int) -> Callable[[int, int], str]:
        def build(seq: int, sent_ns: int) -> str:
            return json.dumps({"message": content_for(seq, sent_ns)})

        return build


class StockPubSubRelay(StockRelay):
    """The same relay on channels-redis's RedisPubSubChannelLayer (needs Redis)."""

    name = "stock-pubsub"
    label = "stock Channels relay (PubSub layer)"
    layer = "pubsub"


class RawFloor(Target):
    name = "raw"
    label = "raw websockets floor"

    def start(self) -> Server:
        self.port = free_port()
        command = [PYTHON, "-m", "bench.raw_floor", "--port", str(self.port)]
        self.server = Server("raw_floor", command, port=self.port, env=self.context.env, log_dir=self.context.log_dir)
        return self.server.start()


TARGETS: dict[str, type[Target]] = {
    "messenger": Messenger,
    "stock": StockRelay,
    "stock-pubsub": StockPubSubRelay,
    "raw": RawFloor,
}


def log(message: str) -> None:
    print(message, flush=True)


# Fan-out and multi-chat --------------------------------------------------------------------


@dataclass
class Layout:
    """Who receives and who sends: (chat id, receiver tokens) and (chat id, sender token)."""

    rooms: list[tuple[int, list[str]]]
    senders: list[tuple[int, str]]

    @property
    def receivers_per_message(self) -> int:
        return len(self.rooms[0][1])


def fanout_layout(seed: dict[str, Any]) -> Layout:
    data = seed["fanout"]
    return Layout(rooms=[(data["chat_id"], data["members"])], senders=[(data["chat_id"], data["sender"])])


def multichat_layout(seed: dict[str, Any]) -> Layout:
    chats = seed["multichat"]["chats"]
    return Layout(
        rooms=[(c["chat_id"], c["members"]) for c in chats],
        senders=[(c["chat_id"], c["sender"]) for c in chats],
    )


def _step_line(target: Target, step: StepResult) -> str:
    flag = " SATURATED" if step.saturated else ""
    # Only the messenger's events carry versions; the references' frames are never checked.
    order = f"  out-of-order {step.out_of_order}" if step.versioned else ""
    return (
        f"  {target.name:12} {step.offered_deliveries:8.0f} offered/s → {step.deliveries_per_s:8.0f} delivered/s  "
        f"p50 {step.p50_ms:7.1f}  p95 {step.p95_ms:7.1f}  p99 {step.p99_ms:7.1f} ms  lost {step.lost}/{step.sent}  "
        f"server cpu {step.server_cpu:4.0%}  client cpu {step.client_cpu:4.0%}  others {step.foreign_cpu:4.0%}"
        f"{order}{flag}"
    )


class Rig:
    """A server under test with every socket of a layout open: started, torn down, started afresh."""

    def __init__(self, context: Context, target: Target, layout: Layout) -> None:
        self.context = context
        self.target = target
        self.layout = layout
        self.workers: list[Worker] = []
        self.senders: list[Sender] = []
        self.sender_errors: list[str] = []

    async def up(self) -> None:
        target, layout = self.target, self.layout
        target.start()
        urls = [target.url(chat_id, token) for chat_id, tokens in layout.rooms for token in tokens]
        self.workers = [Worker(part, target.origin).start() for part in split(urls, self.context.client_processes)]
        connected = await ask_all(self.workers, "connect", timeout=300)
        errors = {k: v for c in connected for k, v in c[2].items()}
        if errors:
            raise RuntimeError(f"{target.name}: receivers could not connect: {errors}")
        self.senders = await open_senders(
            [(target.url(c, t), target.frame(c)) for c, t in layout.senders], target.origin
        )
        await asyncio.sleep(1.0)  # presence and join events settle before anything is measured

    def down(self) -> None:
        for sender in self.senders:
            self.sender_errors += sender.errors
            sender.socket.close()
        for worker in self.workers:
            worker.stop()
        self.senders, self.workers = [], []
        self.target.stop()

    async def fresh(self) -> None:
        """After an overload a server may still be draining a backlog, or have lost sockets: start over."""
        self.down()
        await self.up()


async def sweep(context: Context, target: Target, layout: Layout) -> dict[str, Any]:
    """Climb the ladder of offered rates; find where p99 crosses 100 ms (bisected twice).

    Every step after a failed one runs on a freshly started server with fresh sockets, so an
    overload's backlog or damage is never charged to the next rate.
    """
    per_message = layout.receivers_per_message
    rig = Rig(context, target, layout)
    seq = 1
    dirty = False

    async def step(deliveries: float, duration: float) -> StepResult:
        nonlocal seq, dirty
        if dirty:
            await rig.fresh()
            await warm_up()
        result = await measure_step(
            senders=rig.senders,
            workers=rig.workers,
            server_cpu=target.cpu_seconds,
            server_pid=target.pid,
            rate=deliveries / per_message,
            duration=duration,
            receivers_per_message=per_message,
            first_seq=seq,
        )
        seq += result.sent + 1000
        dirty = result.saturated or result.p99_ms >= P99_LIMIT_MS
        await asyncio.sleep(0.5)
        return result

    async def warm_up() -> None:
        """Not recorded: every sender posts twice, so no room is met for the first time in a step."""
        nonlocal seq
        result = await measure_step(
            senders=rig.senders,
            workers=rig.workers,
            server_cpu=target.cpu_seconds,
            server_pid=target.pid,
            rate=LIGHT_LOAD_DELIVERIES / per_message,
            duration=max(1.0, 2 * len(rig.senders) * per_message / LIGHT_LOAD_DELIVERIES),
            receivers_per_message=per_message,
            first_seq=seq,
        )
        seq += result.sent + 1000
        await asyncio.sleep(0.5)

    steps: list[StepResult] = []

    async def passes(deliveries: float) -> bool:
        """One step at this rate; a failure is measured again before it counts (one-off stalls, other jobs)."""
        for attempt in range(4):
            result = await step(deliveries, context.duration)
            steps.append(result)
            log(_step_line(target, result) + (" (again)" if attempt else ""))
            if not (result.saturated or result.p99_ms >= P99_LIMIT_MS):
                return True
            disturbed = result.foreign_cpu > NOISE_CORES
            if attempt >= (2 if disturbed else 1):
                return False
            if result.deliveries_per_s < 0.8 * result.offered_deliveries and not disturbed:
                return False  # plainly beyond capacity: no second try
            if disturbed:
                await asyncio.sleep(5.0)  # other jobs on the machine: give them a moment
        return False

    try:
        await rig.up()
        await warm_up()
        last_ok: float | None = None
        first_bad: float | None = None
        for deliveries in context.rates or []:
            result = await step(deliveries, context.duration)
            steps.append(result)
            log(_step_line(target, result))
        for deliveries in [] if context.rates else LADDER:
            if not await passes(deliveries):
                first_bad = deliveries
                break
            last_ok = deliveries
        for _ in range(0 if context.quick else 2):
            if last_ok is None or first_bad is None:
                break
            middle = round((last_ok + first_bad) / 2)
            if await passes(middle):
                last_ok = middle
            else:
                first_bad = middle
        if not context.rates and not any(s.offered_deliveries == LIGHT_LOAD_DELIVERIES for s in steps):
            # The sweep stopped below the light load: measure it anyway, for the latency targets.
            result = await step(LIGHT_LOAD_DELIVERIES, context.duration)
            steps.append(result)
            log(_step_line(target, result) + " (light load)")
        passing = [s for s in steps if not (s.saturated or s.p99_ms >= P99_LIMIT_MS)]
        ok_steps = [s for s in passing if s.offered_deliveries == last_ok]
        light = [s for s in steps if s.offered_deliveries == LIGHT_LOAD_DELIVERIES][-1:]
        answers = summed(s.sender_answers for s in steps)
        return {
            "capacity_deliveries_per_s": ok_steps[-1].deliveries_per_s if ok_steps else 0.0,
            # Messages stored per second (acked) at the highest passing step; 0 for the references.
            "persisted_per_s": ok_steps[-1].persisted_per_s if ok_steps else 0.0,
            "max_persisted_per_s": max(s.persisted_per_s for s in steps),
            "capacity_offered_per_s": last_ok or 0.0,
            "first_failing_offered_per_s": first_bad,
            "fixed_rates": bool(context.rates),
            "max_delivered_per_s": max(s.deliveries_per_s for s in steps),
            "at_2000": light[0].as_dict() if light else None,
            "steps": [s.as_dict() for s in steps],
            "sender_answers": answers,
            "sender_errors": rig.sender_errors + [e for s in rig.senders for e in s.errors],
            # Message events a receiver got with a version below one it had seen from that chat.
            "out_of_order": sum(s.out_of_order for s in steps),
            "out_of_order_steps": sum(1 for s in steps if s.out_of_order),
            "versioned": sum(s.versioned for s in steps),
        }
    finally:
        rig.down()


# Idle sockets ------------------------------------------------------------------------------


async def idle(context: Context, target: Target, tokens: list[str], warm_token: str) -> dict[str, Any]:
    """Open every socket, then weigh the server: (RSS after - RSS before) / open sockets."""
    workers: list[Worker] = []
    target.start()
    try:
        # Pairs of users share a chat (the seed's direct chats); the references pair their rooms alike.
        urls = [target.url(index // 2, token) for index, token in enumerate(tokens)]
        warm = await open_socket(target.url(0, warm_token), target.origin, lambda data: None, timeout=30)
        await asyncio.sleep(0.5)
        warm.close()
        await asyncio.sleep(1.0)
        workers = [Worker(part, target.origin, concurrency=100).start() for part in split(urls, 2)]
        rss_before = target.rss()
        connected = await ask_all(workers, "connect", timeout=600)
        opened = sum(c[1] for c in connected)
        errors = summed(c[2] for c in connected)
        seconds = (max(c[4] for c in connected) - min(c[3] for c in connected)) / 1e9
        await asyncio.sleep(3.0)  # presence broadcasts and lazy allocations settle
        statuses = await ask_all(workers, "status")
        still_open = sum(s[0] for s in statuses)
        close_codes = summed(s[1] for s in statuses)
        rss_after = target.rss()
        result = {
            "sockets": len(urls),
            "opened": opened,
            "still_open": still_open,
            "errors": sum(errors.values()) + (opened - still_open),
            "error_kinds": errors,
            "close_codes": close_codes,
            "connect_seconds": seconds,
            "connects_per_s": opened / seconds if seconds > 0 else 0.0,
            "rss_before_mib": rss_before / 2**20,
            "rss_after_mib": rss_after / 2**20,
            "kib_per_socket": (rss_after - rss_before) / max(still_open, 1) / 1024,
        }
        log(
            f"  {target.name:12} {still_open}/{len(urls)} open in {seconds:.2f} s ({result['connects_per_s']:.0f}/s), "
            f"{result['kib_per_socket']:.1f} KiB/socket, errors {result['errors']}"
        )
        return result
    finally:
        for worker in workers:
            worker.stop()
        target.stop()


async def run_fanout_like(context: Context, names: list[str], layout: Layout, scenario: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        log(f"{scenario}: {TARGETS[name].label}")
        started = time.monotonic()
        results[name] = await sweep(context, TARGETS[name](context), layout)
        results[name]["seconds"] = time.monotonic() - started
    return results


async def run_idle(context: Context, names: list[str], seed: dict[str, Any]) -> dict[str, Any]:
    tokens = seed["idle"]["tokens"]
    results: dict[str, Any] = {}
    for name in names:
        log(f"idle: {TARGETS[name].label}, {len(tokens)} sockets")
        results[name] = await idle(context, TARGETS[name](context), tokens, warm_token=tokens[-1])
    return results
