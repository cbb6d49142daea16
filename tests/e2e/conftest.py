"""A live daphne and headless Chromium for the browser end-to-end tests.

The server runs in a subprocess on a free port with its own DATA_DIR (SQLite by default). When
DATABASE_URL is set, the tests use a separate, freshly created database next to it so they never
touch pytest-django's test database; when REDIS_URL is set, a separate Redis database keeps the
e2e server's channel groups and caches apart from the other tests'.

E2E_SERVER_URL names a messenger that is already running instead (`make cluster-test` gives its
nginx, https://127.0.0.1:<port>, in front of three hosts): nothing is started, and Chromium accepts
that server's self-signed certificate. Only tests that need nothing but `e2e_server` fit it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_REDIS_DB = "15"
SERVER_URL = os.environ.get("E2E_SERVER_URL", "").rstrip("/")


def chromium_args(url: str) -> list[str]:
    """CHROMIUM_ARGS, and for an https:// server of a test's own the certificate made for it accepted."""
    return [*CHROMIUM_ARGS, "--ignore-certificate-errors"] if url.startswith("https://") else list(CHROMIUM_ARGS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = f"{CHROMIUM} is missing: the browser end-to-end tests need Debian's chromium package"
    for item in items:
        if "e2e" in item.keywords and not CHROMIUM.exists():
            item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def e2e_database_url(url: str) -> tuple[str, str]:
    """The same server as DATABASE_URL with a database of its own: (url, database name)."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'messenger'}_e2e_{os.getpid()}"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def mysql_admin(url: str, statement: str) -> None:
    import MySQLdb  # mysqlclient; only needed when DATABASE_URL points at MySQL/MariaDB

    parts = urlsplit(url)
    connection = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        passwd=parts.password or "",
    )
    try:
        connection.cursor().execute(statement)
    finally:
        connection.close()


def e2e_redis_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{E2E_REDIS_DB}"))


def wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"daphne did not become healthy within {timeout}s:\n{log.read_text()[-4000:]}")


def post_json(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def own_server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server of a test's own: SQLite in `data_dir` unless `extra` says otherwise."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DEBUG": "false",
        "TESTING": "false",
        "SECRET_KEY": f"e2e-{os.urandom(24).hex()}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "messenger.settings",
        "PYTHONUNBUFFERED": "1",
        # No page of a message is fetched unless a test asks (tests/e2e/test_link_previews.py).
        "LINK_PREVIEWS": "false",
        **extra,
    }
    env.pop("DATABASE_URL", None)
    if "REDIS_URL" not in extra:
        env.pop("REDIS_URL", None)
    return env


def venv_python() -> Path:
    python = ROOT / ".venv" / "bin" / "python"
    return python if python.exists() else Path(sys.executable)


def start_own_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`python -m messenger.serve` on 127.0.0.1:port, healthy when this returns (migrated first)."""
    subprocess.run(
        [str(venv_python()), "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [str(venv_python()), "-m", "messenger.serve", "-b", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_health(f"http://127.0.0.1:{port}", process, log)
    return process


def stop_own_server(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> int | None:
    """SIGTERM (the graceful shutdown), then SIGKILL after `timeout`; its exit code."""
    if process is None:
        return None
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a daphne serving the whole app (REST, WebSocket, the renderer at /)."""
    if SERVER_URL:
        yield SERVER_URL
        return
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = free_port()
    # The browser tests sign up some forty accounts from one address within a minute or two; the
    # sign-up and login limits are what tests/accounts and `make security` check, not these.
    env = own_server_env(data_dir, THROTTLE_AUTH="1000/min")
    database_name = None
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"], database_name = e2e_database_url(os.environ["DATABASE_URL"])
        mysql_admin(
            os.environ["DATABASE_URL"],
            f"CREATE DATABASE `{database_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = e2e_redis_url(os.environ["REDIS_URL"])

    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    log = data_dir / "daphne.log"
    process = None
    try:
        subprocess.run(
            [str(python), "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        # As `make run` and the Dockerfile do: the static files (Swagger UI's, the admin's) are served
        # from STATIC_ROOT when DEBUG is off.
        subprocess.run(
            [str(python), "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                # The launcher production uses: daphne with a token-redacting access log.
                [str(python), "-m", "messenger.serve", "-b", "127.0.0.1", "-p", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, log)
        yield url
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if database_name:
            mysql_admin(os.environ["DATABASE_URL"], f"DROP DATABASE IF EXISTS `{database_name}`")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope, not session: while Playwright's sync API is open it keeps an event loop
    # running on the main thread, and the asyncio tests that run after this module would fail
    # with "Runner.run() cannot be called from a running event loop".
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args(SERVER_URL)
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
