"""Starting and stopping the servers under test: free loopback ports, readiness, clean shutdown.

Every process the bench starts is registered here and stopped by `stop_all()`, which run.py
calls from a `finally` and from its signal handlers, so Ctrl-C or an error leaves nothing behind.
"""

import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"

_running: list["Server"] = []


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def daphne_command(application: str, port: int) -> list[str]:
    """Daphne on loopback with a deep listen backlog (Twisted's default of 50 drops connect storms).

    -v 0 turns off the access log, which would otherwise format a line per connection in the
    process under test; errors still reach stderr through Django's logging.
    """
    endpoint = f"tcp:port={port}:interface={LOOPBACK}:backlog=4096"
    return [PYTHON, "-m", "daphne", "-v", "0", "-e", endpoint, application]


class Server:
    """One server process under test, its log file and how to tell that it is ready."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        env: dict[str, str],
        log_dir: Path,
        host: str = LOOPBACK,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.host = host  # where it listens, to tell that it is ready
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, ready_path: str | None = None, timeout: float = 60.0) -> "Server":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops the servers itself
        )
        log.close()
        _running.append(self)
        self._wait_ready(ready_path, timeout)
        return self

    def _wait_ready(self, ready_path: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if tcp_reachable(self.host, self.port):
                if ready_path is None:
                    return
                try:
                    with urllib.request.urlopen(f"http://{self.host}:{self.port}{ready_path}", timeout=5) as answer:
                        if answer.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=timeout)
        if self in _running:
            _running.remove(self)
        self.process = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    for server in list(reversed(_running)):
        with contextlib.suppress(Exception):
            server.stop()


def run_checked(command: Sequence[str], *, env: dict[str, str], log_path: Path, timeout: float = 900.0) -> None:
    """Run a helper command (migrate, seed) to completion, its output kept in a log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        result = subprocess.run(
            list(command), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} … failed ({result.returncode}); see {log_path}")


def base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "TESTING"}}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def messenger_env(
    *, data_dir: Path, database_url: str, redis_url: str, layer_prefix: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The messenger's environment as in production (DEBUG off, a random SECRET_KEY, loopback hosts),
    with access tokens that outlive a run (600 minutes; the default 5 would expire mid-run)."""
    return base_env(
        {
            "DJANGO_SETTINGS_MODULE": "messenger.settings",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "ALLOWED_HOSTS": f"{LOOPBACK},localhost",
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_PREFIX": layer_prefix,
            "ACCESS_TOKEN_MINUTES": "600",
            "LOG_LEVEL": "WARNING",
            **(extra or {}),
        }
    )
