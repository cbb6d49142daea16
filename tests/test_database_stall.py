"""A live server on a MariaDB of its own that the test stops (SIGSTOP) and resumes (SIGCONT).

While the database is stalled: every REST request, login and refresh answers 503 JSON with
Retry-After within seconds, a socket connect is closed with 4503, /healthz answers 503 within 2 s
naming the database, and the server's threads do not pile up. Afterwards it serves again at
once, holding no more connections than its threads. And a healthy server serves 250 concurrent GETs with no error.

Only this test's own mariadbd is stopped, never the machine's: it is started here on a free
loopback port from a fresh data directory, and skipped when mariadbd is not installed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARIADBD = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else "")
INSTALL_DB = shutil.which("mariadb-install-db") or ""
HTTP_THREADS = 4

pytestmark = pytest.mark.skipif(
    not (MARIADBD and INSTALL_DB), reason="needs mariadbd and mariadb-install-db to run a MariaDB it may stop"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(
    method: str, url: str, *, token: str = "", body: dict[str, Any] | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], Any, float]:
    """Status, headers, JSON body and seconds taken."""
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(raw or b"null")
    except ValueError:
        parsed = raw
    return status, headers, parsed, elapsed


def websocket_outcome(url: str) -> tuple[str, float]:
    """How a socket connect ended (a close code, a refusal, or open) and when."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    async def attempt() -> str:
        try:
            async with connect(url, open_timeout=30, origin="http://127.0.0.1") as socket_:  # type: ignore[arg-type]
                try:
                    await asyncio.wait_for(socket_.recv(), timeout=30)
                except ConnectionClosed as closed:
                    return f"closed {closed.rcvd.code if closed.rcvd else None}"
                return "open"
        except InvalidStatus as refused:
            return f"refused {refused.response.status_code}"
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else None}"

    started = time.monotonic()
    outcome = asyncio.run(attempt())
    return outcome, time.monotonic() - started


class StallableMariaDB:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        data = folder / "data"
        subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        command = [MARIADBD, "--no-defaults", f"--datadir={data}", f"--socket={folder / 'sock'}"]
        command += [f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-log-bin"]
        command += ["--innodb-buffer-pool-size=16M", f"--pid-file={folder / 'pid'}"]
        if os.geteuid() == 0:
            command.append("--user=root")
        self.log = open(folder / "mariadbd.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"mysql://root@127.0.0.1:{self.port}/stall"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sql("CREATE DATABASE IF NOT EXISTS stall CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                break
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.3)

    def sql(self, statement: str) -> Any:
        import MySQLdb

        db = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=3)
        try:
            cursor = db.cursor()
            cursor.execute(statement)
            return cursor.fetchall()
        finally:
            db.close()

    def connections(self) -> int:
        """Client connections, not counting the one asking."""
        return int(self.sql("SHOW GLOBAL STATUS LIKE 'Threads_connected'")[0][1]) - 1

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


class Server:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_CURRENT_TEST"}},
            "DATABASE_URL": database_url,
            "SECRET_KEY": "stall-test-" + "x" * 40,
            "DEBUG": "false",
            "TESTING": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATA_DIR": str(data_dir),
            "LOG_LEVEL": "ERROR",
            "HTTP_THREADS": str(HTTP_THREADS),
            "THROTTLE_AUTH": "1000/min",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True, timeout=300
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "messenger.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http("GET", f"{self.url}/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the server did not come up")
            time.sleep(0.3)

    def threads(self) -> int:
        return int(psutil.Process(self.process.pid).num_threads())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[StallableMariaDB]:
    db = StallableMariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        yield db
    finally:
        db.stop()


@pytest.fixture(scope="module")
def server(database, tmp_path_factory) -> Iterator[Server]:
    live = Server(database.url, tmp_path_factory.mktemp("server-data"))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def account(server) -> dict[str, str]:
    credentials = {"username": "staller", "email": "staller@example.com", "password": "a long passphrase 42"}
    status, _, body, _ = http("POST", f"{server.url}/api/auth/register", body=credentials)
    assert status == 201, body
    return {**credentials, "access": body["access"], "refresh": body["refresh"]}


def test_a_healthy_server_serves_250_concurrent_gets_with_no_error(server, database, account):
    # when
    with ThreadPoolExecutor(max_workers=250) as pool:
        started = time.monotonic()
        me = f"{server.url}/api/auth/me"
        results = list(pool.map(lambda _: http("GET", me, token=account["access"]), range(250)))
        elapsed = time.monotonic() - started
    # then: all served, on at most HTTP_THREADS connections (+1 for a health check, +1 for the realtime executor)
    statuses = [status for status, *_ in results]
    assert statuses.count(200) == 250, sorted(set(statuses))
    assert database.connections() <= HTTP_THREADS + 2
    print(f"250 concurrent GETs: {elapsed:.2f} s, slowest {max(r[3] for r in results):.2f} s")


def test_a_stalled_database_gives_503_within_seconds_and_healthz_within_2_s(server, database, account):
    # given
    assert http("GET", f"{server.url}/api/auth/me", token=account["access"])[0] == 200
    threads_before = server.threads()
    database.pause()
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            # when: a burst of REST requests, a login, a refresh and health checks, all during the stall
            rest = [pool.submit(http, "GET", f"{server.url}/api/chats", token=account["access"]) for _ in range(40)]
            login = pool.submit(
                http,
                "POST",
                f"{server.url}/api/auth/login",
                body={"username": account["username"], "password": account["password"]},
            )
            refresh = pool.submit(http, "POST", f"{server.url}/api/auth/refresh", body={"refresh": account["refresh"]})
            socket_connect = pool.submit(
                websocket_outcome, f"ws://127.0.0.1:{server.port}/ws/?token={account['access']}"
            )
            health = []
            for _ in range(3):
                health.append(http("GET", f"{server.url}/healthz"))
                time.sleep(0.5)
            peak_threads = server.threads()
            answers = [future.result(timeout=60) for future in [*rest, login, refresh]]
        # then
        for status, _, body, seconds in health:
            assert status == 503, body
            assert body["database"] == "down"
            assert seconds < 2.5, seconds
        for status, headers, body, seconds in answers:
            assert status == 503, body
            assert headers["Retry-After"] == "5"
            assert set(body) == {"detail"}
            assert seconds < 15, seconds
        assert peak_threads <= threads_before + 4, (threads_before, peak_threads)
        socket_answer, socket_seconds = socket_connect.result(timeout=60)
        assert socket_answer == "closed 4503" and socket_seconds < 15, (socket_answer, socket_seconds)
        print(
            f"stalled: REST/login/refresh 503 in at most {max(a[3] for a in answers):.1f} s; "
            f"/healthz in at most {max(h[3] for h in health):.2f} s; threads {threads_before} -> {peak_threads}; "
            f"a socket connect: {socket_answer} after {socket_seconds:.1f} s"
        )
    finally:
        database.resume()
    # and then: served again within seconds, holding no more connections than its threads
    deadline = time.monotonic() + 20
    while http("GET", f"{server.url}/api/auth/me", token=account["access"])[0] != 200:
        assert time.monotonic() < deadline, "not serving again 20 s after the database came back"
        time.sleep(0.5)
    assert http("GET", f"{server.url}/healthz")[0] == 200
    after = database.connections()
    assert after <= HTTP_THREADS + 2
    print(f"database connections once it is back: {after}")
