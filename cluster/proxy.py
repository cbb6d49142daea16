"""nginx in front of the app hosts, from deploy/nginx/messenger.conf.template, with a self-signed
certificate made for the run; started by pid, stopped by pid."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "deploy" / "nginx" / "messenger.conf.template"
# The test's nginx names the app host that answered (never a production header: it tells clients
# the inside addresses); cluster/acceptance.py tells by it which host a socket landed on.
UPSTREAM_HEADER = "X-Messenger-Upstream"


def nginx_program() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render(values: dict[str, str]) -> str:
    """The template with the ${MESSENGER_*} values filled in, as envsubst fills it (nginx's own
    $variables are not in `values` and stay as they are). A value missing is an error."""
    text = TEMPLATE.read_text()
    found = (named or braced for _, named, braced, _ in Template.pattern.findall(text))
    wanted = {name for name in found if name.startswith("MESSENGER_")}
    missing = wanted - values.keys()
    if missing:
        raise KeyError(f"template values missing: {sorted(missing)}")
    return Template(text).safe_substitute(values)


def self_signed(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """A throwaway certificate and key for `names` (DNS names or IP addresses), valid a day."""
    cert, key = directory / "proxy.crt", directory / "proxy.key"
    alt = ",".join(f"IP:{name}" if name.replace(".", "").isdigit() or ":" in name else f"DNS:{name}" for name in names)
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key)),
            *("-out", str(cert), "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={alt}"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    key.chmod(0o600)
    return cert, key


def main_config(root: Path, site: str, *, name_upstream: bool = False) -> Path:
    """A whole nginx.conf around the site file, everything under `root` (Debian's layout otherwise).
    `name_upstream`: every answer carries UPSTREAM_HEADER (the template's `location /` adds no
    header of its own, so it inherits this one; the WebSocket's 101 too)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.conf").write_text(site)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "temp" / name).mkdir(parents=True, exist_ok=True)
    mime = Path("/etc/nginx/mime.types")
    config = root / "nginx.conf"
    config.write_text(
        f"worker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
        # Run as root here (the test's own processes); Debian's runs its workers as www-data.
        + ("user root root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 8192; }\n"
        "http {\n"
        + (f"    include {mime};\n" if mime.exists() else "")
        + "    default_type application/octet-stream;\n"
        f"    access_log {root}/access.log;\n"
        + (f"    add_header {UPSTREAM_HEADER} $upstream_addr always;\n" if name_upstream else "")
        + f"    client_body_temp_path {root}/temp/client_body;\n    proxy_temp_path {root}/temp/proxy;\n"
        f"    fastcgi_temp_path {root}/temp/fastcgi;\n    uwsgi_temp_path {root}/temp/uwsgi;\n"
        f"    scgi_temp_path {root}/temp/scgi;\n"
        f"    include {root}/site.conf;\n"
        "}\n"
    )
    return config


def check(config: Path) -> subprocess.CompletedProcess[str]:
    program = nginx_program()
    assert program is not None
    return subprocess.run(
        [program, "-t", "-c", str(config), "-p", str(config.parent)], capture_output=True, text=True, timeout=30
    )


class Nginx:
    """nginx -g 'daemon off;' in the foreground of a process of ours."""

    def __init__(self, config: Path, port: int, host: str = "127.0.0.1") -> None:
        self.config = config
        self.port = port
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        program = nginx_program()
        assert program is not None
        log = (self.config.parent / "nginx.out").open("ab")
        self.process = subprocess.Popen(
            [program, "-c", str(self.config), "-p", str(self.config.parent), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}; see {self.config.parent}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.3):
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None
