"""The big-group scenario (messenger only): what renaming a group of 1,000 and changing its members costs.

Every member of a 1,000-member group (the owner and 999) has a socket open on `/ws/`, spread
over the receiver processes; 60 spare users have theirs in one more receiver process. Over the
public REST API the owner then makes, one after another and waiting for each to reach everyone:

- `rename` — PATCH /api/chats/{id} {title} (everyone gets `chat.updated`);
- `rename_100` — the same in a group of 100 of the same users, the yardstick for how the
  `chat.updated` frame grows with the member count;
- `add` — POST /api/chats/{id}/members {user_id} of a spare user (they get `chat.created`,
  the members `member.added`);
- `remove` — DELETE /api/chats/{id}/members/{user_id} of that user again (`member.removed`).

Per kind of operation: p50/p99 of the REST answer; the server's CPU seconds (psutil, the daphne
process) from the first request to the last member's receipt of the last operation, divided by
the operations, nothing subtracted; the frames the receivers got, by type (bytes a frame, and
all receivers' bytes per operation); and the p99 of "REST answer → the last member's receipt"
of each operation's event (its wait ends there, or after WAIT_SECONDS).

The messenger's limit of 1,000 members a group is raised for this server (GROUP_MAX_MEMBERS),
so that the 1,000-member group can take one more.
"""

import asyncio
import dataclasses
import http.client
import json
import time
from collections.abc import Sequence
from typing import Any

from bench.load import OP_MARK, CpuMeter, Worker, ask_all, percentile, split
from bench.procs import LOOPBACK
from bench.scenarios import Context, Messenger, log

WAIT_SECONDS = 10.0  # for one operation's event to reach every member
LAST_WAIT_SECONDS = 60.0  # for the last of a kind: its CPU is only counted once everyone has it
SETTLE_SECONDS = 90.0  # for the connects' presence storm to end (1,000 x 999 frames)
PHASE_SECONDS = 240.0  # operations of one kind stop after this long, done or not (quick: 60)
CPU_TARGET_MS = 50.0
CONNECT_CONCURRENCY = 25  # handshakes in flight per receiver process
CONNECT_RETRIES = 2
# Frames that are not an operation's (presence of the members, keepalive answers).
BACKGROUND_TYPES = {"presence", "pong", "typing"}


@dataclasses.dataclass
class Wait:
    """An operation's event: `count` receipts of (type, key) among `workers`."""

    workers: Sequence[Worker]
    kind: str
    key: int
    count: int


class Rest:
    """The owner's keep-alive HTTP connection to the messenger."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def call(self, method: str, path: str, body: dict[str, Any] | None, status: int) -> tuple[int, int, int]:
        """(sent ns, answered ns, answer bytes); raises unless the answer has `status`."""
        payload = json.dumps(body) if body is not None else None
        started = time.monotonic_ns()
        self.connection.request(method, path, body=payload, headers=self.headers)
        answer = self.connection.getresponse()
        data = answer.read()
        answered = time.monotonic_ns()
        if answer.status != status:
            raise RuntimeError(f"{method} {path} answered {answer.status}, not {status}: {data[:300]!r}")
        return started, answered, len(data)

    def close(self) -> None:
        self.connection.close()


async def _receipts(wait: Wait) -> tuple[int, int]:
    answers = await ask_all(wait.workers, "event_keys", [(wait.kind, wait.key)])
    return sum(a[0][0] for a in answers), max(a[0][1] for a in answers)


async def _wait_for(waits: Sequence[Wait], timeout: float) -> tuple[bool, int]:
    """(everyone got it, the last receipt's monotonic ns) — polled; the receivers timestamp it themselves."""
    deadline = time.monotonic() + timeout
    while True:
        results = [await _receipts(w) for w in waits]
        done = all(got >= w.count for (got, _), w in zip(results, waits, strict=True))
        if done or time.monotonic() >= deadline:
            return done, max(last for _, last in results)
        await asyncio.sleep(0.02)


async def _settle(workers: Sequence[Worker], quiet: float = 1.0, timeout: float = SETTLE_SECONDS) -> float:
    """Wait until no receiver has got a frame for `quiet` seconds; returns the seconds it took."""
    started = time.monotonic()
    last = sum(await ask_all(workers, "frames"))
    quiet_since = time.monotonic()
    while time.monotonic() - started < timeout:
        await asyncio.sleep(0.25)
        now = sum(await ask_all(workers, "frames"))
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            break
    return time.monotonic() - started


def _merge_types(answers: Sequence[dict[str, list[int]]]) -> dict[str, list[int]]:
    merged: dict[str, list[int]] = {}
    for types in answers:
        for kind, (frames, size, largest) in types.items():
            into = merged.setdefault(kind, [0, 0, 0])
            into[0] += frames
            into[1] += size
            into[2] = max(into[2], largest)
    return merged


@dataclasses.dataclass
class Operation:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    waits: list[Wait]


async def _phase(
    name: str,
    target: Messenger,
    rest: Rest,
    workers: Sequence[Worker],
    operations: Sequence[Operation],
    *,
    members: int,
    main_types: Sequence[str],
    budget: float,
) -> dict[str, Any]:
    """Operations of one kind, each waited for; CPU from the first request to the last one's last receipt."""
    await ask_all(workers, "event_types")  # the tallies start here
    meter = CpuMeter([target.pid, *(w.pid for w in workers)])
    cpu_before = target.cpu_seconds()
    started = time.monotonic()
    answers_ms: list[float] = []
    receipts_ms: list[float] = []  # REST answer → the last member's receipt (negative: everyone had it first)
    from_request_ms: list[float] = []  # request sent → the last member's receipt
    incomplete = 0
    answer_bytes = 0
    done = 0
    for index, operation in enumerate(operations):
        last = index == len(operations) - 1 or time.monotonic() - started >= budget
        sent, answered, answer_bytes = rest.call(operation.method, operation.path, operation.body, operation.status)
        answers_ms.append((answered - sent) / 1e6)
        complete, last_receipt = await _wait_for(operation.waits, LAST_WAIT_SECONDS if last else WAIT_SECONDS)
        done += 1
        if complete:
            receipts_ms.append((last_receipt - answered) / 1e6)
            from_request_ms.append((last_receipt - sent) / 1e6)
        else:
            incomplete += 1
        if last:
            break
    seconds = time.monotonic() - started
    cpu = target.cpu_seconds() - cpu_before
    foreign = meter.foreign_cores()
    types = _merge_types(await ask_all(workers, "event_types"))
    answers_ms.sort()
    receipts_ms.sort()
    from_request_ms.sort()
    frames = {
        kind: {"frames": n, "bytes": size, "mean_bytes": size / n, "max_bytes": largest}
        for kind, (n, size, largest) in sorted(types.items())
    }
    operation_bytes = sum(size for kind, (_, size, _) in types.items() if kind not in BACKGROUND_TYPES)
    frame_bytes = {kind: frames[kind]["mean_bytes"] for kind in main_types if kind in frames}
    result: dict[str, Any] = {
        "operations": done,
        "members": members,
        "answer_p50_ms": percentile(answers_ms, 0.50),
        "answer_p99_ms": percentile(answers_ms, 0.99),
        "answer_max_ms": answers_ms[-1],
        "answer_bytes": answer_bytes,
        "cpu_ms_per_op": 1000 * cpu / done,
        "receipt_p50_ms": percentile(receipts_ms, 0.50),
        "receipt_p99_ms": percentile(receipts_ms, 0.99),
        "request_to_receipt_p99_ms": percentile(from_request_ms, 0.99),
        "incomplete": incomplete,
        "frame_bytes": frame_bytes,
        "total_bytes_per_op": operation_bytes / done,
        "frames": frames,
        "seconds": seconds,
        "foreign_cpu": foreign,
    }
    sizes = ", ".join(f"{kind} {size:,.0f} B" for kind, size in frame_bytes.items()) or "no frames"
    log(
        f"  {name:10} {done} ops  answer p50 {result['answer_p50_ms']:7.1f}  p99 {result['answer_p99_ms']:7.1f} ms  "
        f"server cpu {result['cpu_ms_per_op']:7.1f} ms/op  frame {sizes}  "
        f"all receivers {result['total_bytes_per_op'] / 1e6:,.2f} MB/op  "
        f"last receipt p99 {result['receipt_p99_ms']:7.1f} ms  incomplete {incomplete}  others {foreign:4.0%}"
    )
    return result


async def run_biggroup(context: Context, seed: dict[str, Any], *, operations: int) -> dict[str, Any]:
    data = seed["biggroup"]
    spare_ids: list[int] = data["spare_ids"]
    operations = max(1, min(operations, len(spare_ids)))
    budget = 60.0 if context.quick else PHASE_SECONDS
    members = len(data["members"])
    # The scenario renames far past THROTTLE_RENAME's 30 an hour on purpose.
    env = dict(context.env, GROUP_MAX_MEMBERS=str(members + len(spare_ids)), THROTTLE_RENAME="1000000/hour")
    target = Messenger(dataclasses.replace(context, env=env))
    log(f"big group: messenger, {members} members, {operations} operations of each kind")
    target.start()
    member_workers: list[Worker] = []
    spare_workers: list[Worker] = []
    rest: Rest | None = None
    try:
        chat_id, small_id = data["chat_id"], data["small_chat_id"]
        urls = [target.url(chat_id, t) for t in data["members"]]

        # Each connect tells up to 999 others that the user is online: the connects come in slowly, and a
        # handshake the busy server reset is tried again (counted as `connect_retries`).
        def receivers(part: list[str]) -> Worker:
            worker = Worker(part, target.origin, concurrency=CONNECT_CONCURRENCY, events=True, retries=CONNECT_RETRIES)
            return worker.start()

        member_workers = [receivers(part) for part in split(urls, context.client_processes)]
        spare_workers = [receivers([target.url(chat_id, t) for t in data["spares"]])]
        workers = [*member_workers, *spare_workers]
        started = time.monotonic()
        connected = await ask_all(workers, "connect", timeout=600)
        connect_seconds = time.monotonic() - started
        errors = {k: v for c in connected for k, v in c[2].items()}
        if errors:
            raise RuntimeError(f"big group: receivers could not connect: {errors}")
        retried = sum(sum(c[5].values()) for c in connected)
        opened = sum(c[1] for c in connected)
        settled = await _settle(workers)
        log(
            f"  {opened} sockets open in {connect_seconds:.1f} s ({retried} connects retried), "
            f"quiet {settled:.1f} s later"
        )
        rest = Rest(target.port, data["owner"])
        counter = iter(range(1, 1_000_000))

        def rename(chat: int, count: int) -> Operation:
            number = next(counter)
            title = f"big group {OP_MARK.decode()}{number}|"
            return Operation(
                "PATCH",
                f"/api/chats/{chat}",
                {"title": title},
                200,
                [Wait(member_workers, "chat.updated", number, count)],
            )

        results: dict[str, Any] = {
            "members": members,
            "sockets": opened,
            "connect_seconds": connect_seconds,
            "connect_retries": retried,
            "connect_settle_seconds": settled,
        }
        results["rename"] = await _phase(
            "rename",
            target,
            rest,
            workers,
            [rename(chat_id, members) for _ in range(operations)],
            members=members,
            main_types=["chat.updated"],
            budget=budget,
        )
        small = data["small_members"]
        results["rename_100"] = await _phase(
            f"rename_{small}",
            target,
            rest,
            workers,
            [rename(small_id, small) for _ in range(operations)],
            members=small,
            main_types=["chat.updated"],
            budget=budget,
        )
        # The newcomer's chat.created reaches the spares' receiver: one more there for each addition.
        created_before, _ = await _receipts(Wait(spare_workers, "chat.created", 0, 0))
        adds = [
            Operation(
                "POST",
                f"/api/chats/{chat_id}/members",
                {"user_id": user_id},
                201,
                [
                    Wait(member_workers, "member.added", user_id, members),
                    Wait(spare_workers, "chat.created", 0, created_before + index + 1),
                ],
            )
            for index, user_id in enumerate(spare_ids[:operations])
        ]
        results["add"] = await _phase(
            "add",
            target,
            rest,
            workers,
            adds,
            members=members,
            main_types=["chat.created", "member.added"],
            budget=budget,
        )
        added = spare_ids[: results["add"]["operations"]]
        removes = [
            Operation(
                "DELETE",
                f"/api/chats/{chat_id}/members/{user_id}",
                None,
                204,
                [Wait(member_workers, "member.removed", user_id, members)],
            )
            for user_id in added
        ]
        results["remove"] = await _phase(
            "remove",
            target,
            rest,
            workers,
            removes,
            members=members,
            main_types=["member.removed"],
            budget=budget,
        )
        statuses = await ask_all(workers, "status")
        results["still_open"] = sum(s[0] for s in statuses)
        results["cpu_target_ms"] = CPU_TARGET_MS
        return results
    finally:
        if rest is not None:
            rest.close()
        for worker in [*member_workers, *spare_workers]:
            worker.stop()
        target.stop()
