"""One user's flood against another user's `message.ack` latency, on a live server (issue 12).

A flooder opens SOCKETS sockets (default 100; WEBSOCKET_MAX_PER_USER is raised for it), each on
/ws/chat/<id>/ of a group of its own (so that a message reaches one socket, not a hundred), each
sending `message.send` at the per-socket rate (WEBSOCKET_RATE_PER_SECOND, 20/s): 2,000 frames a
second. A quiet user sends one message every 50 ms on its own group and times send -> ack, for
--seconds after --warmup; the flooder's process starts --flood-at (1) seconds into that, so that
its connects, its first burst and the closes of its sockets (4429, about a second later) are
measured, not only the steady state after them. Three runs, a fresh server each: no flood (the
floor), the flood with the per-user rate off (WEBSOCKET_SENDS_PER_SECOND_PER_USER=0: the fair
queuing of chats.realtime.sends alone), and the flood with the defaults. Prints p50/p99/max of the
quiet user's acks per run, when the slow ones came, and what the flooder got (acks, rate_limited).

    .venv/bin/python -m bench.flood [--seconds 10] [--sockets 100] [--flood-at 1] [--database-url mysql://...]
        [--redis-url redis://...] [--case no-flood|rate-off|defaults ...] [--repeat N]

`--case` (repeatable) runs only those cases, `--repeat` each of them N times; each result carries the
load average of the minute before it ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

from bench.load import percentile
from bench.procs import LOOPBACK, PYTHON, REPO, Server, daphne_command, free_port, messenger_env, run_checked

SEED = """
import json, django
django.setup()
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
from chats import services
flooder = User.objects.create_user(username="flooder", email="f@example.com", password="x-long-password-1")
quiet = User.objects.create_user(username="quiet", email="q@example.com", password="x-long-password-1")
chats = [services.chat_create(creator=flooder, is_group=True, member_ids=[], title=f"flood {{i}}")[0].pk
         for i in range({sockets})]
mine = services.chat_create(creator=quiet, is_group=True, member_ids=[], title="quiet")[0].pk
print(json.dumps({{"flooder": str(AccessToken.for_user(flooder)), "quiet": str(AccessToken.for_user(quiet)),
                  "chats": chats, "quiet_chat": mine}}))
"""
ORIGIN = "app://messenger"
READY = "/healthz"


async def flood_socket(url: str, chat_id: int, rate: float, stop: asyncio.Event, tally: dict[str, int]) -> None:
    async with websockets.connect(url, origin=ORIGIN, max_queue=None) as socket:  # type: ignore[arg-type]

        async def read() -> None:
            try:
                async for text in socket:
                    frame = json.loads(text)
                    kind = frame.get("code") if frame.get("type") == "error" else frame.get("type")
                    tally[kind] = tally.get(kind, 0) + 1
            except websockets.ConnectionClosed as closed:
                key = f"closed {closed.rcvd.code if closed.rcvd else None}"
                tally[key] = tally.get(key, 0) + 1

        reader = asyncio.create_task(read())
        n = 0
        start = time.monotonic()
        while not stop.is_set() and not reader.done():
            n += 1
            await socket.send(
                json.dumps({"type": "message.send", "chat_id": chat_id, "content": "x", "client_id": f"f{n}"})
            )
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        reader.cancel()


async def quiet_socket(url: str, chat_id: int, seconds: float, warmup: float) -> tuple[list[float], list[list[float]]]:
    """The quiet user's send -> ack times (ms), and [seconds into the measuring, ms] of those over 100 ms."""
    latencies: list[float] = []
    slow: list[list[float]] = []
    sent: dict[str, float] = {}
    async with websockets.connect(url, origin=ORIGIN) as socket:  # type: ignore[arg-type]

        async def read() -> None:
            async for text in socket:
                frame = json.loads(text)
                if frame.get("type") in ("message.ack", "error") and frame.get("client_id") in sent:
                    began = sent.pop(frame["client_id"])
                    if frame["type"] == "message.ack" and began >= measuring_from:
                        latencies.append((time.monotonic() - began) * 1000)
                        if latencies[-1] > 100:
                            slow.append([round(began - measuring_from, 2), round(latencies[-1], 1)])

        measuring_from = time.monotonic() + warmup
        reader = asyncio.create_task(read())
        n = 0
        end = measuring_from + seconds
        while time.monotonic() < end:
            n += 1
            sent[f"q{n}"] = time.monotonic()
            await socket.send(
                json.dumps({"type": "message.send", "chat_id": chat_id, "content": "hi", "client_id": f"q{n}"})
            )
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        reader.cancel()
    return latencies, slow


async def flood_for(base: str, seed: dict[str, Any], seconds: float) -> dict[str, int]:
    stop = asyncio.Event()
    tally: dict[str, int] = {}
    tasks = [
        asyncio.create_task(flood_socket(f"{base}/ws/chat/{chat}/?token={seed['flooder']}", chat, 20, stop, tally))
        for chat in seed["chats"]
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally


def flood_process(base: str, seed: dict[str, Any], seconds: float, out: Any) -> None:
    """The flooder in a process of its own: its loop's work never delays the quiet user's reads."""
    out.put(asyncio.run(flood_for(base, seed, seconds)))


async def one_run(
    port: int, seed: dict[str, Any], *, flood: bool, seconds: float, warmup: float, flood_at: float
) -> dict[str, Any]:
    """The quiet user measures for `seconds` after `warmup`; the flooder's process starts `flood_at`
    seconds into the measuring, so that its connects, its first burst and the closes of its
    sockets (4429, about a second in) are all measured, not only the steady state after them."""
    base = f"ws://{LOOPBACK}:{port}"
    tallies: Any = multiprocessing.Queue()
    flooder = None
    quiet = asyncio.create_task(quiet_socket(f"{base}/ws/?token={seed['quiet']}", seed["quiet_chat"], seconds, warmup))
    if flood:
        await asyncio.sleep(warmup + flood_at)
        flooder = multiprocessing.Process(target=flood_process, args=(base, seed, seconds - flood_at + 1, tallies))
        flooder.start()
    latencies, slow = await quiet
    tally: dict[str, int] = {}
    if flooder is not None:
        tally = await asyncio.to_thread(tallies.get, True, 60)
        flooder.join(30)
    latencies.sort()
    return {
        "acks": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "flooder": tally,
        "flood_started_at": flood_at if flood else None,
        "over_100ms_at": slow[:20],
        "load_average": round(os.getloadavg()[0], 2),
    }


CASES: dict[str, tuple[str, bool, dict[str, str]]] = {
    "no-flood": ("no flood", False, {}),
    "rate-off": (
        "flood, per-user rate off (fair queuing alone)",
        True,
        {"WEBSOCKET_SENDS_PER_SECOND_PER_USER": "0"},
    ),
    "defaults": ("flood, defaults", True, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--flood-at", type=float, default=1, help="seconds into the measuring the flood starts")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--case", action="append", choices=list(CASES), help="default: all three")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs = [
        (f"{CASES[case][0]}{f' #{n + 1}' if args.repeat > 1 else ''}", *CASES[case][1:])
        for case in (args.case or list(CASES))
        for n in range(args.repeat)
    ]
    results = {}
    for name, flood, extra in runs:
        data_dir = Path(tempfile.mkdtemp(prefix="messenger-flood-"))
        env = messenger_env(
            data_dir=data_dir,
            database_url=args.database_url,
            redis_url=args.redis_url,
            layer_prefix=f"flood{int(time.time())}",
            extra={"WEBSOCKET_MAX_PER_USER": str(args.sockets + 10), **extra},
        )
        log_dir = data_dir / "logs"
        log_dir.mkdir()
        run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, log_path=log_dir / "migrate.log")
        if args.database_url:
            run_checked([PYTHON, "manage.py", "flush", "--noinput", "-v", "0"], env=env, log_path=log_dir / "flush.log")
        seeded = subprocess.run(
            [PYTHON, "-c", SEED.format(sockets=args.sockets)], env=env, cwd=REPO, check=True, capture_output=True
        )
        seed = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
        port = free_port()
        server = Server(
            "daphne", daphne_command("messenger.asgi:application", port), port=port, env=env, log_dir=log_dir
        )
        with server.start(ready_path=READY):
            result = asyncio.run(
                one_run(port, seed, flood=flood, seconds=args.seconds, warmup=args.warmup, flood_at=args.flood_at)
            )
        results[name] = result
        print(f"{name}: {json.dumps(result)}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
