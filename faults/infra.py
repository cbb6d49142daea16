"""The suite's own Redis, MariaDB, S3 API server and messenger, on free loopback ports, stopped by pid.

Nothing here touches the machine's shared MariaDB (3306) or Redis (6379): the suite starts a
redis-server and a mariadbd of its own in a temporary directory, and only those are killed,
paused and restarted. Every process goes through bench.procs.Server, so bench.procs.stop_all()
(called from run.py's `finally`) stops whatever is left.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from bench.procs import LOOPBACK, PYTHON, Server, free_port, messenger_env, run_checked

DATABASE = "messenger_faults"


def program(*names: str) -> str | None:
    """The first of `names` on PATH or in /usr/sbin (where Debian puts mariadbd), else None."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    return None


def missing_programs() -> list[str]:
    """What the suite needs on this machine and cannot find (it runs its own Redis and MariaDB)."""
    wanted = {
        "redis-server": ("redis-server",),
        "mariadbd": ("mariadbd", "mysqld"),
        "mariadb-install-db": ("mariadb-install-db", "mysql_install_db"),
    }
    return [label for label, names in wanted.items() if program(*names) is None]


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait (bounded) until `pid` has exited; True when it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return True
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        time.sleep(0.1)
    return False


def kill_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM these pids (processes this suite started), then SIGKILL the ones still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)


class OwnRedis:
    """A redis-server with no persistence on a free port; killed and started again on the same port."""

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.root = root
        self.log_dir = log_dir
        self.server: Server | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        command = [program("redis-server") or "redis-server", "--port", str(self.port), "--bind", LOOPBACK]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "no"]
        self.starts += 1
        server = Server(f"redis-{self.starts}", command, port=self.port, env=dict(os.environ), log_dir=self.log_dir)
        server.start(timeout=20)
        self.server = server  # once it answers: after a failed start the next experiment tries again

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash (no shutdown, no goodbye to clients)."""
        assert self.server is not None and self.server.process is not None
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=10)
        self.server.stop()
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class OwnMariaDB:
    """A mariadbd of our own: a fresh datadir, root without a password, TCP on a free loopback port."""

    def __init__(self, root: Path, log_dir: Path, also_bind: str = "") -> None:
        self.port = free_port()
        self.also_bind = also_bind  # another address to listen on (the cluster test's bridge)
        self.datadir = root / "mariadb"
        self.socket = root / "mariadb.sock"
        self.log_dir = log_dir
        self.server: Server | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"mysql://root@{LOOPBACK}:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def start(self) -> None:
        installer = program("mariadb-install-db", "mysql_install_db") or "mariadb-install-db"
        install = [installer, "--no-defaults", f"--datadir={self.datadir}"]
        install += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            install.append("--user=root")
        run_checked(install, env=dict(os.environ), log_path=self.log_dir / "mariadb-install.log", timeout=120)
        daemon = program("mariadbd", "mysqld") or "mariadbd"
        command = [daemon, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}"]
        binds = ",".join(filter(None, [LOOPBACK, self.also_bind]))  # (MariaDB 10.11: a list)
        command += [f"--port={self.port}", f"--bind-address={binds}", "--skip-log-bin", "--skip-name-resolve"]
        command += ["--innodb-buffer-pool-size=128M", "--max-connections=500", f"--pid-file={self.datadir}/pid"]
        command += ["--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"]
        if os.geteuid() == 0:
            command.append("--user=root")
        self.server = Server("mariadb", command, port=self.port, env=dict(os.environ), log_dir=self.log_dir)
        self.server.start(timeout=60)
        self.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", database="")

    def connect(self, database: str = DATABASE) -> Any:
        import MySQLdb

        return MySQLdb.connect(
            host=LOOPBACK, port=self.port, user="root", password="", database=database, connect_timeout=5
        )

    def execute(self, statement: str, *, database: str = DATABASE) -> None:
        connection = self.connect(database)
        try:
            connection.cursor().execute(statement)
        finally:
            connection.close()

    def stored_markers(self, prefix: str) -> dict[str, int]:
        """How many stored messages carry each marker that starts with `prefix` (the first word of content)."""
        connection = self.connect()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT content FROM chats_message WHERE content LIKE %s", (prefix + "%",))
            counts: dict[str, int] = {}
            for (content,) in cursor.fetchall():
                marker = content.split(" ", 1)[0]
                counts[marker] = counts.get(marker, 0) + 1
            return counts
        finally:
            connection.close()

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.paused = False

    def stop(self) -> None:
        self.resume()
        if self.server is not None:
            self.server.stop(timeout=30)
            self.server = None


class OwnS3:
    """An S3 API server of our own: moto's (`moto[server]`, buckets in its memory, gone when it stops).

    Listens on one address: loopback for the tests, the cluster bridge's address for app hosts in
    their namespaces (cluster/run.py). Its buckets take any key pair; the messenger signs requests
    with KEY_ID and SECRET_KEY all the same, as against a real server.
    """

    KEY_ID = "messenger-test"
    SECRET_KEY = "messenger-test-secret"
    REGION = "us-east-1"

    def __init__(self, log_dir: Path, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = free_port()
        self.log_dir = log_dir
        self.server: Server | None = None
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        command = [PYTHON, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self.server = Server(
            "moto-s3", command, port=self.port, env=dict(os.environ), log_dir=self.log_dir, host=self.host
        )
        self.server.start(ready_path="/moto-api/", timeout=60)

    def env(self, bucket: str) -> dict[str, str]:
        """The messenger's settings for `bucket` on this server (MEDIA_STORAGE=s3)."""
        return {
            "MEDIA_STORAGE": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": self.REGION,
            "AWS_ACCESS_KEY_ID": self.KEY_ID,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }

    def client(self) -> Any:
        """An S3 client of the harness's own (made once: a client takes near a second to make)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.REGION,
                aws_access_key_id=self.KEY_ID,
                aws_secret_access_key=self.SECRET_KEY,
            )
        return self._client

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [entry["Key"] for page in pages for entry in page.get("Contents", ())]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class Messenger:
    """`python -m messenger.serve --workers N` on a port that stays the same across restarts."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        self.env = env
        self.log_dir = log_dir
        self.workers = workers
        self.server: Server | None = None
        self.starts = 0
        self.worker_pids: list[int] = []

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def start(self) -> None:
        command = [PYTHON, "-m", "messenger.serve", "--workers", str(self.workers), "-v", "0"]
        command += ["-b", LOOPBACK, "-p", str(self.port)]
        self.starts += 1
        self.server = Server(f"messenger-{self.starts}", command, port=self.port, env=self.env, log_dir=self.log_dir)
        self.server.start(ready_path="/healthz", timeout=60)
        self.worker_pids = self.children()

    def children(self) -> list[int]:
        try:
            children = psutil.Process(self.pid).children(recursive=True)
            return [p.pid for p in children if p.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            return []

    def workers_now(self) -> list[int]:
        """The launcher's live daphne workers: its children that run messenger.serve or daphne."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.Error:
            return []
        found = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                command = " ".join(child.cmdline())
                if child.status() != psutil.STATUS_ZOMBIE and ("messenger.serve" in command or "daphne" in command):
                    found.append(child.pid)
        return found

    def worker_of(self, client_port: int) -> int | None:
        """The worker that holds the connection from the client's local `client_port`, if any."""
        for pid in self.workers_now():
            with contextlib.suppress(psutil.Error):
                for connection in psutil.Process(pid).net_connections(kind="tcp"):
                    if connection.raddr and connection.raddr.port == client_port and connection.laddr.port == self.port:
                        return pid
        return None

    def launcher_alive(self) -> bool:
        return self.server is not None and self.server.process is not None and self.server.process.poll() is None

    def wait_exit(self, timeout: float) -> int | None:
        """The launcher's exit code once it has exited within `timeout`, else None."""
        assert self.server is not None and self.server.process is not None
        try:
            return self.server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop the launcher and every worker it started (by pid; orphans would keep the port)."""
        pids = sorted(set(self.worker_pids) | set(self.children()))
        if self.server is not None:
            self.server.stop(timeout=15)
            self.server = None
        kill_pids([pid for pid in pids if psutil.pid_exists(pid)])
        self.worker_pids = []

    def restart(self) -> None:
        self.stop()
        self.start()


def server_env(data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    # The senders post a few frames a second each, far below the flood control's limits: its
    # defaults stay. Uploads are throttled at 60/min by default; the disk experiment needs a few.
    extra = {"LINK_PREVIEWS": "false", "THROTTLE_UPLOAD": "10000/min"}
    return messenger_env(
        data_dir=data_dir, database_url=database_url, redis_url=redis_url, layer_prefix="faults", extra=extra
    )


def migrate_and_seed(env: dict[str, str], log_dir: Path, seed_path: Path) -> dict[str, Any]:
    run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, log_path=log_dir / "migrate.log")
    run_checked([PYTHON, "-m", "faults.seed", "--out", str(seed_path)], env=env, log_path=log_dir / "seed.log")
    seeded: dict[str, Any] = json.loads(seed_path.read_text())
    return seeded


class TinyDisk:
    """A 2 MiB tmpfs mounted over the uploads directory (root only), unmounted afterwards."""

    SIZE = "2m"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False

    @staticmethod
    def available() -> str | None:
        """None when the suite can mount one, else why not."""
        if os.geteuid() != 0:
            return "not root: cannot mount a small tmpfs"
        if shutil.which("mount") is None or shutil.which("umount") is None:
            return "mount/umount not found"
        return None

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        command = ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs", str(self.path)]
        subprocess.run(command, check=True, capture_output=True, timeout=20)
        self.mounted = True

    def fill(self) -> int:
        """Write filler files until the filesystem is full (bounded: 64 MiB at most); bytes written."""
        written = 0
        # Big blocks, then small ones for the last bytes; unbuffered, so ENOSPC comes from os.write.
        for name, block, count in (("filler", 65536, 1024), ("filler2", 512, 1024)):
            descriptor = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for _ in range(count):
                    written += os.write(descriptor, b"\0" * block)
            except OSError:
                pass
            finally:
                os.close(descriptor)
        return written

    def free(self) -> None:
        for name in ("filler", "filler2"):
            with contextlib.suppress(OSError):
                (self.path / name).unlink()

    def unmount(self) -> None:
        if not self.mounted:
            return
        result = subprocess.run(["umount", str(self.path)], capture_output=True, timeout=20, check=False)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=20, check=False)
        self.mounted = False
