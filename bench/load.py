"""The load generator: lean WebSocket clients, receiver processes, the sender and a measured step.

The clients speak WebSocket through `websockets`' sans-I/O protocol on a plain asyncio.Protocol:
a frame is parsed and timestamped in `data_received`, without a task wake-up per frame, so the
client spends as little of the shared CPU as it can. Receivers run in their own processes
(`multiprocessing`, spawn); the sender runs in the bench's process. Every frame the sender
posts carries `BENCH|<seq>|<monotonic ns>|` in its text; CLOCK_MONOTONIC is one clock for every
process on the machine, so a receiver's timestamp minus the sender's is the delivery latency.
"""

import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import psutil
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

from bench.procs import LOOPBACK, raise_nofile_limit

MARK = b"BENCH|"
FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit"


def content_for(seq: int, sent_ns: int) -> str:
    return f"BENCH|{seq}|{sent_ns}| {FILLER}"


# The lean client ---------------------------------------------------------------------------

PING_FINAL = 0x89  # FIN + opcode 9 (ping)
PONG_FINAL = 0x8A  # FIN + opcode 10 (pong)
ZERO_MASK = b"\x00\x00\x00\x00"  # a client's frames are masked (RFC 6455 5.3); a zero key leaves the payload as is


class Socket(asyncio.Protocol):
    """One client WebSocket. Text frames go to `on_text(bytes)` as soon as they are parsed."""

    def __init__(self, url: str, origin: str | None, on_text: Callable[[bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        self.protocol = ClientProtocol(parse_uri(url), origin=Origin(origin) if origin else None, max_size=None)
        self.on_text = on_text
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if len(data) == 2 + (data[1] if len(data) > 1 else -3) and data[0] == PING_FINAL and data[1] < 126:
            # A lone keepalive ping (the server's, every 20 s to each idle socket): answered here with a
            # pong of the same payload, masked with a zero key, without the sans-I/O parser. Where
            # 100,000 idle sockets share the server's 2 cores, the clients' ~5,000 pings a second
            # through it took ~0.4 of a core away from the server; real clients are elsewhere.
            if self.transport is not None and self.protocol.state is State.OPEN:
                self.transport.write(bytes((PONG_FINAL, 0x80 | data[1])) + ZERO_MASK + data[2:])
            return
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_text(event.data)
            elif isinstance(event, Response) and not self.opened.done():
                if self.protocol.handshake_exc is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(self.protocol.handshake_exc)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.protocol.close_code)

    @property
    def is_open(self) -> bool:
        return self.protocol.state is State.OPEN and not self.closed.done()

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        if self.transport is None:
            return
        with contextlib.suppress(Exception):
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
                self._flush()
        self.transport.close()


async def open_socket(
    url: str,
    origin: str | None,
    on_text: Callable[[bytes], None],
    timeout: float,
    tls: ssl.SSLContext | None = None,
    source: str | None = None,
) -> Socket:
    """`tls`: a wss:// URL's context (what it trusts). `source`: the local address to connect from
    (one address has ~28,000 ephemeral ports; more sockets than that need more loopback sources)."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    host, port = parts.hostname or LOOPBACK, parts.port or (443 if parts.scheme == "wss" else 80)
    local_addr = (source, 0) if source else None
    connecting = loop.create_connection(
        lambda: Socket(url, origin, on_text), host, port, ssl=tls, local_addr=local_addr
    )
    _, sock = await asyncio.wait_for(connecting, timeout)
    try:
        await asyncio.wait_for(sock.opened, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


# Receiver processes -----------------------------------------------------------------------


# Out-of-version-order events -----------------------------------------------------------------

_MESSAGE_TYPE_KEYS = (b'"type": "message.', b'"type":"message.')
_VERSIONED_KINDS = (b"created", b"updated", b"deleted")
_DIGITS = re.compile(rb"\s*(\d+)")


def _int_at(data: bytes, at: int) -> int | None:
    match = _DIGITS.match(data, at)
    return int(match.group(1)) if match else None


def _key_int(data: bytes, key: bytes) -> int | None:
    """The integer after `key`; None when absent, or when its occurrences disagree (then decode)."""
    first = data.find(key)
    if first < 0:
        return None
    value = _int_at(data, first + len(key))
    last = data.rfind(key)
    if last != first and _int_at(data, last + len(key)) != value:
        return None
    return value


def event_version(data: bytes) -> tuple[int, int] | None:
    """(chat_id, version) of a message.created / message.updated / message.deleted frame, else None.

    Read from the bytes, without decoding the JSON (a receiver gets tens of thousands of frames a
    second). Inside a JSON string every quote is escaped, so `"version":` can only be a key. A
    message frame names its chat and version twice, at the top and in its Message, with the same
    values; when the occurrences disagree the frame is decoded and its top-level keys are read.
    """
    for key in _MESSAGE_TYPE_KEYS:
        at = data.find(key)
        if at >= 0:
            break
    else:
        return None
    at += len(key)
    if data[at : at + 7] not in _VERSIONED_KINDS:
        return None
    chat_id = _key_int(data, b'"chat_id":')
    version = _key_int(data, b'"version":')
    if chat_id is None or version is None:
        try:
            frame = json.loads(data)
            chat_id, version = int(frame["chat_id"]), int(frame["version"])
        except (ValueError, KeyError, TypeError):
            return None
    return chat_id, version


# Events by type (the big-group scenario) ---------------------------------------------------

OP_MARK = b"BIGOP|"  # in a chat title the big-group scenario sets: BIGOP|<operation number>|
_TYPE = re.compile(rb'"type":\s*"([^"]{1,40})"')


def _op_number(data: bytes) -> int:
    """The highest operation number in the frame's titles (the chat's current title), 0 if none."""
    highest, at = 0, data.find(OP_MARK)
    while at >= 0:
        at += len(OP_MARK)
        end = data.find(b"|", at)
        if end > at and data[at:end].isdigit():
            highest = max(highest, int(data[at:end]))
        at = data.find(OP_MARK, at)
    return highest


class EventTally:
    """Frames by type (count, bytes, largest), and receipts by operation key with the last one's time.

    The key of `member.added` / `member.removed` is the user's id; of `chat.updated` the operation
    number in the chat's title; `chat.created` has key 0 (one a newcomer).
    """

    def __init__(self) -> None:
        self.types: dict[str, list[int]] = {}
        self.keys: dict[tuple[str, int], list[int]] = {}

    def on_text(self, data: bytes) -> None:
        now = time.monotonic_ns()
        match = _TYPE.search(data)
        kind = match.group(1).decode(errors="replace") if match else "?"
        size = len(data)
        tally = self.types.get(kind)
        if tally is None:
            self.types[kind] = [1, size, size]
        else:
            tally[0] += 1
            tally[1] += size
            if size > tally[2]:
                tally[2] = size
        key: int | None = None
        if kind in ("member.added", "member.removed"):
            key = _key_int(data, b'"user_id":')
        elif kind == "chat.updated":
            key = _op_number(data)
        elif kind == "chat.created":
            key = 0
        if key is None:
            return
        record = self.keys.get((kind, key))
        if record is None:
            self.keys[(kind, key)] = [1, now]
        else:
            record[0] += 1
            record[1] = max(record[1], now)

    def take_types(self) -> dict[str, list[int]]:
        types, self.types = self.types, {}
        return types


class Recorder:
    """Per message: how many receipts, and when the last one arrived.

    Per socket (`callback()`), also the highest version seen from each chat: a message event whose
    version is lower than that arrived out of version order (the contract delivers in order).
    With `events`, every frame is also tallied by type (EventTally).
    """

    def __init__(self, events: bool = False) -> None:
        self.records: dict[int, list[int]] = {}
        self.frames = 0
        self.out_of_order = 0
        self.versioned = 0  # message events whose version was checked
        self.events = EventTally() if events else None

    def callback(self) -> Callable[[bytes], None]:
        """The on_text of one socket: records receipts and checks its chats' version order."""
        highest: dict[int, int] = {}
        events = self.events

        def on_text(data: bytes) -> None:
            self.on_text(data)
            if events is not None:
                events.on_text(data)
            found = event_version(data)
            if found is None:
                return
            self.versioned += 1
            chat_id, version = found
            seen = highest.get(chat_id, 0)
            if version < seen:
                self.out_of_order += 1
            else:
                highest[chat_id] = version

        return on_text

    def take_order(self) -> tuple[int, int]:
        """(out-of-order events, events checked) since the last call."""
        counts = (self.out_of_order, self.versioned)
        self.out_of_order = self.versioned = 0
        return counts

    def on_text(self, data: bytes) -> None:
        self.frames += 1
        start = data.find(MARK)
        if start < 0:
            return
        now = time.monotonic_ns()
        start += len(MARK)
        seq = int(data[start : data.find(b"|", start)])
        record = self.records.get(seq)
        if record is None:
            self.records[seq] = [1, now]
        else:
            record[0] += 1
            if now > record[1]:
                record[1] = now

    def count_between(self, low: int, high: int) -> int:
        return sum(r[0] for seq, r in self.records.items() if low <= seq < high)

    def take(self) -> dict[int, list[int]]:
        records, self.records = self.records, {}
        return records


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def worker_main(
    conn: Connection,
    urls: Sequence[str],
    origin: str | None,
    concurrency: int,
    events: bool,
    retries: int,
    source: str | None = None,
) -> None:
    raise_nofile_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_worker(conn, list(urls), origin, concurrency, events, retries, source))


async def _worker(
    conn: Connection,
    urls: list[str],
    origin: str | None,
    concurrency: int,
    events: bool,
    retries: int,
    source: str | None,
) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder(events)
    sockets: list[Socket] = []
    errors: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)

    retried: Counter[str] = Counter()

    async def connect(url: str) -> None:
        async with gate:
            for attempt in range(1 + retries):
                try:
                    sockets.append(await open_socket(url, origin, recorder.callback(), timeout=30, source=source))
                    return
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {str(exc)[:80]}"
                    if attempt == retries:
                        errors[reason] += 1
                    else:
                        retried[reason] += 1
                        await asyncio.sleep(0.5)

    conn.send(("hello", os.getpid()))
    while True:
        command, *rest = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            started = time.monotonic_ns()
            await asyncio.gather(*(connect(url) for url in urls))
            conn.send(("connected", len(sockets), dict(errors), started, time.monotonic_ns(), dict(retried)))
        elif command == "count":
            conn.send(recorder.count_between(*rest))
        elif command == "collect":
            conn.send((recorder.take(), recorder.frames, _cpu_seconds(), *recorder.take_order()))
        elif command == "frames":
            conn.send(recorder.frames)
        elif command == "event_keys" and recorder.events is not None:
            # [receipts, last receipt's monotonic ns] of each (type, key) asked for.
            conn.send([recorder.events.keys.get((kind, key), [0, 0]) for kind, key in rest[0]])
        elif command == "event_types" and recorder.events is not None:
            conn.send(recorder.events.take_types())
        elif command == "status":
            codes = Counter(str(s.closed.result()) for s in sockets if s.closed.done())
            conn.send((sum(1 for s in sockets if s.is_open), dict(codes), _cpu_seconds()))
        elif command == "stop":
            for sock in sockets:
                sock.close()
            await asyncio.sleep(0.2)
            conn.send("stopped")
            return


@dataclass
class Worker:
    """The bench's handle on one receiver process."""

    urls: list[str]
    origin: str | None
    concurrency: int = 100
    events: bool = False  # tally frames by type and operation key (the big-group scenario)
    retries: int = 0  # connects tried again after a failure (counted apart; the idle scenario's errors are a target)
    source: str | None = None  # the loopback address this process connects from (None: the kernel's choice)
    nice: int = 0  # its scheduling priority lowered by this much (the crowd's: it stands for clients on other hosts)
    process: Any = None
    conn: Connection | None = None
    pid: int = 0

    def start(self) -> "Worker":
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(
            target=worker_main,
            args=(child, self.urls, self.origin, self.concurrency, self.events, self.retries, self.source),
            daemon=True,
        )
        self.process.start()
        child.close()
        self.conn = parent
        _, self.pid = self.receive(60)
        if self.nice:
            os.setpriority(os.PRIO_PROCESS, self.pid, os.getpriority(os.PRIO_PROCESS, self.pid) + self.nice)
        return self

    def send(self, *command: Any) -> None:
        assert self.conn is not None
        self.conn.send(command)

    def receive(self, timeout: float) -> Any:
        assert self.conn is not None
        if not self.conn.poll(timeout):
            raise TimeoutError(f"receiver {self.pid} did not answer within {timeout:.0f} s")
        return self.conn.recv()

    def ask(self, *command: Any, timeout: float = 60) -> Any:
        self.send(*command)
        return self.receive(timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            self.ask("stop", timeout=10)
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self.process = None


def summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Tallies by key (errors, close codes, answers) added up over processes or steps."""
    total: Counter[str] = Counter()
    for one in counts:
        total.update(one)
    return dict(total)


def split(items: Sequence[str], parts: int) -> list[list[str]]:
    return [list(items[i::parts]) for i in range(parts) if items[i::parts]]


async def ask_all(workers: Sequence[Worker], *command: Any, timeout: float = 120) -> list[Any]:
    for worker in workers:
        worker.send(*command)
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(None, w.receive, timeout) for w in workers)))


# The sender -------------------------------------------------------------------------------


class Sender:
    """A socket that posts, and what came back to it (acks, errors, its own echoes)."""

    def __init__(self, frame: Callable[[int, int], str]) -> None:
        self.frame = frame
        self.answers: Counter[str] = Counter()
        self.errors: list[str] = []
        self._socket: Socket | None = None

    @property
    def socket(self) -> Socket:
        assert self._socket is not None
        return self._socket

    async def open(self, url: str, origin: str | None) -> "Sender":
        self._socket = await open_socket(url, origin, self.on_text, timeout=30)
        return self

    def on_text(self, data: bytes) -> None:
        if b'"message.ack"' in data:  # a quote inside a message's text is escaped: this is the type
            self.answers["message.ack"] += 1
            return
        if MARK in data and b'"error"' not in data:
            self.answers["echo"] += 1
            return
        try:
            kind = str(json.loads(data).get("type", "?"))
        except ValueError:
            kind = "not json"
        self.answers[kind] += 1
        if kind == "error" and len(self.errors) < 5:
            self.errors.append(data.decode(errors="replace")[:200])


async def open_senders(specs: Sequence[tuple[str, Callable[[int, int], str]]], origin: str | None) -> list[Sender]:
    return [await Sender(frame).open(url, origin) for url, frame in specs]


async def send_at_rate(senders: Sequence[Sender], *, rate: float, count: int, first_seq: int) -> dict[int, int]:
    """Post `count` frames at a steady `rate` per second, round-robin over the senders.

    The schedule is absolute (the k-th frame is due at start + k/rate), so a late wake-up
    is caught up, not carried forward. Returns each frame's send time (monotonic ns).
    """
    sent: dict[int, int] = {}
    interval = 1e9 / rate
    start = time.monotonic_ns() + 5_000_000
    for k in range(count):
        due = start + int(k * interval)
        now = time.monotonic_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
            now = time.monotonic_ns()
        seq = first_seq + k
        sender = senders[k % len(senders)]
        if not sender.socket.is_open:
            raise ConnectionError(f"the sender's socket closed (code {sender.socket.protocol.close_code})")
        sender.socket.send_text(sender.frame(seq, now))
        sent[seq] = now
    return sent


# One measured step ------------------------------------------------------------------------


def _infrastructure_pids() -> set[int]:
    """Redis and MariaDB/MySQL serve the messenger: their CPU belongs to the measurement."""
    names = {"redis-server", "mariadbd", "mysqld"}
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names}


class CpuMeter:
    """CPU taken on the machine by processes outside the measurement (other jobs), in cores.

    The machine's busy time minus that of the server, the receivers, this process, Redis and
    MariaDB: on a shared machine a step that others disturbed shows it here.
    """

    def __init__(self, pids: Sequence[int]) -> None:
        ours = {*pids, os.getpid(), *_infrastructure_pids()}
        for pid in list(ours):  # a launcher's workers (messenger.serve --workers), a receiver's helpers
            with contextlib.suppress(psutil.Error):
                ours.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        self.processes = [psutil.Process(pid) for pid in ours]
        self.started = time.monotonic()
        self.busy = self._machine_busy()
        self.ours = self._ours()

    @staticmethod
    def _machine_busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def _ours(self) -> float:
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def foreign_cores(self) -> float:
        wall = max(time.monotonic() - self.started, 1e-3)
        return max(0.0, (self._machine_busy() - self.busy) - (self._ours() - self.ours)) / wall


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class StepResult:
    offered_msgs: float
    offered_deliveries: float
    sent: int
    complete: int
    lost: int
    deliveries: int
    deliveries_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    send_lag_ms: float
    server_cpu: float
    client_cpu: float
    foreign_cpu: float
    sender_answers: dict[str, int]
    out_of_order: int = 0  # message events received with a version below one their socket saw before
    versioned: int = 0  # message events whose version was checked
    acked: int = 0  # message.ack answers: messages the server stored (the messenger only)
    persisted_per_s: float = 0.0  # acked ÷ (first send → last receipt)

    @property
    def saturated(self) -> bool:
        return (
            self.lost > max(1, self.sent // 200)
            or self.p99_ms > 1000
            or self.deliveries_per_s < 0.8 * self.offered_deliveries
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "saturated": self.saturated}


async def measure_step(
    *,
    senders: Sequence[Sender],
    workers: Sequence[Worker],
    server_cpu: Callable[[], float],
    server_pid: int,
    rate: float,
    duration: float,
    receivers_per_message: int,
    first_seq: int,
    drain_seconds: float = 3.0,
    also_ours: Sequence[int] = (),
) -> StepResult:
    """`also_ours`: more processes of the measurement (their CPU is not counted as other jobs')."""
    count = max(1, min(200_000, round(rate * duration)))
    for sender in senders:
        sender.answers.clear()
    cpu_server_before = server_cpu()
    statuses = await ask_all(workers, "status")
    cpu_clients_before = [s[2] for s in statuses]
    wall_start = time.monotonic()
    meter = CpuMeter([server_pid, *(w.pid for w in workers), *also_ours])
    sent = await send_at_rate(senders, rate=rate, count=count, first_seq=first_seq)
    expected = count * receivers_per_message
    deadline = time.monotonic() + drain_seconds
    while time.monotonic() < deadline:
        received = sum(await ask_all(workers, "count", first_seq, first_seq + count))
        if received >= expected:
            break
        await asyncio.sleep(0.05)
    wall = time.monotonic() - wall_start
    cpu_server = (server_cpu() - cpu_server_before) / wall
    foreign = meter.foreign_cores()
    collected = await ask_all(workers, "collect")
    cpu_clients = [(c[2] - before) / wall for c, before in zip(collected, cpu_clients_before, strict=True)]
    merged: dict[int, list[int]] = {}
    for records, *_ in collected:
        for seq, (receipts, last) in records.items():
            if not first_seq <= seq < first_seq + count:
                continue
            into = merged.get(seq)
            if into is None:
                merged[seq] = [receipts, last]
            else:
                into[0] += receipts
                into[1] = max(into[1], last)
    latencies = sorted(
        (last - sent[seq]) / 1e6 for seq, (receipts, last) in merged.items() if receipts >= receivers_per_message
    )
    deliveries = sum(r[0] for r in merged.values())
    first_sent = min(sent.values())
    last_receipt = max((r[1] for r in merged.values()), default=first_sent + 1)
    span = max((last_receipt - first_sent) / 1e9, 1e-3)
    interval_ns = 1e9 / rate
    lag = max(sent[first_seq + k] - (sent[first_seq] + k * interval_ns) for k in range(count)) / 1e6
    answers: Counter[str] = Counter()
    for sender in senders:
        answers.update(sender.answers)
    return StepResult(
        offered_msgs=rate,
        offered_deliveries=rate * receivers_per_message,
        sent=count,
        complete=len(latencies),
        lost=count - len(latencies),
        deliveries=deliveries,
        deliveries_per_s=deliveries / span,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else float("nan"),
        send_lag_ms=lag,
        server_cpu=cpu_server,
        client_cpu=max(cpu_clients, default=0.0),
        foreign_cpu=foreign,
        sender_answers=dict(answers),
        out_of_order=sum(c[3] for c in collected),
        versioned=sum(c[4] for c in collected),
        acked=answers["message.ack"],
        persisted_per_s=answers["message.ack"] / span,
    )
