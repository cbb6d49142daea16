"""`make cluster-test`: three app hosts behind nginx, MariaDB and a Redis that fails over, broken
under load, one part at a time.

- three network namespaces on a bridge of the test's own (10.213.0.0/24, cluster/hosts.py), each
  running `python -m messenger.serve`; where namespaces cannot be made, 127.0.0.2-4 instead;
- MariaDB (faults.infra.OwnMariaDB) and a primary, a replica and three sentinels
  (faults.sentinel.OwnSentinelRedis) listening on loopback and on the bridge's address; the
  hosts find the primary through REDIS_SENTINELS;
- nginx from deploy/nginx/messenger.conf.template on a loopback port, TLS with a certificate made
  for the run, the hosts as its upstreams (cluster/proxy.py);
- an S3 API server (faults.infra.OwnS3, moto's) on the bridge's address, reachable from the hosts
  only as MariaDB and Redis are;
- the fault suite's load (faults.load: a socket per member, REST and WebSocket senders, catch-up)
  and accounting (faults.accounting), every request and socket through nginx over TLS.

Experiments: a host SIGKILLed mid-load (its sockets reconnect through nginx to the others and
catch up), the Redis primary SIGKILLed (the sentinels promote the replica; delivery resumes, every
socket is told `resync`), the hosts restarted one by one onto media in the bucket (MEDIA_STORAGE=s3;
an upload through nginx is then fetched from every host, streamed from the bucket). Then the
contract, tests/e2e's browser flows and two browsers on two hosts, one of them killed, through
nginx (cluster/acceptance.py). Prints the table of acked / delivered / lost, writes it to
cluster/results/latest.md; exit status 1 when a target is missed. Everything started is stopped
by pid, and the namespaces, bridge and files are removed, on failure too.
"""

import argparse
import asyncio
import datetime
import hashlib
import http.client
import json
import secrets
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import free_port, stop_all
from cluster import acceptance
from cluster.hosts import APP_PORT, AppHost, Network
from cluster.proxy import Nginx, main_config, nginx_program, render, self_signed
from faults.accounting import LIVE, Row
from faults.experiments import png
from faults.infra import DATABASE, Messenger, OwnMariaDB, OwnS3, migrate_and_seed, missing_programs, server_env
from faults.load import Load, Suite, healthz, log, run_experiment
from faults.run import details, git_commit, prepare_run, table
from faults.sentinel import MASTER, OwnSentinelRedis
from faults.traffic import TLS_PORTS, http_request

REPO = Path(__file__).resolve().parent.parent
HOSTS = 3
HOST_DOWN = 10.0  # seconds a killed host stays down before it is started again
AUTH_RATE = 5  # THROTTLE_AUTH for the run: logins a minute an address
RESUME_WITHIN = 10.0  # the target: delivery resumes this soon after the Redis primary is killed
ROWS = 6  # three experiments (host killed, Redis primary killed, hosts onto S3 media), three acceptance parts
BUCKET = "messenger-media"
UPLOAD_ATTEMPTS = 5  # an upload answered 503 (with Retry-After) is tried again, as a client does


class Front(Messenger):
    """What the fault suite's load talks to: nginx's port. The hosts behind it are restarted when
    the suite finds the front unhealthy (faults.load.ensure_server)."""

    def __init__(self, port: int, http_port: int, hosts: list[AppHost], log_dir: Path) -> None:
        super().__init__({}, log_dir, workers=0)
        self.port = port
        self.http_port = http_port  # nginx's plain HTTP, redirecting to `port`
        self.hosts = hosts

    def start(self) -> None:
        for host in self.hosts:
            if host.process is None or host.process.poll() is not None or not host.healthy():
                host.kill()
                host.start()

    def restart(self) -> None:
        self.start()

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()

    def launcher_alive(self) -> bool:
        return True

    def workers_now(self) -> list[int]:
        return []  # (the load's `spread` is for one machine's workers; nginx spreads here)

    def worker_of(self, client_port: int) -> int | None:
        return None


def live_receipts(load: Load) -> int:
    return sum(1 for member in load.members.values() for how in member.receipts.values() if how == LIVE)


def upload_through_proxy(suite: Suite, row: Row) -> dict[str, Any] | None:
    """A new image (its pixels from the clock) POSTed through nginx; the attachment, or None (noted)."""
    token = suite.seed["users"][0]["token"]
    boundary = "clustertestboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="proxy.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(int(time.time() * 1000))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert isinstance(suite.server, Front)
    # As a client does with a 503 (the contract's Retry-After): just after the last host's restart
    # nginx may still hold every host as failed for a moment and answer its own 503.
    for attempt in range(UPLOAD_ATTEMPTS):
        answer = http_request(
            suite.server.port, "POST", "/api/attachments", token, body, f"multipart/form-data; boundary={boundary}"
        )
        if answer.status != 503 or attempt == UPLOAD_ATTEMPTS - 1:
            break
        row.notes.append(f"upload through nginx: 503 (Retry-After: {answer.retry_after}), tried again after 1 s")
        time.sleep(1.0)  # nginx's and the app's Retry-After
    row.checks["an upload through the proxy is stored (201)"] = answer.status == 201
    if answer.status != 201:
        row.notes.append(f"upload through nginx: {answer.status} {answer.body[:200]!r}")
        return None
    attachment: dict[str, Any] = answer.json() or {}
    return attachment


def proxy_checks(suite: Suite, row: Row) -> None:
    """Through nginx: an image uploaded, then sent back by nginx from the shared uploads directory
    (X-Accel-Redirect) with Django's headers; plain HTTP redirected to HTTPS."""
    token = suite.seed["users"][0]["token"]
    front = suite.server
    assert isinstance(front, Front)
    port = front.port
    plain = http.client.HTTPConnection("127.0.0.1", front.http_port, timeout=5)
    try:
        plain.request("GET", "/api/chats")
        answer = plain.getresponse()
        location = answer.getheader("Location") or ""
    finally:
        plain.close()
    row.checks["plain HTTP is redirected to HTTPS (308)"] = answer.status == 308 and location.startswith("https://")
    # The client's address is what nginx appended to X-Forwarded-For (TRUSTED_PROXIES=1), whatever
    # the client wrote there, and the hosts count it together (the cache on Redis): failed logins
    # under a new forged address each, spread over the hosts, still meet THROTTLE_AUTH's limit.
    statuses = []
    for attempt in range(AUTH_RATE + 1):
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=TLS_PORTS[port])
        try:
            login = json.dumps({"username": f"nobody{attempt}", "password": "wrong password"})
            forged = {"X-Forwarded-For": f"203.0.113.{attempt + 1}", "Content-Type": "application/json"}
            connection.request("POST", "/api/auth/login", body=login, headers=forged)
            statuses.append(connection.getresponse().status)
        finally:
            connection.close()
    row.checks[f"forged X-Forwarded-For: login {AUTH_RATE + 1} of {AUTH_RATE}/min is 429 (nginx's address counts)"] = (
        statuses[-1] == 429 and 429 not in statuses[:-1]
    )
    row.notes.append(f"logins under forged addresses through nginx: {statuses}")
    attachment = upload_through_proxy(suite, row)
    if attachment is None:
        return
    file = http_request(port, "GET", f"/api/attachments/{attachment['id']}/file", token, None, "")
    same = hashlib.sha256(file.body).hexdigest() == attachment.get("sha256")
    row.checks["nginx sends the stored file (X-Accel-Redirect): 200, same sha256, image/png"] = (
        file.status == 200 and same and file.content_type == "image/png"
    )
    row.notes.append(
        f"download through nginx: {file.status}, {len(file.body)} bytes, {file.content_type!r}, sha256 "
        + ("matches" if same else "differs")
    )


async def host_killed(suite: Suite, load: Load, row: Row) -> None:
    front = suite.server
    assert isinstance(front, Front)
    await asyncio.to_thread(proxy_checks, suite, row)
    victim = front.hosts[0]
    load.traffic.fault_started()
    reconnects_before = sum(m.reconnects for m in load.members.values())
    log(f"  SIGKILL every process of {victim.name} ({victim.address})")
    victim.kill()
    await asyncio.sleep(2)
    answer = await healthz(suite, timeout=5)
    row.checks["the proxy answers /healthz 200 from the other hosts while one is down"] = answer.status == 200
    await asyncio.sleep(HOST_DOWN - 2)
    reconnected = sum(m.reconnects for m in load.members.values()) - reconnects_before
    row.checks["the dead host's sockets reconnected through the proxy"] = reconnected > 0
    row.notes.append(f"sockets that reconnected through nginx while {victim.name} was down: {reconnected}")
    await asyncio.to_thread(victim.start)
    log(f"  {victim.name} started again")
    load.traffic.fault_ended()


async def media_to_bucket(suite: Suite, load: Load, row: Row, s3: OwnS3, env: dict[str, str]) -> None:
    """Restart the hosts one at a time with MEDIA_STORAGE=s3 (SIGTERM: each drains, its sockets
    reconnect through nginx to the others), then upload through nginx and fetch from every host."""
    front = suite.server
    assert isinstance(front, Front)
    load.traffic.fault_started()
    for host in front.hosts:
        log(f"  {host.name}: restarted with its media in the bucket")
        await asyncio.to_thread(host.stop)
        host.env = env
        await asyncio.to_thread(host.start)
    load.traffic.fault_ended()
    await asyncio.to_thread(bucket_checks, suite, row, s3)


def bucket_checks(suite: Suite, row: Row, s3: OwnS3) -> None:
    """An upload through nginx lands in the bucket (not on the shared disk), and each host, asked
    directly on its own address, streams it back from the bucket with the same sha256."""
    front = suite.server
    assert isinstance(front, Front)
    attachment = upload_through_proxy(suite, row)
    if attachment is None:
        return
    sha256 = str(attachment.get("sha256", ""))
    key = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
    row.checks["the upload is one object in the bucket, keyed by its sha256, and not on the disk"] = (
        key in s3.keys(BUCKET) and not (suite.uploads / key).exists()
    )
    token = suite.seed["users"][0]["token"]
    fetched = []
    for host in front.hosts:
        connection = http.client.HTTPConnection(host.address, APP_PORT, timeout=10)
        try:
            connection.request(
                "GET", f"/api/attachments/{attachment['id']}/file", headers={"Authorization": f"Bearer {token}"}
            )
            answer = connection.getresponse()
            data = answer.read()
            streamed = answer.getheader("X-Accel-Redirect") is None and answer.getheader("Content-Type") == "image/png"
            fetched.append(answer.status == 200 and streamed and hashlib.sha256(data).hexdigest() == sha256)
            row.notes.append(f"{host.name} ({host.address}) streams it: {answer.status}, {len(data)} bytes")
        finally:
            connection.close()
    row.checks[f"every host streams it from the bucket: 200, same sha256 ({len(front.hosts)} hosts)"] = all(fetched)
    through = http_request(front.port, "GET", f"/api/attachments/{attachment['id']}/file", token, None, "")
    row.checks["through nginx too: 200, same sha256"] = (
        through.status == 200 and hashlib.sha256(through.body).hexdigest() == sha256
    )


async def redis_primary_killed(suite: Suite, load: Load, row: Row, sentinel: OwnSentinelRedis) -> None:
    load.traffic.fault_started()
    resyncs_before = {user_id: m.resyncs for user_id, m in load.members.items()}
    killed_at = time.monotonic()
    old_port = await asyncio.to_thread(sentinel.kill_primary)
    log(f"  SIGKILL the Redis primary (port {old_port})")
    await asyncio.sleep(0.5)  # (deliveries already on their way when it died)
    live_at_kill = live_receipts(load)
    promoted = await asyncio.to_thread(sentinel.wait_promoted, old_port, 30)
    log(f"  the sentinels promoted the replica after {promoted:.1f} s")
    resumed: float | None = None
    while time.monotonic() - killed_at < 30:
        if live_receipts(load) > live_at_kill:
            resumed = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.1)
    row.checks[f"live delivery resumes within {RESUME_WITHIN:g} s of the kill"] = (
        resumed is not None and resumed <= RESUME_WITHIN
    )
    row.notes.append(
        f"replica promoted {promoted:.1f} s after the kill; live delivery resumed after "
        + (f"{resumed:.1f} s" if resumed is not None else "more than 30 s")
    )
    load.traffic.fault_ended()

    # The layer reconnects, then tells every socket `resync` (chats/realtime/resync.py).
    def told() -> list[int]:
        return [user_id for user_id, m in load.members.items() if m.resyncs > resyncs_before[user_id]]

    deadline = time.monotonic() + 15
    while len(told()) < len(load.members) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    told_now = told()
    row.checks["every socket was told resync"] = len(told_now) == len(load.members)
    row.notes.append(f"sockets told resync: {len(told_now)} of {len(load.members)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load an experiment (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="daphne processes per host (default 1)")
    parser.add_argument("--out", type=Path, default=REPO / "cluster" / "results")
    parser.add_argument(
        "--loopback", action="store_true", help="hosts on 127.0.0.2-4 instead of network namespaces (no root needed)"
    )
    args = parser.parse_args(argv)
    if not 5 <= args.duration <= 120:
        parser.error("--duration must be between 5 and 120 seconds")
    return args


def missing() -> list[str]:
    found = missing_programs()
    if nginx_program() is None:
        found.append("nginx")
    for name in ("openssl", "ip"):
        if shutil.which(name) is None and shutil.which(name, path="/usr/sbin:/sbin") is None:
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lacking = missing()
    if lacking:
        print(f"the cluster test needs: {', '.join(lacking)}", file=sys.stderr)
        print("(Debian: apt-get install nginx redis-server redis-sentinel mariadb-server iproute2)", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    log_dir = prepare_run(out)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="messenger-cluster-"))
    network = Network(HOSTS)
    database: OwnMariaDB | None = None
    sentinel: OwnSentinelRedis | None = None
    s3: OwnS3 | None = None
    hosts: list[AppHost] = []
    nginx: Nginx | None = None
    rows: list[Row] = []
    where = ""
    try:
        network.create(namespaces=not args.loopback)
        bind = network.server_address
        where = (
            f"{HOSTS} hosts on 127.0.0.2-{HOSTS + 1} ("
            + ("--loopback" if args.loopback else "network namespaces could not be made here")
            + ")"
            if network.fallback
            else f"{HOSTS} hosts in network namespaces {', '.join(network.namespaces)} on a bridge, "
            f"{', '.join(network.address(i) for i in range(HOSTS))}"
        )
        log(where)
        database = OwnMariaDB(root, log_dir, also_bind="" if network.fallback else bind)
        database.start()
        if not network.fallback:  # root connects from the bridge's subnet too (hosts and the test)
            subnet = f"{bind.rsplit('.', 1)[0]}.%"
            database.execute(f"CREATE USER 'root'@'{subnet}'", database="")
            database.execute(f"GRANT ALL ON *.* TO 'root'@'{subnet}' WITH GRANT OPTION", database="")
        sentinel = OwnSentinelRedis(root / "redis", log_dir, host=bind, binds=("127.0.0.1",))
        sentinel.start()
        s3 = OwnS3(log_dir, host=bind)
        s3.start()
        s3.create_bucket(BUCKET)
        log(f"MariaDB on {bind}:{database.port}; Redis primary and replica, 3 sentinels on {bind}; S3 on {bind}")
        data_dir = root / "data"
        env = server_env(data_dir, f"mysql://root@{bind}:{database.port}/{DATABASE}", f"redis://{MASTER}/0")
        env.update(
            {
                "REDIS_SENTINELS": sentinel.sentinels_setting,
                "REDIS_SENTINEL_MASTER": MASTER,
                "TRUSTED_PROXIES": "1",
                "SENDFILE_HEADER": "X-Accel-Redirect",
                "CHANNEL_LAYER_PREFIX": "cluster",  # (the cache's KEY_PREFIX too)
                "THROTTLE_AUTH": f"{AUTH_RATE}/min",
                "ALLOWED_HOSTS": ",".join(["127.0.0.1", "localhost", *(network.address(i) for i in range(HOSTS))]),
            }
        )
        seed = migrate_and_seed(env, log_dir, root / "seed.json")
        hosts = [AppHost(network, index, env, log_dir, args.workers) for index in range(HOSTS)]
        for host in hosts:
            host.start()
        cert, key = self_signed(root, ["127.0.0.1", "localhost"])
        port, http_port = free_port(), free_port()
        site = render(
            {
                "MESSENGER_SERVER_NAME": "127.0.0.1 localhost",
                "MESSENGER_ADDRESS": "127.0.0.1",
                "MESSENGER_HTTP_PORT": str(http_port),
                "MESSENGER_HTTPS_PORT": str(port),
                "MESSENGER_CERT": str(cert),
                "MESSENGER_KEY": str(key),
                "MESSENGER_APP_SERVERS": " ".join(
                    f"server {host.address}:8000 max_fails=1 fail_timeout=5s;" for host in hosts
                ),
                "MESSENGER_UPLOADS_DIR": f"{data_dir / 'uploads'}/",
            }
        )
        nginx = Nginx(main_config(root / "nginx", site, name_upstream=True), port)
        nginx.start()
        TLS_PORTS[port] = ssl.create_default_context(cafile=str(cert))
        log(f"nginx on https://127.0.0.1:{port}/ in front of {', '.join(h.address for h in hosts)}")
        suite = Suite(
            redis=None,
            database=database,
            server=Front(port, http_port, hosts, log_dir),
            seed=seed,
            uploads=data_dir / "uploads",
            duration=args.duration,
            run_id=secrets.token_hex(2),
        )
        rows = asyncio.run(run_all(suite, sentinel, s3, {**env, **s3.env(BUCKET)}))
        suite.server.start()  # (any host a fault left down is started again)
        proxy = acceptance.Proxy(port, TLS_PORTS[port], hosts)
        rows += acceptance.run(proxy, AUTH_RATE, log_dir, sentinel.primary, cache_prefix="cluster")
    except KeyboardInterrupt:
        log("interrupted; stopping what the test started")
    except Exception as exc:
        log(f"set-up failed: {type(exc).__name__}: {exc}")
        rows.append(Row("set-up", error=f"{type(exc).__name__}: {exc}"))
    finally:
        TLS_PORTS.clear()
        if nginx is not None:
            nginx.stop()
        for host in hosts:
            host.stop()
        if sentinel is not None:
            sentinel.stop()
        if database is not None:
            database.stop()
        if s3 is not None:
            s3.stop()
        stop_all()
        network.delete()
        shutil.rmtree(root, ignore_errors=True)
    took = time.monotonic() - started
    header = (
        f"Cluster test, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit()}: {where}; "
        f"nginx (TLS) in front, MariaDB, Redis primary + replica + 3 sentinels, an S3 server (moto); "
        f"{args.workers} worker(s) a host, "
        f"{args.duration:g} s of load an experiment, {took:.0f} s in all."
    )
    text = f"{header}\n\n{table(rows)}\n\n{details(rows)}"
    print()
    print(text)
    (out / "latest.md").write_text(text + "\n")
    print(f"written: {out / 'latest.md'}")
    return 0 if len(rows) == ROWS and all(row.passed for row in rows) else 1


async def run_all(suite: Suite, sentinel: OwnSentinelRedis, s3: OwnS3, s3_env: dict[str, str]) -> list[Row]:
    async def redis_fault(suite: Suite, load: Load, row: Row) -> None:
        await redis_primary_killed(suite, load, row, sentinel)

    async def to_bucket(suite: Suite, load: Load, row: Row) -> None:
        await media_to_bucket(suite, load, row, s3, s3_env)

    rows: list[Row] = []
    for key, label, inject in (
        ("host", "app host killed (SIGKILL, 10 s)", host_killed),
        ("sentinel", "Redis primary killed (sentinel failover)", redis_fault),
        ("bucket", "hosts restarted one by one onto S3 media (moto on the bridge)", to_bucket),
    ):
        try:
            rows.append(await run_experiment(suite, key, label, inject))
        except Exception as exc:  # a broken experiment is a failed row; the next one still runs
            log(f"{label}: crashed: {type(exc).__name__}: {exc}")
            rows.append(Row(label, error=f"crashed: {type(exc).__name__}: {exc}"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
