"""The fault suite: break one part of a loaded messenger at a time and count what it cost.

    python -m faults.run                              # every experiment (make faults)
    python -m faults.run --only redis,worker --duration 20

It starts its own redis-server and mariadbd (never the machine's shared ones), migrates and
seeds a database there, and serves the messenger with `python -m messenger.serve --workers 2`
on a free loopback port. Each experiment opens a socket per user, sends ~20 messages/s over
REST and WebSocket for `--duration` seconds, breaks a part a fifth of the way in, puts it back,
drains, and verifies every acked message against the database and every member's receipts
(faults/accounting.py). One Markdown row per experiment is printed and written to
faults/results/latest.md; the exit status is 1 when a target is missed.
"""

import argparse
import asyncio
import datetime
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from bench.procs import REPO, raise_nofile_limit, stop_all
from faults.accounting import Row
from faults.experiments import EXPERIMENTS
from faults.infra import Messenger, OwnMariaDB, OwnRedis, TinyDisk, migrate_and_seed, missing_programs, server_env
from faults.load import Suite, log, run_experiment

RESULTS = REPO / "faults" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(EXPERIMENTS), help=f"comma-separated, of {','.join(EXPERIMENTS)}")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load in each experiment (30)")
    parser.add_argument("--workers", type=int, default=2, help="daphne processes behind messenger.serve (2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and logs/ go")
    args = parser.parse_args(argv)
    args.names = [n for n in args.only.split(",") if n]
    unknown = set(args.names) - set(EXPERIMENTS)
    if unknown:
        parser.error(f"unknown experiments: {', '.join(sorted(unknown))}")
    if args.duration < 15:
        parser.error("--duration must be at least 15 s (a 10-second outage sits inside it)")
    return args


COLUMNS = (
    "experiment",
    "sent",
    "acked",
    "stored",
    "delivered",
    "caught up",
    "lost",
    "duplicated",
    "silent misses",
    "5xx",
    "non-JSON errors",
    "HTML pages",
    "503 outside fault",
    "result",
)


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        if row.skipped:
            cells = [row.experiment, *("" for _ in COLUMNS[1:-1]), f"skipped: {row.skipped}"]
        else:
            missed = [name for name, ok in row.checks.items() if not ok]
            reasons = [row.error] if row.error else []
            reasons += row.targets_missed()
            if missed:
                reasons.append(f"{len(missed)} of {len(row.checks)} checks missed")
            result = f"FAIL ({'; '.join(reasons)})" if not row.passed else "pass"
            tally = row.http
            cells = [
                row.experiment,
                str(row.sent),
                str(row.acked),
                str(row.stored),
                str(row.delivered),
                str(row.caught_up),
                str(row.lost),
                str(row.duplicated),
                str(row.silent_misses),
                str(tally.server_errors),
                str(tally.non_json_errors),
                str(tally.html_pages),
                str(tally.unavailable_outside),
                result,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(rows: list[Row]) -> str:
    out: list[str] = []
    for row in rows:
        if row.skipped:
            continue
        out.append(f"**{row.experiment}**")
        out += [f"- {'✓' if ok else '✗'} {name}" for name, ok in row.checks.items()]
        out += [f"- {note}" for note in row.notes]
        out.append("")
    return "\n".join(out)


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "?"


async def run_all(suite: Suite, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        label, inject = EXPERIMENTS[name]
        if name == "disk" and (reason := TinyDisk.available()):
            rows.append(Row(label, skipped=reason))
            continue
        try:
            rows.append(await run_experiment(suite, name, label, inject))
        except Exception as exc:  # a broken experiment is a failed row; the next one still runs
            log(f"{label}: crashed: {type(exc).__name__}: {exc}")
            rows.append(Row(label, error=f"crashed: {type(exc).__name__}: {exc}"))
    return rows


def prepare_run(out: Path) -> Path:
    """What a suite of its own processes does first (the fault suite, the cluster test): an empty
    `out/logs`, the open-files limit raised, and SIGTERM taken as Ctrl-C so that the `finally` that
    stops every process it started runs. Returns the log directory."""
    log_dir = out / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    raise_nofile_limit()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    return log_dir


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_programs()
    if missing:
        print(f"the fault suite runs its own Redis and MariaDB and needs: {', '.join(missing)}", file=sys.stderr)
        print("(Debian/Ubuntu: apt-get install redis-server mariadb-server)", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    log_dir = prepare_run(out)
    root = Path(tempfile.mkdtemp(prefix="messenger-faults-"))
    redis = OwnRedis(root, log_dir)
    database = OwnMariaDB(root, log_dir)
    server: Messenger | None = None
    started = time.monotonic()
    rows: list[Row] = []
    try:
        log(f"own redis-server on {redis.port}, own mariadbd on {database.port} (data in {root})")
        redis.start()
        database.start()
        data_dir = root / "data"
        env = server_env(data_dir, database.url, redis.url)
        seed = migrate_and_seed(env, log_dir, root / "seed.json")
        server = Messenger(env, log_dir, workers=args.workers)
        server.start()
        log(f"messenger on {server.base} ({args.workers} workers), set up in {time.monotonic() - started:.0f} s")
        suite = Suite(
            redis=redis,
            database=database,
            server=server,
            seed=seed,
            uploads=data_dir / "uploads",
            duration=args.duration,
            run_id=secrets.token_hex(2),
        )
        rows = asyncio.run(run_all(suite, args.names))
    except KeyboardInterrupt:
        log("interrupted; stopping what the suite started")
    finally:
        database.resume()
        if server is not None:
            server.stop()
        redis.stop()
        database.stop()
        stop_all()
        shutil.rmtree(root, ignore_errors=True)
    took = time.monotonic() - started
    header = (
        f"Fault suite, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, "
        f"{args.duration:g} s of load an experiment, {args.workers} workers, {took:.0f} s in all."
    )
    text = f"{header}\n\n{table(rows)}\n\n{details(rows)}"
    print()
    print(text)
    (out / "latest.md").write_text(text + "\n")
    print(f"written: {out / 'latest.md'}")
    complete = len(rows) == len(args.names)
    return 0 if complete and all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
