"""The security suite: replay the abuse cases against a live messenger and print what happened.

    .venv/bin/python -m security.run            # make security

It migrates and seeds a SQLite database in a temporary DATA_DIR (security/seed.py), then serves
`python -m messenger.serve` on a free loopback port twice, one server at a time, started and
stopped by pid through bench.procs.Server:
- TRUSTED_PROXIES=0 (the default) with LOGIN_FAILURES_PER_USERNAME out of the way: a rotating
  X-Forwarded-For must not escape the per-address login rate;
- TRUSTED_PROXIES=1 with the defaults: per-username login failures (API and admin) from many
  addresses, framing headers, metadata, decompression bombs, upload memory, presence, and a flood.
One Markdown row per check (case / expected / observed / pass) is printed and written to
security/results/latest.md; the exit status is 1 when a check fails. About a minute on 2 cores.
"""

import argparse
import json
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench.procs import (
    LOOPBACK,
    PYTHON,
    REPO,
    Server,
    free_port,
    messenger_env,
    raise_nofile_limit,
    run_checked,
    stop_all,
)
from security import cases
from security.cases import Row

RESULTS = REPO / "security" / "results"
AUTH_RATE = 30  # THROTTLE_AUTH's default, per minute
LOGIN_FAILURES = 10  # LOGIN_FAILURES_PER_USERNAME's default
SOCKET_RATE = 20  # WEBSOCKET_RATE_PER_SECOND's default


def server_env(data_dir: Path, secret_key: str, extra: dict[str, str]) -> dict[str, str]:
    """The messenger's environment (bench.procs.messenger_env) on SQLite; one SECRET_KEY for the
    seed's minted tokens and both servers."""
    # Uploads are throttled at 60/min a user by default; the suite's one uploader sends ~25 in a few seconds.
    # The 16 concurrent uploads outnumber the 8 REST threads: they wait for one rather than get 503.
    settings = {
        "THROTTLE_AUTH": f"{AUTH_RATE}/min",
        "THROTTLE_UPLOAD": "10000/min",
        "HTTP_QUEUE_SECONDS": "60",
        "UPLOAD_DECODE_WAIT_SECONDS": "60",
        "WEBSOCKET_RATE_PER_SECOND": str(SOCKET_RATE),
        "LINK_PREVIEWS": "false",
        "SECRET_KEY": secret_key,
        **extra,
    }
    return messenger_env(data_dir=data_dir, database_url="", redis_url="", layer_prefix="security", extra=settings)


def serve(name: str, env: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    command = [PYTHON, "-m", "messenger.serve", "-v", "0", "-b", LOOPBACK, "-p", str(port)]
    return Server(name, command, port=port, env=env, log_dir=log_dir).start(ready_path="/healthz", timeout=60)


def attempt(rows: list[Row], name: str, check: Callable[[], Row | list[Row]]) -> None:
    """Run one case; an exception is a failed row of its own, and the suite goes on."""
    started = time.monotonic()
    try:
        found = check()
    except Exception as exc:  # a broken case is reported, not fatal
        found = Row(name, "(runs)", f"{type(exc).__name__}: {exc}", False)
    rows.extend(found if isinstance(found, list) else [found])
    print(f"  {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def table(rows: list[Row]) -> str:
    lines = ["| case | expected | observed | pass |", "|---|---|---|---|"]
    for row in rows:
        cells = [row.case, row.expected, row.observed, "pass" if row.passed else "**FAIL**"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def run(out: Path) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="security-"))
    log_dir = out / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    rows: list[Row] = []
    try:
        secret_key = secrets.token_urlsafe(48)
        setup_env = server_env(root, secret_key, {})
        migrate = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
        run_checked(migrate, env=setup_env, log_path=log_dir / "migrate.log")
        seed_path = root / "seed.json"
        seed = [PYTHON, "-m", "security.seed", "--out", str(seed_path)]
        run_checked(seed, env=setup_env, log_path=log_dir / "seed.log")
        seeded = json.loads(seed_path.read_text())
        uploader = seeded["users"][4]["token"]

        direct_env = server_env(root, secret_key, {"TRUSTED_PROXIES": "0", "LOGIN_FAILURES_PER_USERNAME": "1000"})
        with serve("messenger-direct", direct_env, log_dir) as server:
            base = f"http://{LOOPBACK}:{server.port}"
            attempt(rows, "rotating X-Forwarded-For", lambda: cases.login_rotating_xff(base, "secvictim", AUTH_RATE))

        proxied = {"TRUSTED_PROXIES": "1", "LOGIN_FAILURES_PER_USERNAME": str(LOGIN_FAILURES)}
        proxied_env = server_env(root, secret_key, proxied)
        with serve("messenger-proxied", proxied_env, log_dir) as server:
            base, port = f"http://{LOOPBACK}:{server.port}", server.port
            password = seeded["password"]
            attempt(rows, "per username", lambda: cases.login_per_username(base, "secvictim", password, LOGIN_FAILURES))
            attempt(rows, "admin login", lambda: cases.admin_login(base, "secadmin", LOGIN_FAILURES))
            attempt(rows, "framing headers", lambda: cases.framing_headers(base))
            attempt(rows, "docs page", lambda: cases.docs_page(base))
            attempt(rows, "metadata", lambda: cases.metadata(base, uploader))
            attempt(rows, "GIF bomb", lambda: cases.gif_bomb(base, uploader))
            attempt(rows, "upload RSS", lambda: cases.png_uploads_rss(base, uploader, server.pid))
            attempt(rows, "presence", lambda: cases.presence(base, port, seeded["users"]))
            attempt(rows, "flood", lambda: cases.flood_vs_sender(port, seeded, SOCKET_RATE))
    finally:
        stop_all()
        shutil.rmtree(root, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and logs/ go")
    args = parser.parse_args(argv)
    raise_nofile_limit()  # the flood's 100 sockets and more

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # run()'s `finally` stops the servers

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        rows = run(args.out)
    except KeyboardInterrupt:
        print("interrupted: the servers it started are stopped", file=sys.stderr)
        return 130
    report = table(rows)
    failed = sum(1 for row in rows if not row.passed)
    summary = f"{len(rows) - failed} of {len(rows)} pass, {time.monotonic() - started:.0f} s"
    print(report)
    print(f"\n{summary}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(f"{report}\n\n{summary}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
