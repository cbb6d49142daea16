"""The contract and the browser client through the front proxy (`make cluster-test`, after the faults).

Three rows for the harness's table, everything through https://127.0.0.1:<nginx> only:

- **contract**: two people registered, signed in and refreshed; a direct chat; their sockets on two
  different app hosts (told apart by the test nginx's UPSTREAM_HEADER); a message posted over REST
  and one sent over a socket reach the other host's socket; a bad frame gets an `error` frame and the
  socket stays; catch-up with `?since=` gives exactly what a closed socket missed; an image uploaded
  on one host is served (nginx, X-Accel-Redirect) to the other person, never without a token; and
  the auth rate limit counts each real client address (nginx's X-Forwarded-For entry) apart. These
  requests come from loopback source addresses of their own (CLIENT, OTHER_CLIENT): to nginx,
  clients other than the load's and the browser's (127.0.0.1).
- **e2e flows**: tests/e2e/test_messenger.py's sign-up, search, live messages both ways, reload and
  dropped-socket tests, run by pytest against the proxy (E2E_SERVER_URL, tests/e2e/conftest.py).
- **browser across hosts**: two Chromium users whose sockets are on different hosts (read from the
  WebSocket handshake through the DevTools protocol) talk live both ways; the host holding one of
  them is SIGKILLed: that client reconnects through nginx to another host and shows what was sent
  meanwhile exactly once; the host is started again.

Every wait is bounded (EVENT_WAIT, the pytest run's E2E_TIMEOUT).
"""

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from bench.procs import PYTHON, REPO
from cluster.hosts import APP_PORT, AppHost
from cluster.proxy import UPSTREAM_HEADER
from faults.accounting import Row
from faults.experiments import multipart_png, png
from faults.load import log

CLIENT = "127.0.0.21"  # the contract's requests and sockets come from here …
OTHER_CLIENT = "127.0.0.22"  # … and the second client of the rate-limit check from here
PASSWORD = "Quiet-Harbor-2048"
EVENT_WAIT = 10.0  # seconds an event may take to arrive
CAUGHT_UP = 3  # messages sent while a socket is closed (contract) or its host is dead (browser)
E2E_TESTS = "find_each_other or live_both_ways or reload_keeps or dropped_socket"
E2E_TIMEOUT = 180.0  # seconds the pytest run may take at most
RECONNECT_WAIT_MS = 40_000  # the browser client's backoff after a dead host, and the catch-up


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Proxy:
    """nginx's port and the trust its certificate needs; the hosts by the address nginx names."""

    port: int
    tls: ssl.SSLContext
    hosts: list[AppHost]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def host_named(self, upstream: str) -> AppHost | None:
        """The host of an UPSTREAM_HEADER value (`10.213.0.11:8000`; after a retry `a, b`: the last)."""
        address = upstream.split(",")[-1].strip()
        return next((host for host in self.hosts if f"{host.address}:{APP_PORT}" == address), None)


class Client:
    """Requests and sockets to nginx from one loopback source address: to nginx, one client."""

    def __init__(self, proxy: Proxy, source: str) -> None:
        self.proxy = proxy
        self.source = source

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Content-Type": content_type, **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.proxy.port, timeout=EVENT_WAIT, context=self.proxy.tls, source_address=(self.source, 0)
        )
        try:
            connection.request(method, path, body=data, headers=sent)
            answer = connection.getresponse()
            return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    async def socket(self, token: str) -> tuple[ClientConnection, str]:
        """A `/ws/` socket and the upstream nginx sent it to."""
        socket = await connect(
            f"wss://127.0.0.1:{self.proxy.port}/ws/?token={token}",
            ssl=self.proxy.tls,
            origin=Origin(self.proxy.url),
            local_addr=(self.source, 0),
            open_timeout=EVENT_WAIT,
        )
        assert socket.response is not None
        return socket, socket.response.headers.get(UPSTREAM_HEADER, "")


async def next_frame(socket: ClientConnection, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first frame `wanted` picks within EVENT_WAIT (presence, typing … pass by), else None."""
    deadline = time.monotonic() + EVENT_WAIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(socket.recv(), left))
        except (TimeoutError, ValueError):
            return None
        if wanted(frame):
            return dict(frame)
    return None


def created(message_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("type") == "message.created" and frame["message"]["id"] == message_id


# The contract ---------------------------------------------------------------------------------


async def contract(proxy: Proxy, auth_rate: int) -> Row:
    row = Row("acceptance: REST + WebSocket contract through the proxy")
    client, other = Client(proxy, CLIENT), Client(proxy, OTHER_CLIENT)
    suffix = uuid.uuid4().hex[:6]

    def call(*args: Any, **kwargs: Any) -> Any:
        return asyncio.to_thread(client.call, *args, **kwargs)

    people = {}
    for name in ("alice", "bob"):
        body = {"username": f"{name}_{suffix}", "email": f"{name}_{suffix}@example.test", "password": PASSWORD}
        reply = await call("POST", "/api/auth/register", body=body)
        people[name] = reply.json() or {}
        row.checks[f"register {name}: 201 with a token pair"] = reply.status == 201 and "access" in people[name]
    alice, bob = people["alice"], people["bob"]
    login = await call("POST", "/api/auth/login", body={"username": alice["user"]["username"], "password": PASSWORD})
    refreshed = await call("POST", "/api/auth/refresh", body={"refresh": (login.json() or {}).get("refresh")})
    token = (refreshed.json() or {}).get("access", "")
    me = await call("GET", "/api/auth/me", token)
    row.checks["login 200, refresh 200, the refreshed access token works (GET /api/auth/me 200)"] = (
        login.status == 200 and refreshed.status == 200 and me.status == 200
    )
    alice_token, bob_token = token or alice["access"], bob["access"]
    chat = await call("POST", "/api/chats", alice_token, {"is_group": False, "member_ids": [bob["user"]["id"]]})
    chat_id = (chat.json() or {}).get("id")
    row.checks["a direct chat is created (201)"] = chat.status == 201
    if chat_id is None:
        row.error = f"no chat: {chat.status} {chat.body[:200]!r}"
        return row

    alice_socket, alice_host = await client.socket(alice_token)
    bob_socket, bob_host = await client.socket(bob_token)
    for _ in range(len(proxy.hosts)):  # least_conn sends the second socket elsewhere; bounded all the same
        if bob_host != alice_host:
            break
        await bob_socket.close()
        bob_socket, bob_host = await client.socket(bob_token)
    names = {
        who: getattr(proxy.host_named(upstream), "name", upstream)
        for who, upstream in (("alice", alice_host), ("bob", bob_host))
    }
    row.checks["the two sockets are on different app hosts"] = bool(alice_host) and alice_host != bob_host
    row.notes.append(f"alice's socket on {names['alice']}, bob's on {names['bob']} (nginx's {UPSTREAM_HEADER})")
    try:
        posted = await call(
            "POST",
            f"/api/chats/{chat_id}/messages",
            alice_token,
            {"content": "over REST, host to host", "client_id": uuid.uuid4().hex},
        )
        message = posted.json() or {}
        row.sent, row.acked = 1, int(posted.status == 201)
        heard = await next_frame(bob_socket, created(message.get("id", -1)))
        row.delivered += int(heard is not None)
        row.checks["POST .../messages 201 reaches the socket on the other host (message.created)"] = heard is not None

        client_id = uuid.uuid4().hex
        frame = {
            "type": "message.send",
            "chat_id": chat_id,
            "content": "over the socket, host to host",
            "client_id": client_id,
        }
        await bob_socket.send(json.dumps(frame))
        ack = await next_frame(bob_socket, lambda f: f.get("type") == "message.ack" and f.get("client_id") == client_id)
        row.sent += 1
        row.acked += int(ack is not None)
        heard = await next_frame(alice_socket, created(ack["message"]["id"])) if ack else None
        row.delivered += int(heard is not None)
        row.checks["message.send is acked, and reaches the socket on the other host"] = heard is not None

        await bob_socket.send("{not json")
        error = await next_frame(bob_socket, lambda f: f.get("type") == "error")
        await bob_socket.send(json.dumps({"type": "ping"}))
        pong = await next_frame(bob_socket, lambda f: f.get("type") == "pong")
        row.checks["a bad frame gets an error frame, and the socket stays open (ping, pong)"] = bool(error and pong)

        # Bob's socket closes; what Alice sends meanwhile comes back by catch-up from his last version.
        seen = int(ack["message"]["version"]) if ack else 0
        await bob_socket.close()
        missed = []
        for n in range(CAUGHT_UP):
            reply = await call("POST", f"/api/chats/{chat_id}/messages", alice_token, {"content": f"missed #{n + 1}"})
            row.sent += 1
            row.acked += int(reply.status == 201)
            missed.append((reply.json() or {}).get("id"))
        caught = await asyncio.to_thread(other.call, "GET", f"/api/chats/{chat_id}/messages?since={seen}", bob_token)
        got = [m["id"] for m in (caught.json() or {}).get("results", [])]
        row.caught_up = sum(1 for message_id in missed if message_id in got)
        row.delivered += row.caught_up
        row.checks[f"catch-up ?since=<last version seen> gives exactly the {CAUGHT_UP} missed, in order"] = (
            caught.status == 200 and got == missed
        )
    finally:
        await alice_socket.close()
        await bob_socket.close()
    row.stored = row.acked
    row.lost = row.acked - row.delivered
    await asyncio.to_thread(files, client, proxy, chat_id, alice_token, bob_token, row)
    await asyncio.to_thread(rate_limit, client, other, bob["user"]["username"], auth_rate, row)
    return row


def files(client: Client, proxy: Proxy, chat_id: int, alice_token: str, bob_token: str, row: Row) -> None:
    """Bob's image, sent in the chat, served to Alice through nginx; never without a token, and the
    uploads directory is nginx's internal location only."""
    data = png(int(time.time()))
    body, content_type = multipart_png(data, "acceptance.png", f"acceptance{uuid.uuid4().hex}")
    uploaded = client.call("POST", "/api/attachments", bob_token, raw=body, content_type=content_type)
    attachment = uploaded.json() or {}
    sent = client.call("POST", f"/api/chats/{chat_id}/messages", bob_token, {"attachment_id": attachment.get("id")})
    row.checks["an image uploaded through the proxy (201) is sent in the chat (201)"] = (
        uploaded.status == 201 and sent.status == 201
    )
    url = str(attachment.get("url", "/api/attachments/0/file"))
    served = client.call("GET", url, alice_token)
    same = hashlib.sha256(served.body).hexdigest() == hashlib.sha256(data).hexdigest()
    row.checks["the other member downloads the same bytes: 200, image/png, nosniff"] = (
        served.status == 200
        and same
        and served.headers.get("content-type") == "image/png"
        and served.headers.get("x-content-type-options") == "nosniff"
    )
    anonymous = client.call("GET", url)
    inside = client.call("GET", "/protected-uploads/")
    row.checks["without a token 401; nginx's internal uploads location 404 from outside"] = (
        anonymous.status == 401 and inside.status == 404
    )
    row.notes.append(
        f"download through nginx: {served.status}, {len(served.body)} bytes, sha256 {'matches' if same else 'differs'}"
    )


def rate_limit(client: Client, other: Client, username: str, auth_rate: int, row: Row) -> None:
    """CLIENT has made 4 auth requests (2 sign-ups, a login, a refresh): wrong logins, each with a
    forged X-Forwarded-For, meet THROTTLE_AUTH at its limit; OTHER_CLIENT still signs in."""
    statuses = []
    for attempt in range(auth_rate + 1):  # bounded: the limit is auth_rate a minute
        forged = {"X-Forwarded-For": f"198.51.100.{attempt + 1}"}
        reply = client.call("POST", "/api/auth/login", body={"username": "nobody", "password": "wrong"}, headers=forged)
        statuses.append(reply.status)
        if reply.status == 429:
            break
    signed_in = other.call("POST", "/api/auth/login", body={"username": username, "password": PASSWORD})
    row.checks[f"{auth_rate} auth requests a minute from {CLIENT}, forged X-Forwarded-For or not; then 429"] = (
        statuses[-1] == 429 and len(statuses) == auth_rate - 4 + 1
    )
    row.checks[f"meanwhile {OTHER_CLIENT} signs in (200): the limit is the real client's, not nginx's"] = (
        signed_in.status == 200
    )
    row.notes.append(
        f"wrong logins from {CLIENT} after its 4 auth requests: {statuses}; {OTHER_CLIENT}: {signed_in.status}"
    )


# The browser ----------------------------------------------------------------------------------


def e2e_flows(proxy: Proxy, log_dir: Path) -> Row:
    """tests/e2e/test_messenger.py's flows (E2E_TESTS), by pytest, against the proxy."""
    row = Row("e2e flows (tests/e2e, Chromium) through the proxy")
    with tempfile.TemporaryDirectory(prefix="cluster-e2e-") as scratch:
        report = Path(scratch) / "junit.xml"
        command = [PYTHON, "-m", "pytest", "-m", "e2e", "tests/e2e/test_messenger.py", "-k", E2E_TESTS]
        command += ["-p", "no:cacheprovider", "-q", f"--junitxml={report}"]
        env = {**os.environ, "E2E_SERVER_URL": proxy.url}
        with (log_dir / "e2e.log").open("ab") as out:
            pytest = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                pytest.wait(timeout=E2E_TIMEOUT)
            except subprocess.TimeoutExpired:
                row.error = f"pytest did not finish within {E2E_TIMEOUT:.0f} s"
                os.killpg(pytest.pid, signal.SIGKILL)  # pytest and the Chromium it started
                pytest.wait(timeout=10)
        if not report.exists():
            row.error = row.error or f"pytest wrote no report; see {log_dir / 'e2e.log'}"
            return row
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "")
            row.checks[f"{case.get('name')}{f' ({outcome})' if outcome else ''}"] = not outcome
    if not row.checks:
        row.error = f"no test ran; see {log_dir / 'e2e.log'}"
    row.notes.append(
        f"(their messages are counted by the tests' own assertions, not in the table; log: {log_dir / 'e2e.log'})"
    )
    return row


def browser_across_hosts(proxy: Proxy) -> Row:
    """Two Chromium users on different hosts; the host of one killed and started again."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, chromium_args
    from tests.e2e.test_messenger import TIMEOUT_MS, Person, expect, register

    row = Row("browser: two users on two hosts, one host killed")
    suffix = uuid.uuid4().hex[:6]
    killed: AppHost | None = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args(proxy.url)
        )
        upstreams: dict[str, list[str]] = {}
        people: list[Person] = []

        def host_of(person: Person) -> str:
            """The upstream of the person's newest socket, waiting for one (bounded)."""
            for _ in range(100):
                if upstreams[person.username]:
                    return upstreams[person.username][-1]
                person.page.wait_for_timeout(100)
            return ""

        try:
            for name in ("carol", "dave"):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.set_default_timeout(TIMEOUT_MS)
                page = context.new_page()
                person = Person(page, context, f"{name}_{suffix}", f"{name.title()} {suffix.upper()}")
                seen = upstreams.setdefault(person.username, [])
                devtools = context.new_cdp_session(page)
                devtools.send("Network.enable")

                def handshake(params: dict[str, Any], seen: list[str] = seen) -> None:
                    headers = {k.lower(): v for k, v in params["response"].get("headers", {}).items()}
                    seen.append(headers.get(UPSTREAM_HEADER.lower(), ""))

                devtools.on("Network.webSocketHandshakeResponseReceived", handshake)
                register(page, proxy.url, person.username, person.display_name)
                people.append(person)
            carol, dave = people
            for _ in range(len(proxy.hosts)):  # bounded: least_conn puts the second socket elsewhere
                if host_of(dave) != host_of(carol):
                    break
                count = len(upstreams[dave.username])
                dave.page.evaluate("window.messenger.socket.raw && window.messenger.socket.raw.close()")
                for _ in range(100):
                    if len(upstreams[dave.username]) > count:
                        break
                    dave.page.wait_for_timeout(100)
            carol_host, dave_host = proxy.host_named(host_of(carol)), proxy.host_named(host_of(dave))
            row.checks["the two browsers' sockets are on different hosts"] = (
                carol_host is not None and dave_host is not None and carol_host is not dave_host
            )
            row.notes.append(
                f"carol's socket on {getattr(carol_host, 'name', '?')}, dave's on {getattr(dave_host, 'name', '?')}"
            )

            def sent(sender: Person, texts: list[str]) -> None:
                """Sent, and acked: the sender's bubbles are no longer pending."""
                for text in texts:
                    sender.send(text)
                row.sent += len(texts)
                for text in texts:
                    expect(sender.page.locator(".msg--pending", has_text=text)).to_have_count(0)
                    row.acked += 1
                    row.stored += 1  # (the ack is the server's: stored before anyone is told)

            def shown(receiver: Person, texts: list[str], timeout: int = TIMEOUT_MS) -> None:
                for text in texts:
                    expect(receiver.bubble(text)).to_have_count(1, timeout=timeout)
                    row.delivered += 1

            carol.page.fill(".sidebar__search input", dave.username[:10])
            carol.page.locator(".chat-list .chat-item", has_text=f"@{dave.username}").click()
            sent(carol, ["Hello from the other host"])
            expect(dave.chat_item(carol.display_name)).to_contain_text("Hello from the other host")
            dave.open_chat(carol.display_name)
            shown(dave, ["Hello from the other host"])
            sent(dave, ["Hello back"])
            shown(carol, ["Hello back"])
            row.checks["messages arrive live both ways between the hosts"] = True

            if dave_host is None:
                raise AssertionError("dave's host is unknown: nothing to kill")
            killed = dave_host
            log(f"  SIGKILL {killed.name} ({killed.address}), which holds dave's socket")
            before = len(upstreams[dave.username])
            killed.kill()
            missed = [f"Sent while your host was down #{n + 1}" for n in range(CAUGHT_UP)]
            sent(carol, missed)
            expect(dave.page.locator(".sidebar__status")).to_be_hidden(timeout=RECONNECT_WAIT_MS)
            for _ in range(RECONNECT_WAIT_MS // 100):
                if len(upstreams[dave.username]) > before:
                    break
                dave.page.wait_for_timeout(100)
            now = proxy.host_named(upstreams[dave.username][-1])
            row.checks[f"dave's client reconnected through nginx to another host than {killed.name}"] = (
                len(upstreams[dave.username]) > before and now is not None and now is not killed
            )
            row.notes.append(f"dave's socket after the kill: {getattr(now, 'name', '?')}")
            shown(dave, missed, RECONNECT_WAIT_MS)
            row.caught_up = len(missed)
            row.checks[f"the {CAUGHT_UP} messages sent while it was down show once, after the reconnect"] = True
            sent(carol, ["And live again"])
            shown(dave, ["And live again"])
            sent(dave, ["Heard you"])
            shown(carol, ["Heard you"])
            row.checks["live both ways again after the reconnect"] = True
        except (AssertionError, PlaywrightError) as exc:
            row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        finally:
            row.lost = row.acked - row.delivered
            for person in people:
                with contextlib.suppress(PlaywrightError):
                    person.context.close()
            browser.close()
    if killed is not None:
        try:
            killed.start()
            log(f"  {killed.name} started again")
        except RuntimeError as exc:
            row.error = row.error or f"{killed.name} did not start again: {exc}"
    return row


def empty_auth_window(redis_address: tuple[str, int], prefix: str, client: str) -> int:
    """Delete the `auth` throttle's history of `client` from the cache (Django's key
    `<prefix>:<version>:throttle_auth_<address>`, database 0); how many keys went."""
    import redis

    connection = redis.Redis(host=redis_address[0], port=redis_address[1], socket_timeout=5)
    try:
        keys = list(connection.scan_iter(match=f"{prefix}:*:throttle_auth_{client}", count=1000))
        return int(connection.delete(*keys)) if keys else 0
    finally:
        connection.close()


def run(
    proxy: Proxy,
    auth_rate: int,
    log_dir: Path,
    cache_primary: Callable[[], tuple[str, int] | None],
    cache_prefix: str,
) -> list[Row]:
    """The three rows; a part that crashes is a failed row of its own and the next still runs.
    The browsers sign up from 127.0.0.1, whose auth window the faults' load and proxy_checks'
    forged logins used: each browser part starts from an empty one (as tests/conftest.py clears
    the cache before each test), deleted on the Redis that `cache_primary` names."""
    rows: list[Row] = []
    parts: list[tuple[str, Callable[[], Row]]] = [
        ("acceptance: REST + WebSocket contract through the proxy", lambda: asyncio.run(contract(proxy, auth_rate))),
        ("e2e flows (tests/e2e, Chromium) through the proxy", lambda: e2e_flows(proxy, log_dir)),
        ("browser: two users on two hosts, one host killed", lambda: browser_across_hosts(proxy)),
    ]
    from tests.e2e.conftest import CHROMIUM

    for index, (label, part) in enumerate(parts):
        if index and not CHROMIUM.exists():
            rows.append(Row(label, skipped=f"{CHROMIUM} is missing (Debian's chromium package)"))
            continue
        started = time.monotonic()
        log(f"{label} …")
        try:
            primary = cache_primary()
            if index and primary is not None:
                empty_auth_window(primary, cache_prefix, "127.0.0.1")
            rows.append(part())
        except Exception as exc:  # a broken part is a failed row; the next one still runs
            rows.append(Row(label, error=f"crashed: {type(exc).__name__}: {exc}"))
        log(f"  {time.monotonic() - started:.0f} s")
    return rows
