"""The suite's HTTP: one request per connection in a thread pool, every answer tallied against the fault windows.

http.client in threads rather than an async HTTP library (none is a dependency); a request on a
connection of its own, since a fault may break any kept-alive one.
"""

import asyncio
import http.client
import json
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.procs import LOOPBACK
from faults.accounting import HttpTally

# Ports served over TLS (the cluster test's nginx), with a context that trusts their certificate:
# requests and sockets to them go over HTTPS and wss://.
TLS_PORTS: dict[int, ssl.SSLContext] = {}

REQUEST_TIMEOUT = 15.0  # longer than a 10-second database pause
FAULT_GRACE = 5.0  # seconds after a part is back during which a 503 still counts as "while down"


@dataclass
class Answer:
    status: int | None  # None: no answer (timeout, refused, reset)
    body: bytes
    content_type: str = ""
    retry_after: bool = False
    error: str = ""
    started: float = 0.0
    finished: float = 0.0

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def http_request(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = REQUEST_TIMEOUT,
    on_written: Callable[[], None] | None = None,
) -> Answer:
    """One request on a connection of its own (a fault may break any kept-alive one).

    `on_written` is called once the whole request is on the connection (the server may be reading it).
    """
    started = time.monotonic()
    headers = {"Content-Type": content_type, "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    tls = TLS_PORTS.get(port)
    connection = (
        http.client.HTTPSConnection(LOOPBACK, port, timeout=timeout, context=tls)
        if tls is not None
        else http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    )
    try:
        connection.request(method, path, body=body, headers=headers)
        if on_written is not None:
            on_written()
        response = connection.getresponse()
        data = response.read()
        return Answer(
            response.status,
            data,
            response.getheader("Content-Type") or "",
            response.getheader("Retry-After") is not None,
            started=started,
            finished=time.monotonic(),
        )
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, b"", error=type(exc).__name__, started=started, finished=time.monotonic())
    finally:
        connection.close()


class Traffic:
    """The HTTP side shared by every client of one experiment: a thread pool, the tally, fault windows."""

    def __init__(self, port: int, threads: int = 48) -> None:
        self.port = port
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="faults-http")
        self.tally = HttpTally()
        self.fault_windows: list[list[float]] = []  # [start, end]; end = inf while the part is down
        self.in_flight: dict[int, float] = {}
        self.answered: dict[int, Answer] = {}
        self.written: set[int] = set()
        self._next_id = 0

    def fault_started(self) -> None:
        self.fault_windows.append([time.monotonic(), float("inf")])

    def fault_ended(self) -> None:
        if self.fault_windows and self.fault_windows[-1][1] == float("inf"):
            self.fault_windows[-1][1] = time.monotonic()

    def in_fault_window(self, answer: Answer) -> bool:
        return any(
            start <= t <= end + FAULT_GRACE
            for start, end in self.fault_windows
            for t in (answer.started, answer.finished)
        )

    def record(self, answer: Answer) -> None:
        self.tally.record(
            answer.status,
            answer.content_type,
            answer.body,
            in_fault_window=self.in_fault_window(answer),
            retry_after=answer.retry_after,
        )

    async def request(self, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        return await self.raw(method, path, token, data)

    async def raw(
        self, method: str, path: str, token: str | None, data: bytes | None, content_type: str = "application/json"
    ) -> Answer:
        request_id = self._next_id
        self._next_id += 1
        self.in_flight[request_id] = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self.pool,
                http_request,
                self.port,
                method,
                path,
                token,
                data,
                content_type,
                REQUEST_TIMEOUT,
                lambda: self.written.add(request_id),
            )
        finally:
            self.in_flight.pop(request_id, None)
        self.answered[request_id] = answer
        self.record(answer)
        return answer

    def in_flight_ids(self) -> set[int]:
        """Requests written to the server and not answered yet."""
        return set(self.in_flight) & self.written

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
