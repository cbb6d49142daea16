"""A Redis that fails over, of our own: a primary, a replica and three sentinels (Debian's
redis-sentinel, or redis-server --sentinel), on free ports, nothing kept, stopped by pid.

Used by tests/test_redis_sentinel.py (on loopback) and by the cluster test (cluster/run.py), where
every server also listens on the test bridge's address so the app hosts in their namespaces reach
it. The sentinels see the primary down after DOWN_AFTER_MS and promote the replica; what they name
primary is asked with SENTINEL GET-MASTER-ADDR-BY-NAME, as the server's clients do.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from faults.infra import program

MASTER = "messenger"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _answers(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ask(host: str, port: int, command: str) -> Any:
    """SENTINEL <command> <MASTER> of one sentinel, as redis-py parses it (strings decoded)."""
    import redis

    client = redis.Redis(host=host, port=port, socket_timeout=1, decode_responses=True)
    try:
        return client.execute_command("SENTINEL", command, MASTER)
    finally:
        client.close()


class OwnSentinelRedis:
    """Primary, replica and three sentinels. `host` is the address they announce and are reached
    at (the clients' view); `binds` the addresses they listen on (host first)."""

    def __init__(self, root: Path, log_dir: Path, host: str = "127.0.0.1", binds: tuple[str, ...] = ()) -> None:
        self.root = root
        self.log_dir = log_dir
        self.host = host
        self.binds = (host, *[bind for bind in binds if bind != host])
        self.data_ports = [_free_port(host), _free_port(host)]
        self.sentinel_ports = [_free_port(host) for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(self.host, port) for port in self.sentinel_ports]

    @property
    def sentinels_setting(self) -> str:
        """The REDIS_SENTINELS value."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinels)

    def _spawn(self, name: str, command: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def _wait_answering(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.host, port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis on {self.host}:{port} did not answer within {timeout:.0f} s; see {self.log_dir}")

    def _data_command(self, index: int) -> list[str]:
        port = self.data_ports[index]
        workdir = self.root / f"redis-{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        command = [program("redis-server") or "redis-server", "--port", str(port), "--bind", *self.binds]
        command += ["--save", "", "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "no"]
        command += ["--replica-announce-ip", self.host]
        if index == 1:
            command += ["--replicaof", self.host, str(self.data_ports[0])]
        return command

    def start(self) -> None:
        for index, port in enumerate(self.data_ports):
            self._spawn(f"redis-{port}", self._data_command(index))
            self._wait_answering(port)
        self._wait_replicated()
        for port in self.sentinel_ports:
            config = self.root / f"sentinel-{port}.conf"  # sentinel rewrites its config: a file of its own
            config.write_text(
                f"port {port}\nbind {' '.join(self.binds)}\nprotected-mode no\ndir {self.root}\n"
                f"sentinel announce-ip {self.host}\n"
                f"sentinel monitor {MASTER} {self.host} {self.data_ports[0]} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            sentinel = program("redis-sentinel")
            if sentinel:
                command = [sentinel, str(config)]
            else:
                command = [program("redis-server") or "redis-server", str(config), "--sentinel"]
            self._spawn(f"sentinel-{port}", command)
            self._wait_answering(port)
        self._wait_sentinels_agree()

    def _wait_replicated(self, timeout: float = 15.0) -> None:
        import redis

        replica = redis.Redis(host=self.host, port=self.data_ports[1], socket_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if replica.info("replication").get("master_link_status") == "up":
                    return
            time.sleep(0.1)
        raise RuntimeError("the replica did not sync with the primary")

    def _wait_sentinels_agree(self, timeout: float = 20.0) -> None:
        """Until every sentinel knows the replica and the two other sentinels (a failover needs them)."""
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = 0
            for host, port in self.sentinels:
                with contextlib.suppress(redis.RedisError):
                    state = _ask(host, port, "MASTER")
                    if int(state.get("num-slaves", 0)) >= 1 and int(state.get("num-other-sentinels", 0)) >= 2:
                        ready += 1
            if ready == len(self.sentinels):
                return
            time.sleep(0.2)
        raise RuntimeError("the sentinels did not find each other and the replica")

    def primary(self) -> tuple[str, int] | None:
        """What a majority of answering sentinels name primary, or None."""
        import redis

        named: list[tuple[str, int]] = []
        for host, port in self.sentinels:
            with contextlib.suppress(redis.RedisError, TypeError):
                address = _ask(host, port, "GET-MASTER-ADDR-BY-NAME")
                if address:
                    named.append((str(address[0]), int(address[1])))
        for address in named:
            if named.count(address) >= 2:
                return address
        return None

    def kill_primary(self) -> int:
        """SIGKILL the current primary (as in a crash); its port."""
        address = self.primary()
        if address is None:
            raise RuntimeError("no primary named by the sentinels")
        process = self.processes[f"redis-{address[1]}"]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return address[1]

    def wait_promoted(self, old_port: int, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name another primary that answers (bounded by `timeout`)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            address = self.primary()
            if address is not None and address[1] != old_port and _answers(self.host, address[1]):
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"no failover within {timeout:.0f} s")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)
        self.processes.clear()
