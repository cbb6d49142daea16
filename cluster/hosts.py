"""Three "hosts" on one machine: network namespaces on a bridge of the test's own subnet, one
messenger each; or, where namespaces cannot be made, three loopback addresses (127.0.0.2-4).

The bridge and namespaces are the test's own (names below), made at the start and deleted at the
end, also on failure; nothing else on the machine is touched. Traffic stays on the bridge and
loopback: the namespaces have no route beyond the subnet.
"""

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.procs import PYTHON, REPO

SUBNET = "10.213.0"  # the test's own /24
BRIDGE = "msgcl-br0"
GATEWAY = f"{SUBNET}.1"  # the bridge's address in the root namespace: MariaDB, Redis, sentinels
APP_PORT = 8000


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


class Network:
    """The bridge and `count` namespaces (msgcl-1 …) with 10.213.0.11 … on eth0; `fallback`:
    no namespaces, hosts on 127.0.0.2 … instead (said in the report)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.namespaces = [f"msgcl-{index}" for index in range(1, count + 1)]
        self.fallback = False
        self.made: list[str] = []  # what to delete: "ns:<name>", "link:<name>"

    @property
    def server_address(self) -> str:
        """Where the app hosts reach MariaDB and Redis."""
        return "127.0.0.1" if self.fallback else GATEWAY

    def address(self, index: int) -> str:
        return f"127.0.0.{index + 2}" if self.fallback else f"{SUBNET}.{index + 11}"

    def create(self, *, namespaces: bool = True) -> None:
        if not namespaces or os.geteuid() != 0 or not self._namespaces_work():
            self.fallback = True
            return
        self.delete_leftovers()
        ip("link", "add", BRIDGE, "type", "bridge")
        self.made.append(f"link:{BRIDGE}")
        ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for index, namespace in enumerate(self.namespaces):
            ip("netns", "add", namespace)
            self.made.append(f"ns:{namespace}")
            outer, inner = f"msgcl-v{index + 1}", f"msgcl-p{index + 1}"
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self.made.append(f"link:{outer}")  # (deleting one end deletes the pair)
            ip("link", "set", inner, "netns", namespace)
            ip("link", "set", outer, "master", BRIDGE)
            ip("link", "set", outer, "up")
            ip("-n", namespace, "link", "set", inner, "name", "eth0")
            ip("-n", namespace, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")

    def _namespaces_work(self) -> bool:
        probe = "msgcl-probe"
        ip("netns", "del", probe, check=False)
        made = ip("netns", "add", probe, check=False).returncode == 0
        if made:
            ip("netns", "del", probe, check=False)
        return made

    def delete_leftovers(self) -> None:
        """A previous run's, killed before its cleanup: the names are this test's own."""
        for namespace in self.namespaces:
            self._kill_namespace(namespace)
            ip("netns", "del", namespace, check=False)
        for index in range(self.count):
            ip("link", "del", f"msgcl-v{index + 1}", check=False)
        ip("link", "del", BRIDGE, check=False)

    def prefix(self, index: int) -> list[str]:
        """The command prefix that runs a program on host `index`."""
        return [] if self.fallback else ["ip", "netns", "exec", self.namespaces[index]]

    def _kill_namespace(self, namespace: str) -> None:
        found = ip("netns", "pids", namespace, check=False)
        for pid in found.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def delete(self) -> None:
        for item in reversed(self.made):
            kind, name = item.split(":", 1)
            if kind == "ns":
                self._kill_namespace(name)
                ip("netns", "del", name, check=False)
            else:
                ip("link", "del", name, check=False)
        self.made.clear()


class AppHost:
    """`python -m messenger.serve` on one host, its process group killed as a whole host dies."""

    def __init__(self, network: Network, index: int, env: dict[str, str], log_dir: Path, workers: int) -> None:
        self.network = network
        self.index = index
        self.env = env
        self.log_dir = log_dir
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return self.network.address(self.index)

    @property
    def name(self) -> str:
        return f"host{self.index + 1}"

    def start(self, timeout: float = 90.0) -> None:
        self.starts += 1
        command = [*self.network.prefix(self.index), PYTHON, "-m", "messenger.serve", "-v", "0"]
        command += ["--workers", str(self.workers), "-b", self.address, "-p", str(APP_PORT)]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{self.name}-{self.starts}.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_dir}")
            if self.healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not healthy within {timeout:.0f} s; see {self.log_dir}")

    def healthy(self) -> bool:
        with contextlib.suppress(OSError):
            url = f"http://{self.address}:{APP_PORT}/healthz"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        return False

    def kill(self) -> None:
        """SIGKILL every process of the host at once (its launcher, workers, spare), as a power cut."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left (workers, spare)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        self.process = None
