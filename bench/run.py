"""Run the bench: start the servers, seed, measure every scenario, write JSON and Markdown.

    python -m bench.run --out bench/results                 # everything (make bench)
    python -m bench.run --out /tmp/b --quick                # a short smoke run
    python -m bench.run --out /tmp/b --scenarios fanout --targets messenger,stock

See bench/README.md for what each scenario measures.
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse, urlunparse

from bench import report
from bench.procs import (
    LOOPBACK,
    PYTHON,
    REPO,
    messenger_env,
    raise_nofile_limit,
    run_checked,
    stop_all,
    tcp_reachable,
)
from bench.scenarios import (
    TARGETS,
    Context,
    Messenger,
    fanout_layout,
    log,
    multichat_layout,
    run_fanout_like,
    run_idle,
)

SCENARIOS = ("fanout", "multichat", "idle", "rest", "biggroup")
DEFAULT_DATABASE = "mysql://root@127.0.0.1:3306/"
DEFAULT_REDIS = "redis://127.0.0.1:6379/2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory for results.json, results.md and logs")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--targets",
        default=None,
        help="servers to measure, of messenger,stock,stock-pubsub,raw "
        "(default all; stock-pubsub only when Redis is reachable)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds a rate step lasts (default 5; quick 2)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: short steps, fewer rows and sockets")
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"MySQL/MariaDB server to use (default {DEFAULT_DATABASE} when reachable, else SQLite); "
        "the bench creates its own database there and drops it at the end",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help=f"Redis for the channel layers (default {DEFAULT_REDIS} when reachable); 'none' for the in-memory layer",
    )
    parser.add_argument(
        "--endpoint",
        choices=("all", "chat"),
        default="all",
        help="messenger sockets: /ws/ (the shipped client's, default) or /ws/chat/<id>/",
    )
    parser.add_argument("--client-processes", type=int, default=2, help="receiver processes (default 2)")
    parser.add_argument("--idle-sockets", type=int, default=None, help="idle sockets (default 5000; quick 1000)")
    parser.add_argument("--history", type=int, default=None, help="messages in the REST history chat (100000)")
    parser.add_argument(
        "--rates", default=None, help="fixed offered deliveries/s, comma-separated, instead of the sweep (profiling)"
    )
    parser.add_argument(
        "--biggroup-ops",
        type=int,
        default=None,
        help="operations of each kind in the big-group scenario (default 30; quick 5; at most 60)",
    )
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=None,
        help="seconds each way of the database floor is measured (with multichat; default 5, quick 2)",
    )
    parser.add_argument("--soak", action="store_true", help="also run the soak (see README; off by default)")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--soak-workers", type=int, default=2, help="daphne worker processes for the soak (default 2)")
    parser.add_argument(
        "--soak-rate", type=float, default=0.2, help="messages/s from each of the soak's 200 senders (default 0.2)"
    )
    parser.add_argument(
        "--crowd", action="store_true", help="also run the crowd: 100,000 idle sockets and 200 senders (see README)"
    )
    parser.add_argument("--crowd-sockets", type=int, default=100_000)
    parser.add_argument(
        "--crowd-workers",
        type=int,
        default=None,
        help="daphne processes (default: enough for the open-file limit, ≥ 2)",
    )
    parser.add_argument("--crowd-seconds", type=float, default=60.0, help="measured with the crowd open (default 60)")
    parser.add_argument(
        "--crowd-rate", type=float, default=0.2, help="messages/s from each of the crowd's 200 senders (default 0.2)"
    )
    parser.add_argument(
        "--crowd-nice",
        type=int,
        default=0,
        help="the crowd's client processes run this much nicer (they stand for clients on other hosts; default 0)",
    )
    return parser.parse_args()


# Database and Redis ------------------------------------------------------------------------


def mysql_reachable(url: str) -> bool:
    parsed = urlparse(url)
    if not tcp_reachable(parsed.hostname or LOOPBACK, parsed.port or 3306):
        return False
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return False
    return True


def mysql_admin(url: str, statement: str) -> None:
    import MySQLdb

    parsed = urlparse(url)
    connection = MySQLdb.connect(
        host=parsed.hostname or LOOPBACK,
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
    )
    try:
        connection.cursor().execute(statement)
    finally:
        connection.close()


def redis_reachable(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return bool(client.ping())
    except Exception:
        return False


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "?"


# The run -----------------------------------------------------------------------------------


def run_db_floor(seed_path: Path, env: dict[str, str], log_dir: Path, *, seconds: float) -> dict[str, Any]:
    """Persisted messages/s of the send's SQL alone, a commit each and 50 a commit (bench/db_floor.py)."""
    floor_path = seed_path.with_name("db-floor.json")
    command = [PYTHON, "-m", "bench.db_floor", "--seed", str(seed_path), "--out", str(floor_path)]
    run_checked([*command, "--seconds", str(seconds)], env=env, log_path=log_dir / "db_floor.log", timeout=300)
    floor: dict[str, Any] = json.loads(floor_path.read_text())
    for way in ("commit_each", "batched"):
        figures = floor[way]
        log(
            f"  {way:12} {figures['messages_per_s']:8.0f} messages/s "
            f"({figures['batch']} a commit, {figures['messages']} in {figures['seconds']:.1f} s)"
        )
    return floor


def write_results(out: Path, results: dict[str, Any]) -> str:
    results["targets"] = report.targets(results)
    text = report.markdown(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(text)
    return text


def main() -> None:
    args = parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.soak:
        scenarios.append("soak")
    if args.crowd:
        scenarios.append("crowd")
    names = [n for n in (args.targets or "").split(",") if n]
    if set(names) - set(TARGETS):
        raise SystemExit(f"unknown targets: {', '.join(sorted(set(names) - set(TARGETS)))}")
    duration = args.duration or (2.0 if args.quick else 5.0)
    args.floor_seconds = args.floor_seconds or (2.0 if args.quick else 5.0)
    idle_sockets = args.idle_sockets or (1000 if args.quick else 5000)
    history = args.history or (10_000 if args.quick else 100_000)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    nofile = raise_nofile_limit()
    if "idle" in scenarios and nofile < idle_sockets * 2 + 200:
        log(f"warning: open-file limit {nofile} is low for {idle_sockets} sockets")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)

    run_id = secrets.token_hex(3)
    database_url = ""
    database_admin = ""
    server_url = args.database_url or DEFAULT_DATABASE
    if args.database_url or mysql_reachable(server_url):
        parsed = urlparse(server_url)
        database_admin = server_url
        database_url = urlunparse(parsed._replace(path=f"/messenger_bench_{run_id}"))
    redis_url = ""
    if args.redis_url != "none":
        candidate = args.redis_url or DEFAULT_REDIS
        if args.redis_url or redis_reachable(candidate):
            redis_url = candidate
    if not names:
        # The PubSub relay needs Redis: without it, it would be the in-memory relay a second time.
        names = [n for n in TARGETS if redis_url or n != "stock-pubsub"]
    elif "stock-pubsub" in names and not redis_url:
        raise SystemExit("the stock-pubsub target needs Redis (--redis-url)")
    data_dir = Path(tempfile.mkdtemp(prefix="messenger-bench-"))
    prefix = f"bench{run_id}"
    env = messenger_env(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        layer_prefix=prefix,
        extra={
            # Flood control guards each socket against a misbehaving client; the bench's single
            # sender posts hundreds of frames a second on purpose, so its bucket is made deep.
            "WEBSOCKET_RATE_PER_SECOND": "1000000",
            "WEBSOCKET_RATE_BURST": "1000000",
            # Likewise the per-user rate of sends (all of a user's sockets together).
            "WEBSOCKET_SENDS_PER_SECOND_PER_USER": "0",
        },
    )
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "database": "MariaDB/MySQL" if database_url else "SQLite",
            "channel_layer": "channels-redis" if redis_url else "in-memory",
            "duration": duration,
            "quick": args.quick,
            "endpoint": "/ws/" if args.endpoint == "all" else "/ws/chat/<id>/",
            "client_processes": args.client_processes,
            "targets": names,
            "commit": git_commit(),
        }
    }
    created_database = False
    try:
        if database_url:
            mysql_admin(
                database_admin,
                f"CREATE DATABASE messenger_bench_{run_id} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            )
            created_database = True
        log(f"database: {results['meta']['database']}; channel layer: {results['meta']['channel_layer']}")
        started = time.monotonic()
        run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, log_path=log_dir / "migrate.log")
        seed_path = out / "seed.json"
        run_checked(
            [
                PYTHON,
                "-m",
                "bench.seed",
                "--scenarios",
                ",".join(scenarios),
                "--history",
                str(history),
                "--idle",
                str(idle_sockets),
                "--crowd",
                str(args.crowd_sockets),
                "--out",
                str(seed_path),
            ],
            env=env,
            log_path=log_dir / "seed.log",
        )
        seed = json.loads(seed_path.read_text())
        log(f"migrated and seeded in {time.monotonic() - started:.1f} s")
        context = Context(
            env=env,
            redis_url=redis_url,
            layer_prefix=prefix,
            log_dir=log_dir,
            duration=duration,
            client_processes=args.client_processes,
            endpoint=args.endpoint,
            quick=args.quick,
            rates=[float(r) for r in args.rates.split(",")] if args.rates else None,
        )
        if "rest" in scenarios:
            log("rest: messenger")
            from bench.rest import run_rest

            messenger = Messenger(context)
            messenger.start()
            try:
                results["rest"] = run_rest(
                    messenger.port, messenger.pid, seed, seed_path, env, log_dir, count=50 if args.quick else 300
                )
            finally:
                messenger.stop()
            write_results(out, results)
        if "fanout" in scenarios:
            results["fanout"] = asyncio.run(run_fanout_like(context, names, fanout_layout(seed), "fan-out"))
            write_results(out, results)
        if "multichat" in scenarios:
            log("database floor: a send's statements on one connection (bench/db_floor.py)")
            results["db_floor"] = run_db_floor(seed_path, env, log_dir, seconds=args.floor_seconds)
            write_results(out, results)
            results["multichat"] = asyncio.run(run_fanout_like(context, names, multichat_layout(seed), "multi-chat"))
            write_results(out, results)
        if "idle" in scenarios:
            results["idle"] = asyncio.run(run_idle(context, names, seed))
            write_results(out, results)
        if "biggroup" in scenarios:
            from bench.biggroup import run_biggroup

            operations = args.biggroup_ops or (5 if args.quick else 30)
            results["biggroup"] = asyncio.run(run_biggroup(context, seed, operations=operations))
            write_results(out, results)
        if "soak" in scenarios:
            from bench.soak import run_soak

            soak = run_soak(
                context,
                seed,
                minutes=args.soak_minutes,
                rate_per_sender=args.soak_rate,
                server_workers=args.soak_workers,
            )
            results["soak"] = asyncio.run(soak)
            write_results(out, results)
        if "crowd" in scenarios:
            from bench.crowd import run_crowd

            crowd = run_crowd(
                context,
                seed,
                seconds=args.crowd_seconds,
                rate_per_sender=args.crowd_rate,
                server_workers=args.crowd_workers,
                crowd_nice=args.crowd_nice,
            )
            results["crowd"] = asyncio.run(crowd)
            write_results(out, results)
        print()
        print(write_results(out, results))
        print(f"written: {out / 'results.json'}, {out / 'results.md'}")
    except KeyboardInterrupt:
        log("interrupted; stopping the servers")
        write_results(out, results)
        raise SystemExit(130) from None
    finally:
        stop_all()
        if created_database:
            with contextlib.suppress(Exception):
                mysql_admin(database_admin, f"DROP DATABASE IF EXISTS messenger_bench_{run_id}")
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
