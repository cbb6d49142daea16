"""Peak RSS of a live server while N clients upload a large-but-small PNG at once.

    .venv/bin/python -m bench.upload_rss [--clients 16] [--megapixels 39] [--decodes 2] [--format PNG|WEBP]

Starts `python -m messenger.serve` on a free loopback port with a fresh SQLite DATA_DIR, registers
one user, sends N concurrent uploads of a solid-colour PNG or lossless WebP (126 KB / ~10 KB for
39 MP, ~160 MB decoded as RGBA) and samples the server's resident set (the launcher and its workers, with psutil) every
10 ms. Prints the RSS before, the peak and the answers' statuses. The server is stopped by its pid.
HTTP_QUEUE_SECONDS is raised so that every upload is answered rather than queued out with 503;
`--decodes 16` (UPLOAD_MAX_CONCURRENT_DECODES) is what the server did before the bound.
"""

import argparse
import contextlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import requests
from PIL import Image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def solid_image(megapixels: float, fmt: str) -> bytes:
    side = int((megapixels * 1_000_000) ** 0.5)
    buffer = io.BytesIO()
    options = {"compress_level": 9} if fmt == "PNG" else {"lossless": True, "quality": 0, "method": 0}
    Image.new("RGB", (side, side), (30, 90, 160)).save(buffer, fmt, **options)
    return buffer.getvalue()


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--megapixels", type=float, default=39)
    parser.add_argument("--decodes", type=int, default=2, help="UPLOAD_MAX_CONCURRENT_DECODES")
    parser.add_argument("--format", choices=["PNG", "WEBP"], default="PNG")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="upload-rss-"))
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DEBUG": "true",
        "THROTTLE_UPLOAD": "1000/min",
        "THROTTLE_AUTH": "1000/min",
        "HTTP_QUEUE_SECONDS": "120",
        "UPLOAD_DECODE_WAIT_SECONDS": "120",
        "UPLOAD_MAX_CONCURRENT_DECODES": str(args.decodes),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "messenger.serve", "-b", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        name = "rss" + uuid.uuid4().hex[:8]
        account = {"username": name, "password": "correct-horse-battery-9", "email": f"{name}@example.com"}
        r = requests.post(base + "/api/auth/register", json=account, timeout=10)
        r.raise_for_status()
        r = requests.post(base + "/api/auth/login", json=account, timeout=10)
        token = r.json()["access"]
        payload = solid_image(args.megapixels, args.format)  # the same bytes: deduped only after the checks
        payloads = [payload] * args.clients
        print(f"{args.clients} {args.format}s of {args.megapixels} MP, {len(payload) // 1024} KB each")
        process = psutil.Process(server.pid)
        time.sleep(1)
        before = tree_rss(process)
        peak = before
        statuses: list[int] = []
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(process))
                time.sleep(0.01)

        def send(data: bytes) -> None:
            answer = requests.post(
                base + "/api/attachments",
                files={"file": ("big", data, "application/octet-stream")},
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
            )
            statuses.append(answer.status_code)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        senders = [threading.Thread(target=send, args=(data,)) for data in payloads]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        done.set()
        sampler.join()
        megabyte = 1024 * 1024
        print(f"RSS before {before / megabyte:.0f} MB, peak {peak / megabyte:.0f} MB, {elapsed:.1f} s")
        print("statuses", sorted(statuses))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
