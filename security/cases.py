"""The abuse cases, each replayed over HTTP or WebSocket against a live server; one Row per check.

Every case takes the server's base URL (and the seeded ids and tokens) and returns rows of
(case, expected, observed, passed). The hostile files are tests/media/images.py's builders, the
ones the media tests use; the RSS sampling and the big solid PNG are bench/upload_rss.py's.
"""

import asyncio
import io
import json
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
import requests
from PIL import ExifTags, Image

from bench.load import Socket, open_socket
from bench.upload_rss import solid_image, tree_rss
from tests.media import images

TIMEOUT = 30.0
MEGABYTE = 1024 * 1024
RSS_BOUND_MB = 400  # 16 uploads of 39 MP: 134 MB measured with the bounded decoder, 1195 MB before it
RSS_SAMPLE_SECONDS = 0.05
FLOOD_SOCKETS = 100
FLOOD_SECONDS = 8.0
ACK_P99_BOUND_MS = 100.0
MEASURED_SENDS_PER_SECOND = 10


@dataclass
class Row:
    case: str
    expected: str
    observed: str
    passed: bool


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def runs(statuses: list[int]) -> str:
    """[401, 401, 429] → "401 x 2, 429 x 1": the answers in order, repeats counted."""
    parts: list[str] = []
    previous, count = None, 0
    for status in [*statuses, None]:
        if status == previous:
            count += 1
            continue
        if previous is not None:
            parts.append(f"{previous} x {count}")
        previous, count = status, 1
    return ", ".join(parts)


# Logins -------------------------------------------------------------------------------------


def rotating_forwarded_for(index: int) -> str:
    return f"203.0.{index // 250}.{index % 250 + 1}"


def api_login_attempts(base: str, username: str, passwords: list[str]) -> list[int]:
    """One login a password, in order, each with an X-Forwarded-For of its own; the statuses."""
    statuses = []
    for index, password in enumerate(passwords):
        answer = requests.post(
            f"{base}/api/auth/login",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": rotating_forwarded_for(index)},
            timeout=TIMEOUT,
        )
        statuses.append(answer.status_code)
    return statuses


def login_rotating_xff(base: str, username: str, rate: int) -> Row:
    """TRUSTED_PROXIES=0: a new X-Forwarded-For on each attempt is still one client (its socket's address)."""
    attempts = rate + 5
    statuses = api_login_attempts(base, username, ["wrong"] * attempts)
    expected = [401] * rate + [429] * 5
    return Row(
        f"{attempts} wrong passwords, a new X-Forwarded-For each (TRUSTED_PROXIES=0)",
        runs(expected) + " (per address)",
        runs(statuses),
        statuses == expected,
    )


def login_per_username(base: str, username: str, password: str, limit: int) -> Row:
    """TRUSTED_PROXIES=1: each attempt from its own address; the username's failures still add up."""
    passwords = ["wrong"] * (limit + 4) + [password]
    statuses = api_login_attempts(base, username, passwords)
    expected = [401] * limit + [429] * 5
    return Row(
        f"{limit + 4} wrong passwords from {limit + 5} addresses, then the right one (TRUSTED_PROXIES=1)",
        runs(expected) + " (the right one too)",
        runs(statuses),
        statuses == expected,
    )


def admin_login(base: str, username: str, limit: int) -> Row:
    """The admin's login form, with its CSRF token, from a new address each time (TRUSTED_PROXIES=1).

    The CSRF cookie is Secure (DEBUG off) and this is plain http, so it is sent by hand."""
    page = requests.get(f"{base}/admin/login/", timeout=TIMEOUT)
    cookie = page.cookies.get("csrftoken") or ""
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    token = match.group(1) if match else ""
    statuses = []
    for index in range(limit + 5):
        answer = requests.post(
            f"{base}/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": "wrong", "next": "/admin/"},
            headers={"Cookie": f"csrftoken={cookie}", "X-Forwarded-For": rotating_forwarded_for(1000 + index)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        statuses.append(answer.status_code)
    expected = [200] * limit + [429] * 5
    return Row(
        f"/admin/login/ (CSRF token), {limit + 5} wrong passwords from as many addresses",
        runs(expected) + " (200: the form again)",
        runs(statuses) if cookie and token else "no CSRF token on the form",
        statuses == expected,
    )


# Framing headers ------------------------------------------------------------------------------


def framing_headers(base: str) -> list[Row]:
    rows = []
    for path in ("/", "/js/app.js"):
        answer = requests.get(base + path, timeout=TIMEOUT)
        frame = answer.headers.get("X-Frame-Options", "")
        policy = answer.headers.get("Content-Security-Policy", "")
        ancestors = "frame-ancestors 'none'" in policy
        rows.append(
            Row(
                f"GET {path}: framing headers",
                "X-Frame-Options: DENY; CSP with frame-ancestors 'none'",
                f"{answer.status_code}; X-Frame-Options: {frame or '-'}; "
                f"frame-ancestors 'none' {'present' if ancestors else 'absent'}",
                answer.status_code == 200 and frame == "DENY" and ancestors,
            )
        )
    return rows


def external_hosts(html: str) -> set[str]:
    """Hosts other than the server's own that the page's URLs name (src, href, url(), absolute links)."""
    hosts = set(re.findall(r"(?:https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,}|[0-9.]+:[0-9]+)", html))
    return {host for host in hosts if not host.startswith(("127.0.0.1", "localhost"))}


def docs_page(base: str) -> Row:
    answer = requests.get(base + "/api/docs/", timeout=TIMEOUT)
    hosts = external_hosts(answer.text)
    return Row(
        "GET /api/docs/: no external host",
        "200, no URL to another host",
        f"{answer.status_code}; external hosts: {', '.join(sorted(hosts)) or 'none'}",
        answer.status_code == 200 and not hosts,
    )


# Metadata -------------------------------------------------------------------------------------


def upload(base: str, token: str, data: bytes, name: str) -> requests.Response:
    return requests.post(
        f"{base}/api/attachments",
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
        timeout=120,
    )


def served(base: str, token: str, data: bytes, name: str) -> tuple[int, bytes]:
    """Upload `data`; the status and the bytes the server then serves for it (b"" unless 201)."""
    answer = upload(base, token, data, name)
    if answer.status_code != 201:
        return answer.status_code, b""
    file = requests.get(base + answer.json()["url"], headers=bearer(token), timeout=TIMEOUT)
    return answer.status_code, file.content if file.status_code == 200 else b""


def location_left(data: bytes) -> list[str]:
    """What of a location survives in served bytes: a GPS IFD, an IFD1, XMP GPS, the marker string."""
    found = []
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    if exif.get_ifd(ExifTags.IFD.GPSInfo) or ExifTags.IFD.GPSInfo in exif:
        found.append("GPS IFD")
    if exif.get_ifd(ExifTags.IFD.IFD1):
        found.append("IFD1")
    if b"exif:GPS" in data:
        found.append("XMP exif:GPS")
    if images.SECRET_PLACE in data:
        found.append("the GPS text")
    return found


def metadata(base: str, token: str) -> list[Row]:
    rows = []
    for fmt in ("JPEG", "PNG", "WEBP"):
        for places in (("IFD0", "IFD1"), ("IFD1",)):
            exif = images.exif_with_gps_in(*places)
            place = " and ".join(places)
            status, data = served(base, token, images.hostile(fmt, exif), f"gps.{fmt.lower()}")
            left = location_left(data) if data else ["nothing served"]
            rows.append(
                Row(
                    f"{fmt}, GPS in EXIF {place} and in XMP: the served bytes",
                    "201; no GPS IFD, no IFD1, no exif:GPS",
                    f"{status}; {', '.join(left) or 'none of them'}",
                    status == 201 and not left,
                )
            )
    trailing = b"AFTER THE TRAILER " + images.SECRET_PLACE
    status, data = served(base, token, images.hostile_gif(trailing=trailing), "xmp.gif")
    left = []
    if data:
        if b"XMP DataXMP" in data or b"exif:GPS" in data:
            left.append("XMP")
        if not data.endswith(b"\x3b") or b"AFTER THE TRAILER" in data:
            left.append("bytes after the trailer")
        if images.SECRET_PLACE in data:
            left.append("the GPS text")
    rows.append(
        Row(
            "GIF with XMP (GPS) and bytes after its trailer: the served bytes",
            "201; no XMP, ends at the trailer",
            f"{status}; {', '.join(left) or 'none of them'}" if data else f"{status}; nothing served",
            status == 201 and bool(data) and not left,
        )
    )
    return rows


# Decompression bombs --------------------------------------------------------------------------


def gif_bomb(base: str, token: str) -> Row:
    data = images.gif_declaring(6300, 6300, 3000)
    started = time.monotonic()
    answer = upload(base, token, data, "bomb.gif")
    elapsed = time.monotonic() - started
    return Row(
        f"GIF of 39.7 MP x 3,000 frames ({len(data) // 1000} KB)",
        "400",
        f"{answer.status_code} in {elapsed * 1000:.0f} ms",
        answer.status_code == 400,
    )


def png_uploads_rss(base: str, token: str, server_pid: int, clients: int = 16) -> Row:
    """`clients` concurrent uploads of a 39 MP solid PNG; the server's peak RSS (its process tree)."""
    payload = solid_image(39, "PNG")
    process = psutil.Process(server_pid)
    before = peak = tree_rss(process)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process))
            time.sleep(RSS_SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(lambda i: upload(base, token, payload, f"big{i}.png").status_code, range(clients)))
        time.sleep(0.3)
    finally:
        done.set()
        sampler.join()
    return Row(
        f"{clients} concurrent PNG uploads of 39 MP ({len(payload) // 1000} KB each)",
        f"all answered; peak RSS < {RSS_BOUND_MB} MB",
        f"{runs(sorted(statuses))}; RSS {before / MEGABYTE:.0f} MB before, peak {peak / MEGABYTE:.0f} MB",
        peak < RSS_BOUND_MB * MEGABYTE and all(status == 201 for status in statuses),
    )


# Presence -------------------------------------------------------------------------------------


def presence(base: str, port: int, users: list[dict[str, Any]]) -> Row:
    """sec3 is online (a socket open); sec4 shares no chat with it, sec2 does. Both search for it."""
    target, contact, stranger = users[3], users[2], users[4]

    def seen_by(token: str) -> Any:
        answer = requests.get(
            f"{base}/api/users/search", params={"q": target["username"]}, headers=bearer(token), timeout=TIMEOUT
        )
        for found in answer.json()["results"] if answer.status_code == 200 else []:
            if found.get("id") == target["id"]:
                return found.get("is_online")
        return "not found"

    async def observe() -> tuple[Any, Any]:
        sock = await open_socket(socket_url(port, target["token"]), origin(port), lambda _: None, timeout=10)
        try:
            loop = asyncio.get_running_loop()
            deadline = time.monotonic() + 5
            while True:  # presence is recorded just after the connect: wait (bounded) for the contact to see it
                by_contact = await loop.run_in_executor(None, seen_by, contact["token"])
                if by_contact is True or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            by_stranger = await loop.run_in_executor(None, seen_by, stranger["token"])
            return by_contact, by_stranger
        finally:
            sock.close()

    by_contact, by_stranger = asyncio.run(observe())
    return Row(
        "user search for an online user who shares no chat with the caller",
        "is_online: null (a contact: true)",
        f"is_online: {json.dumps(by_stranger)} (a contact: {json.dumps(by_contact)})",
        by_stranger is None and by_contact is True,
    )


# A flood on one user's sockets vs another user's sends ----------------------------------------


def socket_url(port: int, token: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/?token={token}"


def origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _flood(
    port: int, seeded: dict[str, Any], rate: int, sockets: int, seconds: float
) -> tuple[list[float], int, int, int]:
    """`sockets` sockets of sec0 send `rate` frames a second each into its group for
    `seconds`, while sec2 sends MEASURED_SENDS_PER_SECOND into its own group on one socket and
    times each send to its message.ack. Returns the latencies (ms; an ack that never came counts as
    the whole window), the flood frames sent, the flood sockets closed early, and the unacked sends."""
    flooder, measured = seeded["users"][0], seeded["users"][2]
    sent_at: dict[str, float] = {}
    latencies: dict[str, float] = {}

    def on_measured(data: bytes) -> None:
        frame = json.loads(data)
        if frame.get("type") == "message.ack" and frame.get("client_id") in sent_at:
            latencies[frame["client_id"]] = (time.monotonic() - sent_at[frame["client_id"]]) * 1000

    flood_sockets: list[Socket] = []
    for _ in range(sockets):
        url = socket_url(port, flooder["token"])
        flood_sockets.append(await open_socket(url, origin(port), lambda _: None, timeout=10))
    probe = await open_socket(socket_url(port, measured["token"]), origin(port), on_measured, timeout=10)
    flood_sent = 0
    tick = 1 / rate
    every = max(1, rate // MEASURED_SENDS_PER_SECOND)
    started = time.monotonic()
    step = 0
    while time.monotonic() - started < seconds:
        for index, sock in enumerate(flood_sockets):
            if sock.is_open:
                frame = {"type": "message.send", "chat_id": seeded["flood_chat"], "content": "flood"}
                sock.send_text(json.dumps({**frame, "client_id": f"f{index}-{step}"}))
                flood_sent += 1
        if step % every == 0:
            client_id = f"m{step}"
            sent_at[client_id] = time.monotonic()
            frame = {"type": "message.send", "chat_id": seeded["measured_chat"], "content": "measured"}
            probe.send_text(json.dumps({**frame, "client_id": client_id}))
        step += 1
        await asyncio.sleep(max(0.0, started + step * tick - time.monotonic()))
    closed = sum(1 for sock in flood_sockets if not sock.is_open)
    deadline = time.monotonic() + 2.0
    while len(latencies) < len(sent_at) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for sock in [*flood_sockets, probe]:
        sock.close()
    unacked = len(sent_at) - len(latencies)
    window = (time.monotonic() - started) * 1000
    return [latencies.get(client_id, window) for client_id in sent_at], flood_sent, closed, unacked


def flood_vs_sender(port: int, seeded: dict[str, Any], rate: int) -> Row:
    """The same sends timed first without the flood (2 s), for scale, then beside it."""
    alone, _, _, _ = asyncio.run(_flood(port, seeded, rate, 0, 2.0))
    wall, cpu = time.monotonic(), time.process_time()
    latencies, flood_sent, closed, unacked = asyncio.run(_flood(port, seeded, rate, FLOOD_SOCKETS, FLOOD_SECONDS))
    client_cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
    p99 = percentile(latencies, 0.99)
    return Row(
        f"{FLOOD_SOCKETS} sockets of one user at {rate} frames/s each ({FLOOD_SECONDS:.0f} s) vs another user's sends",
        f"the other user's send→ack p99 < {ACK_P99_BOUND_MS:.0f} ms",
        f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms of {len(latencies)} sends "
        f"({unacked} unacked; alone: p99 {percentile(alone, 0.99):.0f} ms); "
        f"{flood_sent} flood frames, {closed} flood sockets closed; the suite's own CPU {client_cpu:.0%}",
        p99 < ACK_P99_BOUND_MS and unacked == 0,
    )
